"""The reader: a Modelfile split into its instructions, as Ollama's parser splits it.

`iter_commands` ports ``parser/parser.go`` ParseFile state for state and yields one `Command`
per instruction, with the line it starts on; a syntax error is a `ModelfileError` naming the file
and line. What the values mean is checked by `rhtui.engine.modelfile.parse`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rhtui.engine.modelfile.spec import _TRIM, INSTRUCTIONS, MESSAGE_ROLES, ModelfileError, _printable


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
