"""Parsing: a Modelfile read, decoded and validated as ``ollama create -f`` does.

`parse_modelfile` checks what each instruction means (``parser.go`` CreateRequest,
``api.FormatParams``) and raises `ModelfileError` with the file and line; `decode_modelfile` and
`load_modelfile` read the bytes as Ollama decodes them; `modelfile_warnings` lists what Ollama
accepts but does silently.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from rhtui.engine.modelfile.spec import _SPACE, DEPRECATED_PARAMETERS, PARAMETERS, Modelfile, ModelfileError
from rhtui.engine.modelfile.syntax import _suggest, iter_commands
from rhtui.engine.modelfile.values import _coerce, _range_note

_SEMVER = re.compile(
    r"v(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)"
    r"(?:-(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?\Z"
)
"""golang.org/x/mod/semver IsValid: vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]."""

def parse_modelfile(text: str, path: str | Path | None = None) -> Modelfile:
    """Parse and validate a Modelfile as ``ollama create -f`` does (``parser.go`` ParseFile and
    CreateRequest, ``api.FormatParams``); raise `ModelfileError` naming the file and line.

    Accepted as Ollama accepts them, with a note (see `modelfile_warnings`): a repeated FROM,
    SYSTEM, TEMPLATE, ADAPTER, DRAFT, RENDERER, PARSER, REQUIRES or PARAMETER (the last wins;
    ``stop`` accumulates), deprecated parameters (not sent), an empty SYSTEM or TEMPLATE (Ollama
    keeps the base model's), characters Ollama drops, values outside their usual range."""
    lines: dict[str, int] = {}
    notes: list[tuple[int, str]] = []
    dropped: list[tuple[int, str]] = []
    from_: str | None = None
    single: dict[str, str] = {}
    licenses: list[str] = []
    params: dict[str, Any] = {}
    messages: list[dict[str, str]] = []
    cmds = iter_commands(text, path, dropped=dropped)
    for ln, ch in dropped:
        what = unicodedata.name(ch, "control")
        notes.append((ln, f"a U+{ord(ch):04X} character ({what}) is dropped, as Ollama drops it"))
    for cmd in cmds:
        if cmd.name == "parameter":
            name = cmd.key
            if name in DEPRECATED_PARAMETERS:
                notes.append((cmd.line, f"PARAMETER {name} is deprecated: Ollama ignores it, so it is not sent"))
                continue
            if name not in PARAMETERS:
                low = name.lower()
                known = low in PARAMETERS or low in DEPRECATED_PARAMETERS
                hint = f" (parameter names are case-sensitive: {low})" if known else _suggest(low, PARAMETERS)
                raise ModelfileError(
                    path, cmd.line,
                    f"PARAMETER {name} is not an Ollama parameter{hint}; known: {', '.join(sorted(PARAMETERS))}",
                )
            where = f"parameter {name}"
            if name == "stop":
                params.setdefault("stop", []).append(cmd.value)
                lines[where] = cmd.line
                continue
            value = _coerce(name, cmd.value, path, cmd.line)
            if where in lines:
                notes.append((cmd.line, f"PARAMETER {name} is set again (also on line {lines[where]}); "
                                        "the last value wins, as in Ollama"))
            note = _range_note(name, value)
            if note:
                notes.append((cmd.line, note))
            params[name] = value
            lines[where] = cmd.line
        elif cmd.name == "message":
            messages.append({"role": cmd.key, "content": cmd.value})
            lines.setdefault("message", cmd.line)
        elif cmd.name == "license":
            licenses.append(cmd.value)
            lines.setdefault("license", cmd.line)
        else:
            if cmd.name in lines:
                notes.append((cmd.line, f"{cmd.name.upper()} is given again (also on line {lines[cmd.name]}); "
                                        "the last one wins, as in Ollama"))
            lines[cmd.name] = cmd.line
            value = cmd.value
            if cmd.name == "from":
                if not value.strip(_SPACE):
                    raise ModelfileError(path, cmd.line, "FROM needs a base model, e.g. FROM mistral:7b")
                from_ = value
                continue
            if cmd.name == "requires":
                version = value if value.startswith("v") else "v" + value
                if not _SEMVER.match(version):
                    raise ModelfileError(path, cmd.line,
                                         f"REQUIRES must be a valid semver (e.g. 0.14.0), got {value!r}")
                value = version[1:]
            elif cmd.name in ("adapter", "draft") and not value.strip(_SPACE):
                raise ModelfileError(path, cmd.line, f"{cmd.name.upper()} needs a file")
            single[cmd.name] = value
    for what in ("system", "template"):
        if what in single and single[what] == "":
            notes.append((lines[what], f"{what.upper()} is empty: Ollama keeps the base model's {what}"))
    if from_ is None:
        raise ModelfileError(path, 1, "no FROM instruction: a Modelfile must name its base model, e.g. FROM mistral:7b")
    return Modelfile(
        from_=from_, system=single.get("system"), template=single.get("template"), license=licenses,
        parameters=params, messages=messages, adapter=single.get("adapter"),
        path=Path(path) if path is not None else None, lines=lines, draft=single.get("draft"),
        renderer=single.get("renderer"), parser=single.get("parser"), requires=single.get("requires"),
        notes=sorted(notes),
    )


def decode_modelfile(data: bytes, path: str | Path | None = None) -> str:
    """The text of a Modelfile's bytes, decoded as Ollama decodes them (``unicode.BOMOverride``):
    UTF-16 (little- or big-endian, as PowerShell writes it) or UTF-8 when the file starts with
    that encoding's byte order mark, else UTF-8."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec)
            except UnicodeDecodeError as exc:
                raise ModelfileError(path, None, f"not valid {codec.upper()} text after its byte order mark "
                                                 f"({exc.reason} at byte {exc.start + len(bom)})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelfileError(
            path, None,
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); Ollama would read such bytes as U+FFFD, "
            "so save the file as UTF-8 (or UTF-16 with a byte order mark)",
        ) from None


def load_modelfile(path: Path) -> Modelfile:
    """Read and parse a Modelfile from disk (UTF-8, or UTF-8/UTF-16 with a byte order mark)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelfileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_modelfile(decode_modelfile(data, path), path)

def modelfile_warnings(mf: Modelfile) -> list[str]:
    """What Ollama accepts but does silently, and things that are valid but probably not what was meant."""
    where = f"{mf.path or '<Modelfile>'}"
    out = [f"{where}:{line}: {text}" for line, text in mf.notes]
    ctx, predict = mf.parameters.get("num_ctx"), mf.parameters.get("num_predict")
    if isinstance(ctx, int) and isinstance(predict, int) and predict > ctx:
        out.append(f"{where}: num_predict ({predict}) exceeds num_ctx ({ctx}); the context will shift mid-proposal")
    return out
