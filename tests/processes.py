"""Programs the tests start as processes of their own: a free loopback port to give them, and
a stop that asks first (SIGINT, as Ctrl-C) and kills only what does not go."""

from __future__ import annotations

import signal
import socket
import subprocess


def free_port() -> int:
    """A loopback port nothing listens on (free once this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interrupt(p: subprocess.Popen, timeout: float = 30, kill_timeout: float = 10) -> int | None:
    """SIGINT, then SIGKILL if `p` has not exited within `timeout` s; its exit status."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(kill_timeout)
    return p.returncode
