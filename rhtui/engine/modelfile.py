"""Modelfiles: parse, validate, render, and map onto Ollama's create API.

Read as ``ollama create -f`` reads them (``parser/parser.go`` ParseFile and CreateRequest,
``api/types.go`` FormatParams): one instruction per line (FROM, PARAMETER, SYSTEM, TEMPLATE,
LICENSE, MESSAGE, ADAPTER, DRAFT, RENDERER, PARSER, REQUIRES; names case-insensitive),
``#`` comments, values that run to the end of the line, and quoted values (``"…"`` or
``\"\"\"…\"\"\"``) that may span lines and end at the first line where the quoting closes;
UTF-8, or UTF-16 with a byte order mark. What Ollama rejects is rejected before anything is
sent — an unknown instruction or parameter (parameter names are case-sensitive), a value that
is not of the option's Go type, a missing FROM, an unclosed block — as a `ModelfileError`
whose text names the file, the line and what was expected::

    rh-beta.Modelfile:12: PARAMETER temperature expects a number, got 'hot'

What Ollama accepts but does silently (a repeated instruction: the last wins; deprecated
parameters: not sent; an empty SYSTEM: the base model's is kept; characters it drops) is
accepted, with a warning from `modelfile_warnings`.

`render_modelfile` writes a Modelfile back (``parse(render(x)) == x``);
`to_create_request` maps one onto Ollama's structured create request, as the CLI does (a FROM
that names a local file becomes ``files``, uploaded by the backend); `compare_with_show` lists
how a model in Ollama (``/api/show``, read leniently: Ollama writes values bare, see
`read_show`) differs from its Modelfile. This module never talks to Ollama.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.resources
import json
import math
import os
import re
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rhtui.engine.config import Settings, StudentSpec

# -- what Ollama accepts ---------------------------------------------------------------

INSTRUCTIONS: tuple[str, ...] = (
    "from", "parameter", "system", "template", "license", "message", "adapter", "draft", "renderer", "parser",
    "requires",
)
"""Every instruction Ollama's parser accepts (``parser/parser.go`` isValidCommand)."""

OLLAMA_INSTRUCTIONS: tuple[str, ...] = INSTRUCTIONS
"""Kept for callers of the earlier name: the same as `INSTRUCTIONS`."""

MESSAGE_ROLES: tuple[str, ...] = ("system", "user", "assistant")

ParamKind = Literal["int", "float", "bool", "strings"]

PARAMETERS: dict[str, ParamKind] = {
    # api.Runner: load-time options (set when the model is loaded)
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "int",
    "use_mmap": "bool",
    "num_thread": "int",
    "draft_num_predict": "int",
    # api.Options: run-time options
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "top_p": "float",
    "min_p": "float",
    "typical_p": "float",
    "repeat_last_n": "int",
    "temperature": "float",
    "repeat_penalty": "float",
    "presence_penalty": "float",
    "frequency_penalty": "float",
    "stop": "strings",
}
"""Ollama's model options, by their JSON names (``api/types.go`` Options and Runner), and the Go
type each is parsed as (``api.FormatParams``: int64, float32, bool, a list of strings). Names are
case-sensitive, as there."""

DEPRECATED_PARAMETERS: frozenset[str] = frozenset(
    {
        "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
        "mirostat", "mirostat_tau", "mirostat_eta",
    }
)
"""``parser.go`` deprecatedParameters: `ollama create` warns about them and does not send them
(whatever their value); so does rhtui."""

# Usual ranges, outside which a value is accepted (Ollama checks only the type) but warned about.
# (low, high) inclusive; None = unbounded on that side.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "num_ctx": (1, None),
    "num_batch": (1, None),
    "num_gpu": (-1, None),
    "main_gpu": (0, None),
    "num_thread": (0, None),
    "draft_num_predict": (0, None),
    "num_keep": (-1, None),
    "num_predict": (-2, None),
    "top_k": (0, None),
    "top_p": (0, 1),
    "min_p": (0, 1),
    "typical_p": (0, 1),
    "repeat_last_n": (-1, None),
    "temperature": (0, None),
    "repeat_penalty": (0, None),
}

