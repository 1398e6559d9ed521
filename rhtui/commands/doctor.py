"""`rhtui doctor`: one screen of checks, a verdict for each, and the fix for each failure.

The first thing to run on a new GPU box. It reads and asks, and changes nothing
a user could lose: a database that is damaged or from a newer rhtui is
reported, never rewritten.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table
from rich.text import Text

from rhtui.commands.context import CliContext, make_console
from rhtui.commands.models import Student, command_prefix, load_students, model_state
from rhtui.engine.backend import BackendError, BackendUnreachable, ModelInfo, OllamaBackend, model_key
from rhtui.engine.config import ConfigError, Settings, default_config_path, load_settings, value_sources
from rhtui.tui.text import one_line as sanitize_line
from rhtui.tui.text import sanitize

Verdict = Literal["OK", "WARN", "FAIL", "SKIP"]
_STYLE = {"OK": "bold green", "WARN": "bold yellow", "FAIL": "bold red", "SKIP": "dim"}

MIN_OLLAMA = (0, 5, 5)
"""The first Ollama whose /api/create takes structured fields (from, system, parameters)."""
MB = 1024 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


def doctor(ctx: typer.Context) -> None:
    """Check everything rhtui needs, with the fix for each failure (exit 1 on any FAIL)."""
    obj = ctx.obj if isinstance(ctx.obj, CliContext) else CliContext()
    checks = asyncio.run(run_checks(obj, command_prefix(ctx)))
    print_checks(checks)
    raise typer.Exit(1 if any(c.verdict == "FAIL" for c in checks) else 0)


def print_checks(checks: list[Check]) -> None:
    out = make_console()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result", overflow="fold")
    for c in checks:
        detail = Text(sanitize(c.detail))  # server text and file contents are untrusted
        if c.fix and c.verdict in ("FAIL", "WARN"):
            detail.append("\nfix: ", style="bold")
            detail.append(sanitize(c.fix))
        table.add_row(Text(c.verdict, _STYLE[c.verdict]), Text(c.name), detail)
    out.print(table)
    fails = sum(c.verdict == "FAIL" for c in checks)
    warns = sum(c.verdict == "WARN" for c in checks)
    if fails:
        out.print(Text(f"{fails} problem(s) to fix, {warns} warning(s).", "bold red"))
    else:
        out.print(Text("rhtui is ready" + (f" ({warns} warning(s))." if warns else "."), "bold green"))


async def run_checks(obj: CliContext, prefix: str = "rhtui") -> list[Check]:
    checks: list[Check] = []
    settings, check = config_check(obj)
    checks.append(check)
    backend = OllamaBackend(settings.ollama_host, request_timeout_s=5.0)
    try:
        version_check, reachable = await ollama_check(backend, settings, obj)
        checks.append(version_check)
        checks.append(await nvml_check(settings))
        checks += await model_checks(backend, settings, reachable, prefix)
    finally:
        await backend.close()
    checks.append(await database_check(settings))
    checks.append(disk_check(settings))
    return checks


# -- config ------------------------------------------------------------------------------------


def config_check(obj: CliContext) -> tuple[Settings, Check]:
    cli = obj.cli_values()
    try:
        settings = load_settings(obj.config, cli)
    except ConfigError as exc:
        return Settings.model_construct(), Check(
            "config", "FAIL", f"{exc}\n(the other checks use the defaults)",
            "correct the value(s) above where they came from "
            f"(flag, environment or {obj.config or default_config_path()})",
        )
    where = obj.config or (default_config_path() if default_config_path().exists() else None)
    lines = [f"valid; config file: {where}" if where
             else f"valid; no config file ({default_config_path()} does not exist)"]
    try:
        sources = value_sources(settings, obj.config, cli)
    except ConfigError:  # pragma: no cover - the file was just read
        sources = {}
    set_elsewhere = {k: v for k, v in sources.items() if v != "default"}
    for key, source in sorted(set_elsewhere.items()):
        value = _lookup(settings, key)
        lines.append(f"{key} = {value} ({source})")
    if not set_elsewhere:
        lines.append("every value is the default")
    return settings, Check("config", "OK", "\n".join(lines))


def _lookup(settings: Settings, dotted: str) -> object:
    node: object = settings
    for part in dotted.split("."):
        node = getattr(node, part, "?")
    return node


def _host_source(settings: Settings, obj: CliContext) -> str:
    try:
        return value_sources(settings, obj.config, obj.cli_values()).get("ollama_host", "default")
    except ConfigError:  # pragma: no cover
        return "default"


# -- Ollama ------------------------------------------------------------------------------------


def _version_tuple(v: str) -> tuple[int, ...] | None:
    parts = []
    for p in v.lstrip("v").split("-")[0].split("."):
        if not p.isdigit():
            return None
        parts.append(int(p))
    return tuple(parts) or None


async def ollama_check(backend: OllamaBackend, settings: Settings, obj: CliContext) -> tuple[Check, bool]:
    host = settings.ollama_host
    source = _host_source(settings, obj)
    try:
        version = sanitize_line(await backend.version())
    except BackendUnreachable as exc:
        # what was found there: refused, a name that does not resolve, no answer, not Ollama
        found = f": {exc.detail}" if exc.detail and exc.detail != "connection refused" else ""
        fix = (exc.fix if exc.fix != BackendUnreachable.START_FIX else
               "start it with `ollama serve`, or point rhtui at it: --host HOST, RHTUI_OLLAMA_HOST or OLLAMA_HOST "
               "(try the simulator with `rhtui --demo`)")
        detail = f"not reachable at {host} (host from {source}){sanitize_line(found)}"
        return Check("Ollama", "FAIL", detail, fix), False
    except BackendError as exc:
        return Check("Ollama", "FAIL", f"at {host} (host from {source}): {sanitize_line(str(exc))}",
                     "check that the server at that address is Ollama and is healthy (its log says why)"), False
    vt = _version_tuple(version)
    if vt is not None and vt < MIN_OLLAMA:
        need = ".".join(map(str, MIN_OLLAMA))
        return Check("Ollama", "WARN", f"Ollama {version} at {host} (host from {source}) is older than {need}",
                     f"upgrade Ollama to {need} or newer: `rhtui models create` uses its structured create API"), True
    return Check("Ollama", "OK", f"Ollama {version} at {host} (host from {source})"), True


# -- NVML --------------------------------------------------------------------------------------


async def nvml_check(settings: Settings) -> Check:
    from rhtui.engine.hardware import NvmlProbe, NvmlUnavailable

    try:
        probe = await NvmlProbe.open(index=settings.gpu_index)
    except NvmlUnavailable as exc:
        card = (f"the budget uses gpu_total_mb = {settings.gpu_total_mb:g}" if settings.gpu_total_mb
                else "set gpu_total_mb (e.g. 12282 for a 12 GB card) so the budget knows the card's size")
        return Check(
            "GPU (NVML)", "WARN",
            f"NVML not available: {exc}. rhtui still runs, judging VRAM from Ollama's /api/ps "
            "(no live card total, power or temperature)",
            f"install the NVIDIA driver where the GPU is; otherwise {card}",
        )
    except Exception as exc:  # noqa: BLE001 - a driver can fail in many ways; report it
        return Check("GPU (NVML)", "WARN", f"NVML failed: {exc!r}; VRAM will be judged from Ollama's /api/ps",
                     "check the NVIDIA driver (`nvidia-smi`)")
    try:
        snap = await probe.sample()
    finally:
        await probe.close()
    total = f"{snap.vram_total_mb:,.0f} MB" if snap.vram_total_mb else "size not reported"
    used = f", {snap.vram_used_mb:,.0f} MB in use" if snap.vram_used_mb is not None else ""
    return Check("GPU (NVML)", "OK", f"GPU {settings.gpu_index}: {probe.gpu_name or '?'} ({total}{used})")


# -- students and their bases --------------------------------------------------------------------


async def model_checks(backend: OllamaBackend, settings: Settings, reachable: bool, prefix: str) -> list[Check]:
    from rhtui.engine.modelfile import check_modelfiles_dir

    exc = check_modelfiles_dir(settings)
    if exc is not None:
        return [Check("Modelfiles", "FAIL", f"the Modelfiles folder {exc}",
                      "point --modelfiles (or modelfiles_dir) at a folder of *.Modelfile files, or unset it "
                      "to use the six shipped with rhtui")]
    students = load_students(settings)
    out: list[Check] = []
    bad = [st for st in students if st.error is not None]
    for st in bad:
        out.append(Check(f"Modelfile {st.name}", "FAIL", str(st.error), "edit the Modelfile at that line"))
    if not reachable:
        out.append(Check("students", "SKIP", f"{len(students)} student model(s) not checked: Ollama is not reachable"))
        return out
    try:
        pulled = {model_key(m.name): m for m in await backend.list_models()}
    except BackendError as exc:
        out.append(Check("students", "FAIL", f"could not list Ollama's models: {sanitize_line(str(exc))}",
                         "check Ollama's log"))
        return out
    ok: list[str] = []
    missing: list[Student] = []
    drifted: list[tuple[Student, list]] = []
    for st in students:
        if st.error is not None:
            continue
        try:
            state, drifts, _ = await model_state(backend, st)
        except BackendError as exc:
            out.append(Check(f"model {st.name}", "FAIL", sanitize_line(str(exc)), "check Ollama's log"))
            continue
        if state == "missing":
            missing.append(st)
        elif state == "drift":
            drifted.append((st, drifts))
        else:
            ok.append(st.name)
    if ok:
        what = "present and matching its Modelfile" if len(ok) == 1 else "present and matching their Modelfiles"
        out.append(Check("students", "OK", f"{len(ok)} {what}: {', '.join(ok)}"))
    created = [st for st in missing if st.mf is not None]
    brought = [st for st in missing if st.mf is None]
    if created:
        names = " ".join(st.name for st in created)
        out.append(Check("students missing", "FAIL", f"not in Ollama: {', '.join(st.name for st in created)}",
                         f"{prefix} models create {names}"))
    if brought:
        out.append(Check("students missing", "FAIL",
                         f"not in Ollama (no Modelfile: brought by you): {', '.join(st.tag for st in brought)}",
                         "; ".join(f"ollama pull {st.tag}" for st in brought)))
    if drifted:
        lines = [f"{st.name}: {drift_keys(d)}" for st, d in drifted]
        out.append(Check("students drifted", "WARN",
                         "differ from their Modelfiles (they run, but not as defined):\n" + "\n".join(lines),
                         f"{prefix} models create {' '.join(st.name for st, _ in drifted)}"))
    out += base_checks(students, pulled, missing)
    return out


def drift_keys(drifts: list, limit: int = 4) -> str:
    """'system prompt, num_ctx, temperature and 3 more' for a list of drifts."""
    keys = ["system prompt" if d.what == "system" else d.what.replace("parameter ", "") for d in drifts]
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def base_checks(students: list[Student], pulled: dict[str, ModelInfo], missing: list[Student]) -> list[Check]:
    bases: dict[str, list[Student]] = {}
    for st in students:
        if st.base:
            bases.setdefault(st.base, []).append(st)
    if not bases:
        return []
    out: list[Check] = []
    present = []
    for base, users in bases.items():
        if model_key(base) in pulled:
            present.append(base)
            continue
        needed = [u.name for u in users if u in missing]
        detail = (f"not pulled; {', '.join(needed)} cannot be created until it is "
                  "(Ollama pulls it during `rhtui models create` when it can reach its registry)"
                  if needed else
                  f"not pulled; {', '.join(u.name for u in users)} exist(s) already, but recreating needs it")
        out.append(Check(f"base {base}", "WARN", detail, f"ollama pull {base}"))
    if present:
        sizes = sum((pulled[model_key(b)].size_mb or 0) for b in present)
        out.insert(0, Check("base models", "OK",
                            f"{len(present)} pulled ({sizes / 1024:.1f} GB): {', '.join(present)}"))
    return out


# -- database and disk ---------------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def _header_version(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            h = f.read(100)
    except OSError:
        return None
    if len(h) < 64 or not h.startswith(b"SQLite format 3\x00"):
        return None
    return int.from_bytes(h[60:64], "big")


async def database_check(settings: Settings) -> Check:
    path = settings.db_path
    fix_dir = "choose a writable place with --data-dir or RHTUI_DATA_DIR"
    if not path.exists():
        anc = _existing_ancestor(path.parent)
        if not anc.is_dir():
            return Check("database", "FAIL", f"{path} cannot be created: {anc} is not a directory", fix_dir)
        if not os.access(anc, os.W_OK | os.X_OK):
            return Check("database", "FAIL", f"{path} cannot be created: no write permission on {anc}", fix_dir)
        return Check("database", "OK", f"{path} does not exist yet; it will be created on the first run")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return Check("database", "FAIL", f"{path} (or its directory) is not writable",
                     f"fix its permissions, or {fix_dir}")
    from rhtui.engine.store import SCHEMA_VERSION, Store, StoreError

    before = _header_version(path)
    try:
        store = await Store.open(path)
    except StoreError as exc:
        return Check("database", "FAIL", str(exc), "move the file aside (it was not modified), or use --data-dir")
    try:
        version = await store.schema_version()
    finally:
        await store.close()
    current = version == SCHEMA_VERSION
    detail = f"{path}: writable, schema v{version} (current)" if current else f"{path}: schema v{version}"
    if before is not None and before < version:
        detail += f", upgraded from v{before}"
    return Check("database", "OK" if current else "WARN", detail)


def _ollama_models_dir() -> Path | None:
    env = os.environ.get("OLLAMA_MODELS")
    defaults = [Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]
    for p in ([Path(env)] if env else []) + defaults:
        if p.is_dir():
            return p
    return None


def disk_check(settings: Settings) -> Check:
    where = _existing_ancestor(settings.data_dir)
    try:
        free_mb = shutil.disk_usage(where).free / MB
    except OSError as exc:
        return Check("disk", "WARN", f"cannot read free space at {where}: {exc.strerror}")
    lines = [f"{free_mb / 1024:,.1f} GB free for the data dir ({where})"]
    verdict: Verdict = "OK"
    fix = ""
    if free_mb < 100:
        verdict, fix = "FAIL", "free some space, or put the data dir elsewhere with --data-dir"
    elif free_mb < 1024:
        verdict, fix = "WARN", "less than 1 GB free: long sessions store hardware samples; free some space"
    models = _ollama_models_dir()
    if models is not None:
        try:
            mfree = shutil.disk_usage(models).free / MB
            lines.append(f"{mfree / 1024:,.1f} GB free for Ollama's models ({models})")
            if mfree < 5 * 1024 and verdict == "OK":
                verdict, fix = "WARN", "pulling a base model needs 4-5 GB: free some space where Ollama keeps models"
        except OSError:
            pass
    return Check("disk", verdict, "\n".join(lines), fix)
