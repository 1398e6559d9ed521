"""One engine per database and per card: two lock files, held with `fcntl.flock`.

Two engines on one database interfere (both steer the same `controls`, both learn and
close sessions), and two engines on one Ollama each unload the other's models in an
emergency. So an engine (the dashboard or `--headless`) takes two locks before it
touches anything, and a second one refuses within seconds, naming the first:

- the database's lock, `<database>.lock` next to it in the data dir (`rhtui.db.lock`;
  the demo's own database `rhtui-demo.db` has its own, so a demo never blocks a real
  engine and a real one never blocks a demo);
- the Ollama host's lock, in the user's runtime directory: `$XDG_RUNTIME_DIR/rhtui/`,
  or `<temp dir>/rhtui-<uid>/` (made 0700) where there is none, named after a hash of
  the normalised host (`localhost`, `127.0.0.1`, `::1` and `0.0.0.0` are one host), so
  that two data dirs cannot drive one card. The demo's simulator is its own host and
  takes no host lock. It is per user: another user's engine on the same Ollama is not
  seen.

A lock is an exclusive `flock` on the open file, which the kernel releases on any exit,
kill -9 included; the file holds the holder as JSON (pid, host, session, since,
ollama_host, data_dir), rewritten once the session has its id. A file whose lock is free
is stale: the next engine takes it over. Readers (`rhtui watch`) ask who holds a lock
with a shared lock held for an instant; an engine therefore retries for ACQUIRE_WAIT_S
before it refuses.

On start, once it holds the database's lock, an engine closes the sessions left open
by an engine that is gone (kill -9, a power cut, a forced quit) as interrupted, with
their last open cycle: no live engine can be writing them (`reconcile`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rhtui.engine import events as ev
from rhtui.engine.eventlog import format_event
from rhtui.engine.store import Store, ensure_private_dir

ACQUIRE_WAIT_S = 2.0
"""How long an engine retries a held lock before it refuses (a reader's probe holds it for microseconds)."""
INTERRUPTED = "interrupted: its engine stopped without closing it (killed, forced, or the machine went down)"
"""The end reason of a session closed by the next engine that found it open."""
_LOOPBACK = ("localhost", "0.0.0.0", "::", "::1", "")


class LockError(Exception):
    """A lock file cannot be made or read (not a refusal); the message says where and what to do."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as its file says."""

    pid: int | None = None
    host: str = ""
    session: str | None = None
    session_id: int | None = None
    since: float | None = None
    ollama_host: str | None = None
    data_dir: str | None = None

    @classmethod
    def from_text(cls, text: str) -> Holder | None:
        try:  # the leading object: a rewrite lays the new text over the old, then cuts the rest
            data, _end = json.JSONDecoder().raw_decode(text.lstrip())
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None

        def num(key: str) -> Any:
            value = data.get(key)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        def txt(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        pid, sid = num("pid"), num("session_id")
        return cls(pid=int(pid) if pid is not None else None, host=txt("host") or "", session=txt("session"),
                   session_id=int(sid) if sid is not None else None, since=num("since"),
                   ollama_host=txt("ollama_host"), data_dir=txt("data_dir"))

    def describe(self) -> str:
        """'pid 4242 on host box, session 'rh_main' (#3), since 2025-01-31 14:02:11'."""
        parts = [f"pid {self.pid}" if self.pid is not None else "pid unknown"]
        if self.host:
            parts[0] += f" on host {self.host}"
        if self.session:
            parts.append(f"session {self.session!r}" + (f" (#{self.session_id})" if self.session_id else ""))
        if self.since is not None:
            parts.append("since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since)))
        return ", ".join(parts)

    def alive(self) -> bool | None:
        """Is its process still there? None when it runs on another machine (or the file says no pid)."""
        if self.pid is None or (self.host and self.host != socket.gethostname()):
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class EngineBusy(Exception):
    """Another engine holds a lock this one needs; str() names it and what to do (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


def db_lock_path(db: Path) -> Path:
    """The database's lock file: next to it, `<name>.lock`."""
    return db.with_name(db.name + ".lock")


def runtime_dir() -> Path:
    """Where per-user locks live: $XDG_RUNTIME_DIR/rhtui, else <temp dir>/rhtui-<uid> (0700, ours)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        base = Path(xdg) / "rhtui"
    else:
        base = Path(tempfile.gettempdir()) / f"rhtui-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(base)
    except OSError as exc:
        raise LockError(f"cannot make the lock directory {base}: {exc.strerror or exc}; "
                        "set XDG_RUNTIME_DIR to a directory of yours") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise LockError(f"the lock directory {base} is not a directory of this user's; remove it, or set "
                        "XDG_RUNTIME_DIR to a directory of yours")
    if stat.S_IMODE(info.st_mode) != 0o700:  # whatever the umask made of it
        os.chmod(base, 0o700)
    return base


def host_key(url: str) -> str:
    """One name per Ollama server: scheme dropped, loopback aliases merged, default port filled in."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK or host.startswith("127."):
        host = "loopback"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 11434)
    except ValueError:
        port = 0
    return f"{host}:{port}{parts.path.rstrip('/')}"


def host_lock_path(url: str) -> Path:
    digest = hashlib.sha256(host_key(url).encode()).hexdigest()[:16]
    return runtime_dir() / f"ollama-{digest}.lock"


def holder_of(path: Path) -> Holder | None:
    """Who holds the lock at `path` now; None when nobody does (no file, or its lock is free).

    A shared lock taken and dropped at once; the file is opened read-only, so this works on
    read-only media too."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or Holder()
        except OSError:
            return None  # a file system without locks: nobody can hold it either
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> Holder | None:
    with contextlib.suppress(OSError):
        return Holder.from_text(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
    return None


class FileLock:
    """An exclusive flock on one file, with the holder's JSON in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._info: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, info: dict[str, Any], *, wait_s: float = ACQUIRE_WAIT_S) -> tuple[bool, Holder | None]:
        """Take the lock: (True, the previous holder if its file said one: a stale lock taken over)
        or (False, who holds it). Raises LockError when the file cannot be made."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise LockError(f"cannot open the lock file {self.path}: {exc.strerror or exc}; check that "
                            f"{self.path.parent} is writable, or use --data-dir") from exc
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read(fd)
                    os.close(fd)
                    return False, holder
                time.sleep(0.05)
            except OSError as exc:
                os.close(fd)
                raise LockError(f"cannot lock {self.path}: {exc.strerror or exc}; the file system may not "
                                "support locks: use a local --data-dir") from exc
        previous = _read(fd)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
        self._fd = fd
        self._info = dict(info)
        self._write()
        return True, previous

    def update(self, **fields: Any) -> None:
        if self._fd is None:
            return
        self._info.update(fields)
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self._info, default=str).encode()
        with contextlib.suppress(OSError):  # a full disk must not end the session: the lock is the flock
            os.pwrite(self._fd, data, 0)  # over the old text, then the rest cut: never an empty file
            os.ftruncate(self._fd, len(data))

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with the next engine's open)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class EngineLock:
    """The locks an engine holds for its whole life: its database's and (unless None) its Ollama host's.

    `acquire()` raises EngineBusy naming the engine that holds one, or LockError; it returns the
    holders of stale locks it took over. Use as a context manager, or call `release()`."""

    def __init__(self, db: Path, ollama_host: str | None, *, session: str | None, watch_hint: str,
                 wait_s: float = ACQUIRE_WAIT_S) -> None:
        self.db = db
        self.ollama_host = ollama_host
        self.watch_hint = watch_hint
        self.wait_s = wait_s
        self.info: dict[str, Any] = {
            "pid": os.getpid(), "host": socket.gethostname(), "session": session, "session_id": None,
            "since": time.time(), "ollama_host": ollama_host, "data_dir": str(db.parent), "db": str(db),
        }
        self.locks: list[FileLock] = []

    def acquire(self) -> list[Holder]:
        taken_over: list[Holder] = []
        try:
            ensure_private_dir(self.db.parent)
        except OSError as exc:
            raise LockError(f"cannot create the data dir {self.db.parent}: {exc.strerror or exc}; "
                            "use --data-dir to choose another place") from exc
        try:
            db_lock = FileLock(db_lock_path(self.db))
            ok, who = db_lock.acquire(self.info, wait_s=self.wait_s)
            if not ok:
                raise EngineBusy(
                    f"another rhtui engine is running on the database {self.db} "
                    f"({(who or Holder()).describe()}): one engine per database. Follow it with "
                    f"`{self.watch_hint}`; stop it from its own terminal (q) or with "
                    f"`kill -INT {who.pid if who and who.pid else 'PID'}`; or give this one another --data-dir.",
                    who)
            self.locks.append(db_lock)
            if who is not None:
                taken_over.append(who)
            if self.ollama_host is not None:
                host_lock = FileLock(host_lock_path(self.ollama_host))
                ok, who = host_lock.acquire(self.info, wait_s=self.wait_s)
                if not ok:
                    where = who.data_dir if who and who.data_dir else "its data dir"
                    raise EngineBusy(
                        f"another rhtui engine is using Ollama at {self.ollama_host} "
                        f"({(who or Holder()).describe()}, data dir {where}): one engine per card, or each would "
                        f"unload the other's models. Follow it with `rhtui watch --data-dir {where}`, stop it, or "
                        "point this one at another Ollama with --host.", who)
                self.locks.append(host_lock)
                if who is not None:
                    taken_over.append(who)
        except BaseException:
            self.release()
            raise
        return taken_over

    def session_started(self, session_id: int, name: str) -> None:
        """Write the session's id into the lock files, so `rhtui watch` finds the live session."""
        self.info.update(session_id=session_id, session=name)
        for lock in self.locks:
            lock.update(session_id=session_id, session=name)

    def on_event(self, event: ev.Event) -> None:
        """An EventBus listener: follows SessionStarted."""
        if isinstance(event, ev.SessionStarted):
            self.session_started(event.session_id, event.name)

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks.clear()

    def __enter__(self) -> EngineLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


async def reconcile(store: Store, reason: str = INTERRUPTED) -> list[str]:
    """Close as interrupted every session left open in `store` (call it holding the database's lock:
    then no live engine writes any of them). A SessionFinished event is stored for each, so a
    watcher sees the end. Returns one line per session closed, for the log."""
    lines: list[str] = []
    for info in await store.open_sessions():
        ended, cycles, runs, tokens = await store.close_interrupted(info.id, reason)
        event = ev.SessionFinished(ts=ended, session_id=info.id, cycles=cycles, runs=runs, tokens=tokens,
                                   reason=reason)
        level, text = format_event(event) or ("warning", "")
        await store.add_event(info.id, ended, "SessionFinished", "warning" if level == "info" else level, text,
                              ev.event_data(event))
        lines.append(f"session {info.name!r} (#{info.id}, started "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info.started_at))}) was still open: "
                     f"closed as interrupted at its last sign of life, "
                     f"{time.strftime('%H:%M:%S', time.localtime(ended))}")
    return lines