_INT64 = (-(2**63), 2**63 - 1)
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")  # strconv.ParseInt(s, 10, 64): ASCII digits, no underscores
_GO_DEC = re.compile(r"[+-]?(?:[0-9_]+(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][+-]?[0-9_]+)?\Z")
_GO_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?|\.[0-9a-fA-F_]+)[pP][+-]?[0-9_]+\Z")
_GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)\Z", re.IGNORECASE)
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_TRIM = " \t\r\n"
"""What Go's strings.TrimSpace can meet in a value: the parser keeps no other space character."""
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
"""Go's unicode.IsSpace (strings.TrimSpace), for text Ollama sends back."""
_NEWLINE = re.compile(r"\r\n|\r|\n")
_SEMVER = re.compile(
    r"v(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*)"
    r"(?:-(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?\Z"
)
"""golang.org/x/mod/semver IsValid: vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]."""


def _printable(ch: str) -> bool:
    """Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    Ollama's parser drops every other character of a value, except tabs and line ends."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"

class ModelfileError(ValueError):
    """A Modelfile that cannot be used; str() is ``FILE:LINE: what is wrong``."""

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.message = message
        where = str(path) if path is not None else "<Modelfile>"
        if line:
            where += f":{line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Modelfile:
    """A parsed Modelfile. Equality ignores where it came from."""

    from_: str
    system: str | None = None
    template: str | None = None
    license: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    """Option name → value (int, float or bool); ``stop`` is a list of strings."""
    messages: list[dict[str, str]] = field(default_factory=list)
    """``{"role": ..., "content": ...}`` in file order."""
    adapter: str | None = None
    path: Path | None = field(default=None, compare=False)
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Instruction ("from", "system", "parameter temperature", ...) → the line of its last occurrence."""
    draft: str | None = None
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None
    """The Ollama version the model needs, as sent (without a leading ``v``)."""
    notes: list[tuple[int, str]] = field(default_factory=list, compare=False, repr=False)
    """(line, text): what Ollama accepts but does silently — see `modelfile_warnings`."""

    @property
    def num_ctx(self) -> int | None:
        return self.parameters.get("num_ctx")

    @property
    def num_predict(self) -> int | None:
        return self.parameters.get("num_predict")


# -- reading -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """One instruction as written: ``name`` lower-case, ``key`` the parameter name or message role."""

    name: str
    key: str
    value: str
    line: int


def _unquote(s: str) -> tuple[str, bool]:
    """Ollama's unquote: (value, closed)."""
    if s.startswith('"""'):
        if len(s) >= 6 and s.endswith('"""'):
            return s[3:-3], True
        return "", False
    if s.startswith('"'):
        if len(s) >= 2 and s.endswith('"'):
            return s[1:-1], True
        return "", False
    return s, True


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


_NIL, _NAME, _VALUE, _PARAM, _MESSAGE, _COMMENT = range(6)


def _token(text: str, start: int) -> str:
    """The word that starts at `start` (up to the next space or line end), for error messages."""
    m = re.compile(r"[^ \t\r\n]*").match(text, start)
    return m.group(0) if m else ""


