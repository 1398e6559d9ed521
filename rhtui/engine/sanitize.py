"""The sanitiser for untrusted text: model output, and error text a server sends.

Every face uses it before such text reaches a person: the dashboard (`rhtui.tui.text`
re-exports it), the headless log, `rhtui doctor`, and every export format.

- ANSI/VT escape sequences (CSI, OSC incl. OSC 8 hyperlinks and OSC 52 clipboard writes,
  DCS/SOS/PM/APC strings, 8-bit C1 controls) are *shown*, not executed, in caret notation as
  ``cat -v`` and ``less`` show them: ESC becomes ``^[``, BEL ``^G``, DEL ``^?`` (plain ASCII, so
  any font shows it); C1 controls and bidi overrides (Trojan Source) become a visible ``<U+XXXX>``;
- newlines and tabs stay; ``\\r\\n`` becomes ``\\n``.

`csv_cell` also neutralises a spreadsheet formula: a cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is prefixed with ``'``, as OWASP advises for CSV injection.
"""

from __future__ import annotations

import re

_CARET = {code: "^" + chr(code + 0x40) for code in range(0x20)}
_CARET[0x7F] = "^?"

# C0 and C1 controls (tab and newline kept) and the bidi overrides/isolates that can
# reorder what a reader sees (Trojan Source)
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

# what a spreadsheet may read as the start of a formula (OWASP's list, and the full-width forms
# some spreadsheets fold to them)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _show(ch: str) -> str:
    code = ord(ch)
    if code in _CARET:
        return _CARET[code]
    return f"<U+{code:04X}>"


def sanitize(text: str | None, *, keep_newlines: bool = True) -> str:
    """Untrusted text made inert: every control character is shown as a visible stand-in.

    Escape sequences are therefore shown as text (``^[[31m``) rather than removed, so a
    reader sees that the model emitted them; nothing reaches the terminal as a control.
    """
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    if not keep_newlines:
        text = text.replace("\n", " ↵ ").replace("\t", " ")
    return _UNSAFE.sub(lambda m: _show(m.group()), text)


def one_line(text: str | None, limit: int | None = None) -> str:
    """Sanitised and folded to one line (newlines shown as ↵), optionally cut with an ellipsis."""
    out = sanitize(text, keep_newlines=False)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def csv_cell(value: object) -> object:
    """A value for a CSV cell: text sanitised and, where a spreadsheet would read a formula,
    prefixed with ``'``; numbers and None as they are (a negative number is a number, not a formula)."""
    if not isinstance(value, str):
        return value
    text = sanitize(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def sanitize_tree(value: object) -> object:
    """Every string in a JSON-like value (dicts, lists, tuples) sanitised; keys too."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, dict):
        return {sanitize(k) if isinstance(k, str) else k: sanitize_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize_tree(v) for v in value]
    return value
