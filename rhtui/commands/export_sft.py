"""`rhtui export sft`: the research rounds' answers as training data, and `export -o FILE` for every export.

Two JSONL shapes, both TRL's conversational ones, one example a line:

- `sft`: `{"messages": [system?, user, assistant], "provenance": {...}}`: the exact system and user
  prompt a student was given and the answer it generated;
- `preference`: `{"prompt": [...], "chosen": [assistant], "rejected": [assistant], "provenance": {...}}`:
  two proposals to one round's question that the judges scored at least `PREFERENCE_MARGIN` apart.

Text goes out as it was generated, less what a model can emit but no reader should train on: ANSI/VT
escape sequences and control characters are removed (newlines and tabs kept), not shown as in the
other exports, since a caret-shown escape would become something to learn. Which runs qualify is
`Store.runs_for_export`'s rule; a judge's JSON is never an answer.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.text import Text

from rhtui.engine.records import RunRecord
from rhtui.engine.store import EXPORT_KINDS

SFT_KINDS: dict[str, tuple[str, ...]] = {
    "proposal": ("proposal",), "critique": ("critique",), "synthesis": ("synthesis",), "all": EXPORT_KINDS,
}
"""--kind: which runs' text is exported; `all` is every kind but the judges'."""
PREFERENCE_MARGIN = 1.0
"""Two proposals make a preference pair when their scores differ by at least this much."""
TRAINING_FORMATS = ("sft", "preference")

# ECMA-48: CSI (7- and 8-bit), then OSC/DCS/SOS/PM/APC strings up to their terminator (BEL or ST),
# then any other escape (ESC, optional intermediates, one final byte)
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
)
# what is left: C0 (tab and newline kept), DEL, C1, and the bidi overrides and isolates
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str | None) -> str:
    """`text` with escape sequences and control characters removed; CRLF as LF; newlines and tabs kept."""
    if not text:
        return ""
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))


def _clean_tree(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_tree(v) for v in value]
    return value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _line(obj: dict) -> str:
    """One JSONL line, UTF-8 as it is; U+2028/U+2029 escaped, since some readers split lines on them."""
    return json.dumps(obj, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def _prompt_messages(run: RunRecord) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": clean_text(run.system)}] if run.system else []
    return [*messages, {"role": "user", "content": clean_text(run.prompt)}]


def sft_example(run: RunRecord, session: str) -> dict:
    """One run as TRL's conversational SFT example, with where it came from."""
    return {
        "messages": [*_prompt_messages(run), {"role": "assistant", "content": clean_text(run.proposal)}],
        "provenance": _clean_tree({
            "id": run.id, "kind": run.kind, "student": run.student, "model": run.model, "digest": run.digest,
            "session": session, "session_id": run.session_id, "cycle": run.cycle, "question": run.question,
            "score": run.score, "scores": run.scores,
            "verifier": list(run.verifier) if run.verifier is not None else None,
            "ollama_version": run.ollama_version, "options": run.options, "done_reason": run.done_reason,
            "context_ids": list(run.context_ids), "created_at": _iso(run.started_at),
        }),
    }


def preference_examples(runs: Sequence[RunRecord], sessions: dict[int, str], min_score: float | None,
                        margin: float = PREFERENCE_MARGIN) -> list[dict]:
    """TRL's conversational preference pairs from the scored proposals of each round (same session,
    cycle and question): every two whose scores differ by at least `margin`, the higher chosen (and
    at least `min_score`, if given). The prompt is the pair's shared system and user prompt; when the
    two were prompted differently (each proposer has its role), the round's question alone."""
    rounds: dict[tuple[int, int, str], list[RunRecord]] = {}
    for run in runs:
        if run.kind == "proposal" and run.score is not None:
            rounds.setdefault((run.session_id, run.cycle, run.question), []).append(run)
    out = []
    for (session_id, cycle, question), answers in rounds.items():
        answers.sort(key=lambda r: r.id or 0)
        for i, a in enumerate(answers):
            for b in answers[i + 1:]:
                assert a.score is not None and b.score is not None  # only scored proposals were grouped
                if abs(a.score - b.score) < margin:
                    continue
                chosen, rejected = (a, b) if a.score > b.score else (b, a)
                if min_score is not None and (chosen.score or 0.0) < min_score:
                    continue
                shared = chosen.prompt == rejected.prompt and chosen.system == rejected.system
                if not shared and not question:
                    continue  # nothing both answered
                prompt = _prompt_messages(chosen) if shared else [{"role": "user", "content": clean_text(question)}]
                out.append({
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": clean_text(chosen.proposal)}],
                    "rejected": [{"role": "assistant", "content": clean_text(rejected.proposal)}],
                    "provenance": _clean_tree({
                        "session": sessions.get(session_id, ""), "session_id": session_id, "cycle": cycle,
                        "question": question, "prompt_from": "shared" if shared else "question",
                        "chosen_id": chosen.id, "rejected_id": rejected.id,
                        "chosen_score": chosen.score, "rejected_score": rejected.score,
                        "chosen_scores": chosen.scores, "rejected_scores": rejected.scores,
                        "chosen_student": chosen.student, "rejected_student": rejected.student,
                        "chosen_model": chosen.model, "rejected_model": rejected.model,
                        "chosen_digest": chosen.digest, "rejected_digest": rejected.digest,
                        "created_at": _iso(max(chosen.started_at, rejected.started_at)),
                    }),
                })
    return out