def iter_commands(
    text: str,
    path: str | Path | None = None,
    instructions: tuple[str, ...] = INSTRUCTIONS,
    *,
    lenient: bool = False,
    dropped: list[tuple[int, str]] | None = None,
) -> list[Command]:
    """Split a Modelfile into its instructions, as Ollama's parser does (``parser.go`` ParseFile,
    ported state for state): an instruction name of letters and one space or tab; PARAMETER's
    name (letters, digits, ``_``) and MESSAGE's role end at the next space; a value runs to the
    first line end at which its quoting (``"…"`` or ``\"\"\"…\"\"\"``) is closed; characters that Go's
    strconv.IsPrint rejects (control characters, spaces other than ' ' and tab, format characters)
    are dropped from values — each one is added to `dropped` as (line, character).

    Checks only the syntax; `parse_modelfile` checks what the values mean. With `lenient`, a
    syntax error ends the reading instead of raising: the instructions read before it are
    returned (for the Modelfile text Ollama writes, which it does not always read back itself).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    names = ", ".join(n.upper() for n in instructions)
    out: list[Command] = []
    state = _NIL
    buf: list[str] = []
    kind = key = ""
    line = start = 1
    tok = 0
    prev = ""

    def unknown(word: str) -> ModelfileError:
        return ModelfileError(path, start, f"unknown instruction {word!r}; expected one of "
                                           f"{names}{_suggest(word.upper(), [n.upper() for n in instructions])}")

    def head() -> str:
        return (kind.upper() + (" " + key if key else "")).strip()

    try:
        for i, ch in enumerate(text):
            if prev == "\n" or (prev == "\r" and ch != "\n"):
                line += 1
            prev = ch
            if state == _NIL:
                if ch == "#":
                    state = _COMMENT
                elif ch not in " \t\r\n":
                    state, start, tok, key = _NAME, line, i, ""
                    buf = [ch] if _printable(ch) else []
            elif state == _COMMENT:
                if ch in "\r\n":
                    state = _NIL
            elif state == _NAME:
                if ch.isascii() and ch.isalpha():
                    buf.append(ch)
                    continue
                word = "".join(buf)
                if ch in " \t":
                    kind = word.lower()
                    if kind not in instructions:
                        raise unknown(_token(text, tok))
                    buf = []
                    state = _PARAM if kind == "parameter" else _MESSAGE if kind == "message" else _VALUE
                elif word.lower() in instructions:
                    if ch in "\r\n":
                        raise ModelfileError(path, start, f"{word.upper()} needs a value")
                    raise ModelfileError(path, start,
                                         f"expected a space after {word.upper()}, got {_token(text, tok)!r}")
                else:
                    raise unknown(_token(text, tok))
            elif state in (_PARAM, _MESSAGE):
                ok = ch.isascii() and (ch.isalnum() or ch == "_" if state == _PARAM else ch.isalpha())
                if ok:
                    buf.append(ch)
                    continue
                key = "".join(buf)
                what = "a parameter name" if state == _PARAM else "a role (system, user or assistant)"
                if ch in " \t" and key:
                    if state == _MESSAGE and key not in MESSAGE_ROLES:
                        raise ModelfileError(path, start,
                                             f"MESSAGE role must be system, user or assistant, got {key!r}")
                    buf = []
                    state = _VALUE
                elif ch in " \t":  # Ollama reads an empty name here and then rejects it
                    raise ModelfileError(path, start, f"{kind.upper()} expects {what} after exactly one space, "
                                                      f"got {kind.upper() + text[tok + len(kind):i + 1]!r}…")
                elif ch in "\r\n" and key:
                    raise ModelfileError(path, start, f"{kind.upper()} {key} needs a value")
                else:
                    got = key + _token(text, i)
                    raise ModelfileError(path, start,
                                         f"{kind.upper()} expects {what} then a value, got {got or 'nothing'!r}")
            elif state == _VALUE:
                if ch in " \t":
                    buf.append(ch)
                elif ch in "\r\n":
                    value, closed = _unquote("".join(buf).strip(_TRIM))
                    if closed:
                        out.append(Command(kind, key, value, start))
                        buf, state = [], _NIL
                    else:
                        buf.append(ch)
                elif _printable(ch):
                    buf.append(ch)
                elif dropped is not None:
                    dropped.append((line, ch))
        # the end of the text
        if state == _VALUE:
            raw = "".join(buf).strip(_TRIM)
            value, closed = _unquote(raw)
            if not closed:
                opener = '"""' if raw.startswith('"""') else '"'
                raise ModelfileError(
                    path, start,
                    f"{head()} opens a {opener} block here that is never closed (expected a line ending with {opener})",
                )
            out.append(Command(kind, key, value, start))
        elif state == _NAME:
            word = "".join(buf)
            if word.lower() not in instructions:
                raise unknown(_token(text, tok))
            raise ModelfileError(path, start, f"{word.upper()} needs a value")
        elif state in (_PARAM, _MESSAGE):
            key = "".join(buf)
            raise ModelfileError(path, start,
                                 f"{head()} needs a value" if key else f"{kind.upper()} needs a name and a value")
    except ModelfileError:
        if lenient:
            return out
        raise
    return out


def _go_float32(raw: str) -> float | None:
    """strconv.ParseFloat(raw, 32) as Ollama's FormatParams calls it, then float32 as Go's JSON
    encoder writes it (the shortest decimal that reads back as the same float32). None: not a
    number Go reads, or one outside float32's range (which Go reports as an error)."""
    if "_" in raw and not _underscore_ok(raw):
        return None
    text = raw.replace("_", "")
    try:
        if _GO_HEX.match(raw):
            value = float.fromhex(text)
        elif _GO_DEC.match(raw):
            value = float(text)
        else:
            return None
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except (ValueError, OverflowError):
        return None
    return float32_value(single)


def float32_value(value: float) -> float:
    """`value` rounded to float32, written with the fewest digits that keep it (as Go's
    encoding/json writes a float32, which is what `ollama create` sends)."""
    single = struct.unpack("<f", struct.pack("<f", value))[0]
    if not math.isfinite(single) or single == 0:
        return single
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
            return float(text)
    return single  # pragma: no cover - nine digits always suffice


