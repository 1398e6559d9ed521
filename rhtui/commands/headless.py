"""`rhtui --headless`: the engine's events as log lines, for nohup and systemd.

Rich renders the lines (colour by level; NO_COLOR honoured by Rich). The text is
plain: it is printed as `Text`, never parsed as markup, so nothing a model or a
server says can style or move the terminal.
"""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import suppress

from rich.console import Console
from rich.text import Text

from rhtui.engine import events as ev
from rhtui.engine.eventlog import format_event
from rhtui.engine.handle import EngineHandle
from rhtui.tui.text import one_line

STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "red", "critical": "bold white on red"}


class LinePrinter:
    """An EventBus listener that prints each event that is a log line."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose

    def __call__(self, event: ev.Event) -> None:
        line = format_event(event)
        if line is None:
            return
        level, text = line
        if level == "debug" and not self.verbose:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime())
        out = Text(f"{stamp} {level.upper():8} ", style="dim")
        out.append(one_line(text), style=STYLES.get(level, ""))
        self.console.print(out, soft_wrap=True)


async def run_headless(orchestrator: EngineHandle, console: Console) -> int:
    """Run the session to its end; SIGINT/SIGTERM stop it gracefully (cancel, unload, flush, exit 0).
    A second signal cancels at once. Exit 1 when the session ended because Ollama stayed unreachable."""
    orchestrator.bus.subscribe(LinePrinter(console))
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(orchestrator.run())
    signals = 0

    def on_signal(signame: str) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            console.print(Text(f"{signame}: stopping gracefully (again to force)…", style="yellow"))
            orchestrator.request_stop()
        else:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await task
    except asyncio.CancelledError:
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    # 1 when the engine ended the session on a failure (Ollama unreachable past the session's end
    # or session.give_up_after_s), so that systemd's Restart=on-failure sees it
    return int(getattr(orchestrator, "exit_code", 0) or 0)