def _why_nothing(counts: dict[str, int], kinds: Sequence[str], min_score: float | None) -> str:
    what = " or ".join(kinds)
    if counts["answers"] == 0:
        return f"no ok {what} run with text is recorded"
    reasons = []
    if counts["failed_verifier"]:
        reasons.append(f"{counts['failed_verifier']} failed the verifier")
    if counts["no_prompt"]:
        reasons.append(f"{counts['no_prompt']} have no recorded prompt (recorded before rhtui kept prompts)")
    if counts["unscored"]:
        reasons.append(f"{counts['unscored']} were never scored by the judges")
    if counts["below_min_score"]:
        reasons.append(f"{counts['below_min_score']} scored under {min_score:g}")
    return f"of {counts['answers']} ok {what} answers, " + ", ".join(reasons)


async def export_training(db: Path, session: str | None, kind: str, min_score: float | None, fmt: str,
                          out: IO[str]) -> int:
    """Write the training JSONL (`fmt` "sft" or "preference") of the sessions named `session` (None:
    all) to `out`. 1, with what filtered everything out said on stderr, when no line was written."""
    from rhtui.commands.report import open_existing

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    store = await open_existing(db, console, f"rhtui: no database at {db}: no session has run yet, so there is "
                                             "nothing to export")
    if store is None:
        return 1
    kinds = SFT_KINDS[kind] if fmt == "sft" else ("proposal",)
    where = f" of session {session!r}" if session is not None else ""
    try:
        sessions = {s.id: s.name for s in await store.list_sessions()}
        if session is not None and session not in sessions.values():
            names = list(dict.fromkeys(reversed(sessions.values())))
            known = (f"the latest: {', '.join(names[:5])}" if names else "there is none yet")
            console.print(Text(f"rhtui: no session named {session!r} in {db} ({known}); "
                               "leave --session out to export every session"))
            return 1
        if fmt == "sft":
            runs = await store.runs_for_export(session, kinds, min_score)
            lines = [_line(sft_example(r, sessions.get(r.session_id, ""))) for r in runs]
        else:
            runs = await store.runs_for_export(session, kinds, None)
            lines = [_line(p) for p in preference_examples(runs, sessions, min_score)]
        if not lines:
            counts = await store.export_counts(session, kinds, min_score if fmt == "sft" else None)
            if fmt == "sft":
                why = _why_nothing(counts, kinds, min_score)
            else:
                scored = sum(1 for r in runs if r.score is not None)
                why = (f"{scored} of {counts['answers']} ok proposals are scored and usable, and no two of one "
                       f"round differ by {PREFERENCE_MARGIN:g} or more"
                       + (f" with the higher at least {min_score:g}" if min_score is not None else ""))
            console.print(Text(f"rhtui: nothing to export{where} in {db}: {why}"))
            return 1
    finally:
        await store.close()
    out.writelines(lines)
    return 0


async def write_atomically(path: Path, work: Callable[[IO[str]], Awaitable[int]]) -> int:
    """Run `work` on a new temporary file beside `path`, then rename it to `path`, so a reader never
    sees half an export and a failed one leaves any earlier file as it was. The file is private (0600):
    it holds the models' answers. `work`'s exit code; 1 when the file cannot be written (said)."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    path = path.expanduser()
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            code = await work(f)
            if code != 0:
                return code
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        return 0
    except OSError as exc:
        console.print(Text(f"rhtui: cannot write {path}: {exc.strerror or exc}; choose another file with -o"))
        return 1
    finally:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)


def check_export_options(what: str, fmt: str | None, kind: str, min_score: float | None) -> str:
    """The format `rhtui export WHAT` writes: `fmt` if it fits WHAT, its default when not given.
    Raises typer.BadParameter (exit 2) for options that do not fit together."""
    if what != "sft":
        if fmt in TRAINING_FORMATS:
            raise typer.BadParameter(f"--format {fmt} is for `rhtui export sft`; {what} is csv or json",
                                     param_hint="--format")
        if kind != "proposal" or min_score is not None:
            raise typer.BadParameter("--kind and --min-score choose what `rhtui export sft` writes",
                                     param_hint="--kind/--min-score")
        return fmt or "csv"
    if fmt not in (None, *TRAINING_FORMATS):
        raise typer.BadParameter(f"`rhtui export sft` writes sft or preference JSONL, not {fmt}",
                                 param_hint="--format")
    if fmt == "preference" and kind != "proposal":
        raise typer.BadParameter("preference pairs are made of one round's proposals: leave --kind out",
                                 param_hint="--kind")
    return fmt or "sft"


async def run_export(db: Path, what: str, session: str | None, fmt: str, kind: str, min_score: float | None,
                     output: Path | None) -> int:
    """`rhtui export`: WHAT in `fmt` to stdout, or atomically to `output`."""
    from rhtui.commands.report import export_data

    def work(out: IO[str]) -> Awaitable[int]:
        if what == "sft":
            return export_training(db, session, kind, min_score, fmt, out)
        return export_data(db, what, session, fmt, out)

    if output is None:
        return await work(sys.stdout)
    return await write_atomically(output, work)