def _underscore_ok(s: str) -> bool:
    """Go's strconv underscoreOK: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if c.isdigit() or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _coerce(name: str, raw: str, path: str | Path | None, line: int | None) -> Any:
    """The value of PARAMETER `name` as Ollama's FormatParams parses it (by the Go type of the option)."""
    kind = PARAMETERS[name]
    if kind == "strings":
        return raw
    if kind == "bool":
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ModelfileError(path, line, f"PARAMETER {name} expects true or false, got {raw!r}")
    if kind == "int":
        if not _GO_INT.match(raw):
            raise ModelfileError(path, line, f"PARAMETER {name} expects a whole number, got {raw!r}")
        value = int(raw)
        if not _INT64[0] <= value <= _INT64[1]:
            raise ModelfileError(path, line,
                                 f"PARAMETER {name} expects a whole number that fits in 64 bits, got {raw!r}")
        return value
    if _GO_SPECIAL.match(raw):
        raise ModelfileError(path, line, f"PARAMETER {name} expects a finite number, got {raw!r}")
    number = _go_float32(raw)
    if number is None:
        if _GO_DEC.match(raw.replace("_", "")) or _GO_HEX.match(raw.replace("_", "")):
            raise ModelfileError(path, line, f"PARAMETER {name} expects a number within float32's range, got {raw!r}")
        raise ModelfileError(path, line, f"PARAMETER {name} expects a number, got {raw!r}")
    return number


def _range_note(name: str, value: Any) -> str | None:
    """Why `value` is unusual for `name` (Ollama accepts it: it checks only the type)."""
    lo, hi = _RANGES.get(name, (None, None))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            span = f"from {lo:g} to {hi:g}"
        elif lo is not None:
            span = f"at least {lo:g}"
        else:
            span = f"at most {hi:g}"
        return f"PARAMETER {name} {_fmt(value)} is outside its usual range ({span}); Ollama accepts it as is"
    return None


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


# -- writing -----------------------------------------------------------------------------


def _read_value(raw: str) -> str | None:
    """What the parser makes of `raw` written after an instruction (None: it would not end there)."""
    try:
        cmds = iter_commands("SYSTEM " + raw + "\n")
    except ModelfileError:
        return None
    return cmds[0].value if len(cmds) == 1 else None


def quote_value(s: str, what: str = "value") -> str:
    """`s` written so that the parser reads it back exactly: bare, \"\"\"…\"\"\" or "…"."""
    bad = next((ch for ch in s if ch not in "\t\r\n" and not _printable(ch)), None)
    if bad is not None:
        raise ModelfileError(None, None, f"{what} contains a character Ollama's parser drops (U+{ord(bad):04X}) "
                                         "and cannot be written to a Modelfile")
    candidates = []
    if s and "\n" not in s and "\r" not in s:
        candidates.append(s)
    candidates += ['"""' + s + '"""', '"' + s + '"']
    for c in candidates:
        if _read_value(c) == s:
            return c
    raise ModelfileError(None, None, f"{what} {s[:40]!r}… cannot be written with Modelfile quoting")


def _format_param(name: str, value: Any) -> str:
    kind = PARAMETERS.get(name)
    if kind is None:
        raise ModelfileError(None, None, f"PARAMETER {name} is not an Ollama parameter")
    if kind == "bool":
        if not isinstance(value, bool):
            raise ModelfileError(None, None, f"PARAMETER {name} expects true or false, got {value!r}")
        return "true" if value else "false"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
            raise ModelfileError(None, None, f"PARAMETER {name} expects a whole number, got {value!r}")
        return str(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ModelfileError(None, None, f"PARAMETER {name} expects a number, got {value!r}")
        text = repr(float(value))
        if _go_float32(text) is None:
            raise ModelfileError(None, None, f"PARAMETER {name} expects a number within float32's range, got {value!r}")
        return text
    raise AssertionError(kind)  # pragma: no cover


def render_modelfile(mf: Modelfile, *, header: str | None = None) -> str:
    """The Modelfile as text; `parse_modelfile(render_modelfile(mf)) == mf`."""
    out: list[str] = []
    if header:
        out += ["# " + line if line else "#" for line in header.splitlines()]
    out.append("FROM " + quote_value(mf.from_, "FROM"))
    for what in ("adapter", "draft"):
        value = getattr(mf, what)
        if value is not None:
            out.append(f"{what.upper()} " + quote_value(value, what.upper()))
    for name in sorted(mf.parameters, key=_param_order):
        value = mf.parameters[name]
        if name == "stop":
            stops = [value] if isinstance(value, str) else list(value)
            for s in stops:
                if not isinstance(s, str):
                    raise ModelfileError(None, None, f"PARAMETER stop expects strings, got {s!r}")
                out.append("PARAMETER stop " + (quote_value(s, "PARAMETER stop") if s else '""'))
        else:
            out.append(f"PARAMETER {name} {_format_param(name, value)}")
    for what in ("template", "system", "renderer", "parser", "requires"):
        value = getattr(mf, what)
        if value is not None:
            out.append(f"{what.upper()} " + quote_value(value, what.upper()))
    for lic in mf.license:
        out.append("LICENSE " + quote_value(lic, "LICENSE"))
    for msg in mf.messages:
        role = msg.get("role", "")
        if role not in MESSAGE_ROLES:
            raise ModelfileError(None, None, f"MESSAGE role must be system, user or assistant, got {role!r}")
        out.append(f"MESSAGE {role} " + quote_value(msg.get("content", ""), "MESSAGE"))
    return "\n".join(out) + "\n"


_ORDER = list(PARAMETERS)


def _param_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


# -- Ollama's create API -------------------------------------------------------------------

_PATHLIKE = re.compile(r"^(?:\.{1,2}(?:[/\\]|$)|[/\\~]|[A-Za-z]:[/\\])|\.(?:gguf|bin|safetensors)$", re.IGNORECASE)
"""A FROM value that can only be meant as a file (``./m.gguf``, ``/models/x``, ``~/m.gguf``)."""


def local_path(value: str, modelfile: Path | None) -> Path:
    """Where ``ollama create -f`` looks for the file a FROM, ADAPTER or DRAFT names (``parser.go``
    expandPath): an absolute path as is, ``~`` or ``~user`` from that home folder, anything else
    relative to the Modelfile's folder."""
    if value.startswith(("/", "\\")) or os.path.isabs(value):
        p = value
    elif value.startswith("~"):
        p = os.path.expanduser(value)
    else:
        base = Path(modelfile).parent if modelfile is not None else Path.cwd()
        p = os.path.join(base, value)
    return Path(os.path.normpath(os.path.abspath(p)))


def from_file(mf: Modelfile) -> Path | None:
    """The local file `mf`'s FROM names, when it names one that exists (as the CLI decides:
    FROM is a file when such a file exists, else a model name); None for a model name."""
    p = local_path(mf.from_, mf.path)
    return p if p.exists() else None


def _blob_file(mf: Modelfile, what: str, value: str) -> Path:
    line = mf.lines.get(what)
    p = local_path(value, mf.path)
    if not p.exists():
        raise ModelfileError(mf.path, line, f"{what.upper()} {value}: there is no such file ({p}; a relative path is "
                                            "taken from the Modelfile's folder)")
    if p.is_dir():
        raise ModelfileError(
            mf.path, line,
            f"{what.upper()} {value} is a folder ({p}); rhtui uploads one GGUF file, not a folder of model files "
            "(safetensors): create this model with `ollama create NAME -f MODELFILE` instead",
        )
    return p


def to_create_request(mf: Modelfile) -> dict[str, Any]:
    """Keyword arguments for `OllamaBackend.create` (besides ``model``): what ``ollama create -f``
    sends for `mf` (``parser.go`` CreateRequest), only what is set.

    A FROM that names an existing file (relative to the Modelfile's folder), an ADAPTER and a
    DRAFT become ``files``, ``adapters`` and ``draft_files``: ``{file name: local Path}``; the
    backend uploads each file as a blob and sends its sha256 digest in its place, as the CLI does.
    A FROM that can only be a path but names no file is refused here, before anything is sent."""
    req: dict[str, Any] = {}
    path = from_file(mf)
    if path is not None:
        if path.is_dir():
            _blob_file(mf, "from", mf.from_)  # raises: a folder
        req["files"] = {path.name: path}
    elif _PATHLIKE.search(mf.from_.strip()):
        raise ModelfileError(
            mf.path, mf.lines.get("from"),
            f"FROM {mf.from_}: there is no such file ({local_path(mf.from_, mf.path)}; a relative path is taken "
            "from the Modelfile's folder); to build on a model in Ollama, name it, e.g. FROM mistral:7b",
        )
    else:
        req["from_"] = mf.from_
    if mf.adapter is not None:
        p = _blob_file(mf, "adapter", mf.adapter)
        req["adapters"] = {p.name: p}
    if mf.draft is not None:
        p = _blob_file(mf, "draft", mf.draft)
        if path is not None and p.resolve() == path.resolve():
            raise ModelfileError(mf.path, mf.lines.get("draft"),
                                 f"DRAFT must not reference the same local path as FROM: {p}")
        req["draft_files"] = {p.name: p}
    if mf.template:  # Ollama's JSON omits an empty one, and keeps the base model's
        req["template"] = mf.template
    if mf.license:
        req["license"] = list(mf.license)
    if mf.system:
        req["system"] = mf.system
    if mf.parameters:
        req["parameters"] = {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in mf.parameters.items()}
    if mf.messages:
        req["messages"] = [{"role": m["role"], "content": m["content"]} for m in mf.messages]
    for what in ("renderer", "parser", "requires"):
        value = getattr(mf, what)
        if value:
            req[what] = value
    return req


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, as Ollama names its blobs."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def wire_request(model: str, mf: Modelfile) -> dict[str, Any]:
    """The JSON body POSTed to /api/create for `mf` (for --dry-run), local files replaced by
    their digests as they would be after the upload."""
    fields = to_create_request(mf)
    for key in ("files", "adapters", "draft_files"):
        if key in fields:
            fields[key] = {name: file_digest(p) for name, p in fields[key].items()}
    extra = {k: fields.pop(k) for k in ("draft_files", "renderer", "parser", "requires") if k in fields}
    try:
        from ollama._types import CreateRequest  # the client's own serialisation

        body = CreateRequest(model=model, stream=True, **fields).model_dump(exclude_none=True)
    except Exception:  # pragma: no cover - a different client version
        body = {"model": model, "stream": True}
        for k, v in fields.items():
            body["from" if k == "from_" else k] = v
    return body | extra


def modelfile_warnings(mf: Modelfile) -> list[str]:
    """What Ollama accepts but does silently, and things that are valid but probably not what was meant."""
    where = f"{mf.path or '<Modelfile>'}"
    out = [f"{where}:{line}: {text}" for line, text in mf.notes]
    ctx, predict = mf.parameters.get("num_ctx"), mf.parameters.get("num_predict")
    if isinstance(ctx, int) and isinstance(predict, int) and predict > ctx:
        out.append(f"{where}: num_predict ({predict}) exceeds num_ctx ({ctx}); the context will shift mid-proposal")
    return out


# -- comparing with a model in Ollama -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drift:
    """One way a model in Ollama differs from its Modelfile."""

    what: str
    """'system', 'template', 'license', 'renderer', 'parser', 'requires' or 'parameter NAME'."""
    expected: Any
    actual: Any

    def describe(self) -> str:
        if self.what == "license":
            return f"license {_brief(self.expected)} is not among the model's licenses in Ollama"
        if self.what in ("system", "template"):
            if self.actual is None:
                return f"{self.what} prompt missing in Ollama" if self.what == "system" else "template missing in Ollama"
            return f"{self.what} differs from the Modelfile ({_brief(self.actual)} instead of {_brief(self.expected)})"
        if self.actual is None:
            return f"{self.what} is not set in Ollama (Modelfile: {_fmt(self.expected)})"
        return f"{self.what} is {_fmt(self.actual)} in Ollama, {_fmt(self.expected)} in the Modelfile"


def _brief(s: Any) -> str:
    text = str(s).replace("\n", " ").strip()
    return repr(text[:37] + "…" if len(text) > 38 else text) + f", {len(str(s))} chars"


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


_GO_ESCAPE = re.compile(r"""\\(?:([abfnrtv\\"'])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))""")
_GO_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'"}


def _go_string(s: str) -> str:
    """A string as Go's ``%#v`` (strconv.Quote) writes it, read back; anything else as is."""
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return s

    def one(m: re.Match[str]) -> str:
        simple, x, u, big_u, octal = m.groups()
        if simple:
            return _GO_SIMPLE[simple]
        code = int(x or u or big_u, 16) if (x or u or big_u) else int(octal, 8)
        return chr(code) if code <= 0x10FFFF else "\ufffd"

    return _GO_ESCAPE.sub(one, s[1:-1])


def _loose(name: str, raw: Any) -> Any:
    """A parameter value as Ollama reports it, as the type the Modelfile would give it."""
    kind = PARAMETERS.get(name)
    if not isinstance(raw, str):
        return raw
    if kind in ("int", "float"):
        try:
            v = float(raw)
        except ValueError:
            return raw
        return int(v) if kind == "int" and v.is_integer() else v
    if kind == "bool":
        return True if raw in _TRUE else False if raw in _FALSE else raw
    return raw


def parse_show_parameters(text: str) -> dict[str, Any]:
    """Ollama's /api/show ``parameters`` text (``name   value`` per line; stop repeats) as a dict."""
    out: dict[str, Any] = {}
    for line in (text or "").splitlines():
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        name = parts[0]
        raw = parts[1].strip() if len(parts) > 1 else ""
        if raw.startswith('"'):
            raw = _go_string(raw)
        if name == "stop":
            out.setdefault("stop", []).append(raw)
        else:
            out[name] = _loose(name, raw)
    return out


@dataclass(frozen=True, slots=True)
class ShownModel:
    """What /api/show says defines a model: its system prompt, template, parameters, licenses,
    renderer, parser and the Ollama version it requires."""

    system: str | None
    template: str | None
    parameters: dict[str, Any]
    licenses: list[str] = field(default_factory=list)
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None


def read_show(modelfile_text: str, parameters_text: str = "", template: str | None = None, *,
              system: str | None = None, license: str | None = None, renderer: str | None = None,
              parser: str | None = None, requires: str | None = None) -> ShownModel:
    """Read /api/show: its ``modelfile`` text leniently (FROM is a blob path there; Ollama writes a
    value bare unless it holds a line end or leading/trailing spaces, which it does not always read
    back itself: a line that does not parse ends the reading and keeps what came before it), then
    the answer's own fields where given, which are exact: ``parameters``, ``template``, ``system``
    (a top-level field the official client's ShowResponse drops), ``license``, ``renderer``,
    ``parser``, ``requires``."""
    found: dict[str, str] = {}
    params: dict[str, Any] = {}
    licenses: list[str] = []
    for cmd in iter_commands(modelfile_text or "", None, INSTRUCTIONS, lenient=True):
        if cmd.name == "parameter":
            if cmd.key == "stop":
                params.setdefault("stop", []).append(cmd.value)
            else:
                params[cmd.key] = _loose(cmd.key, cmd.value)
        elif cmd.name == "license":
            licenses.append(cmd.value)
        elif cmd.name in ("system", "template", "renderer", "parser", "requires"):
            found[cmd.name] = cmd.value
    if parameters_text and parameters_text.strip():
        params = parse_show_parameters(parameters_text)
    given = {"template": template or None, "system": system, "renderer": renderer, "parser": parser,
             "requires": requires}
    for key, value in given.items():
        if value is not None:
            found[key] = value
    if license and not licenses:
        licenses = [license]
    return ShownModel(system=found.get("system"), template=found.get("template"), parameters=params,
                      licenses=licenses, renderer=found.get("renderer"), parser=found.get("parser"),
                      requires=found.get("requires"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        la = [a] if isinstance(a, str) else list(a or [])
        lb = [b] if isinstance(b, str) else list(b or [])
        return sorted(map(str, la)) == sorted(map(str, lb))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def compare_with_show(mf: Modelfile, modelfile_text: str, parameters_text: str = "", template: str | None = None, *,
                      system: str | None = None, license: str | None = None, renderer: str | None = None,
                      parser: str | None = None, requires: str | None = None) -> list[Drift]:
    """How a model in Ollama (its /api/show answer, see `read_show`) differs from `mf`, judged as
    Ollama builds a model FROM another: the system prompt and the template when the Modelfile sets
    a non-empty one (Ollama keeps the base model's otherwise), each license of the Modelfile
    (Ollama appends them to the base model's), the renderer, parser and required version when
    set, and every parameter the Modelfile sets (Ollama merges them into the base model's: ones
    the Modelfile does not mention are not drift)."""
    shown = read_show(modelfile_text, parameters_text, template, system=system, license=license,
                      renderer=renderer, parser=parser, requires=requires)
    out: list[Drift] = []
    if mf.system and (shown.system or "").strip(_SPACE) != mf.system.strip(_SPACE):
        out.append(Drift("system", mf.system, shown.system))
    if mf.template and (shown.template or "").strip(_SPACE) != mf.template.strip(_SPACE):
        out.append(Drift("template", mf.template, shown.template))
    have = {lic.strip(_SPACE) for lic in shown.licenses}
    joined = "\n".join(shown.licenses)
    for lic in mf.license:
        if lic.strip(_SPACE) and lic.strip(_SPACE) not in have and lic not in joined:
            out.append(Drift("license", lic, None))
    for what in ("renderer", "parser", "requires"):
        want = getattr(mf, what)
        if want and getattr(shown, what) != want:
            out.append(Drift(what, want, getattr(shown, what)))
    for name in sorted(mf.parameters, key=_param_order):
        want = mf.parameters[name]
        if name not in shown.parameters:
            out.append(Drift(f"parameter {name}", want, None))
        elif not _same(want, shown.parameters[name]):
            out.append(Drift(f"parameter {name}", want, shown.parameters[name]))
    return out


# -- where the students are --------------------------------------------------------------

GREEK = (
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
    "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
)

_extracted: Path | None = None


def shipped_modelfiles_dir() -> Path:
    """The folder of the six Modelfiles shipped inside the installed package."""
    global _extracted
    res = importlib.resources.files("rhtui").joinpath("modelfiles")
    if isinstance(res, Path):
        return res
    if _extracted is None:  # pragma: no cover - a zipped install: copy the files out once
        tmp = Path(tempfile.mkdtemp(prefix="rhtui-modelfiles-"))
        for item in res.iterdir():
            if item.is_file():
                (tmp / item.name).write_bytes(item.read_bytes())
        import atexit

        atexit.register(shutil.rmtree, tmp, True)
        _extracted = tmp
    return _extracted


def student_order(name: str) -> tuple[int, int, str]:
    """Sort key: names ending in a Greek letter in Greek order (rh-alpha … rh-zeta), then the rest by name."""
    last = re.split(r"[-_.]", name.lower())[-1]
    if last in GREEK:
        return (0, GREEK.index(last), name)
    return (1, 0, name)


def discover_students(directory: Path | None = None) -> list[StudentSpec]:
    """One StudentSpec per ``*.Modelfile`` in `directory` (None: the shipped ones); name = file stem."""
    d = shipped_modelfiles_dir() if directory is None else Path(directory).expanduser()
    if not d.is_dir():
        raise ModelfileError(d, None, "is not a folder (expected a folder of *.Modelfile files)")
    specs = [StudentSpec(name=p.stem, modelfile=p) for p in d.glob("*.Modelfile") if p.is_file()]
    return sorted(specs, key=lambda s: student_order(s.name))


def check_modelfiles_dir(settings: Settings) -> ModelfileError | None:
    """Why ``settings.modelfiles_dir`` cannot be used (None when unset or usable)."""
    d = settings.modelfiles_dir
    if d is None:
        return None
    try:
        found = discover_students(d)
    except ModelfileError as exc:
        return exc
    if not found:
        return ModelfileError(d, None, "contains no *.Modelfile files")
    return None


def resolve_students(settings: Settings) -> list[StudentSpec]:
    """The students with their Modelfiles filled in.

    A student declared in the config with a ``modelfile`` keeps it; one without is matched by
    name to a ``*.Modelfile`` in ``settings.modelfiles_dir`` (or the shipped folder); one with no
    match is an existing Ollama model the user brought. When the config does not declare students
    and ``modelfiles_dir`` is set, the students are that folder's Modelfiles. A ``modelfiles_dir``
    that is not a folder of Modelfiles is ignored here: `check_modelfiles_dir` says why.
    """
    try:
        found = discover_students(settings.modelfiles_dir)
    except ModelfileError:
        found = []  # `check_modelfiles_dir` reports it
    by_name = {s.name: s for s in found}
    if settings.modelfiles_dir is not None and "students" not in settings.model_fields_set and found:
        return found
    out = []
    for spec in settings.students:
        if spec.modelfile is None and spec.name in by_name:
            spec = spec.model_copy(update={"modelfile": by_name[spec.name].modelfile})
        out.append(spec)
    return out


def full_tag(name: str) -> str:
    """Ollama's full name for a model tag (``rh-alpha`` → ``rh-alpha:latest``)."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


__all__ = [
    "Command", "DEPRECATED_PARAMETERS", "check_modelfiles_dir", "Drift", "INSTRUCTIONS", "Modelfile", "ModelfileError", "PARAMETERS",
    "ShownModel", "compare_with_show", "decode_modelfile", "discover_students", "file_digest", "float32_value",
    "from_file", "full_tag", "iter_commands", "load_modelfile", "local_path",
    "modelfile_warnings", "parse_modelfile", "parse_show_parameters", "quote_value", "read_show",
    "render_modelfile", "resolve_students", "shipped_modelfiles_dir", "student_order", "to_create_request",
    "wire_request",
]
