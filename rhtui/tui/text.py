"""Text for the dashboard: the sanitiser for untrusted model text, and number formats.

Model output (proposals, error messages that quote it) is untrusted. Before it
reaches a widget it goes through `sanitize()`:

- ANSI/VT escape sequences (CSI, OSC incl. OSC 8 hyperlinks and OSC 52
  clipboard writes, DCS/SOS/PM/APC strings, 8-bit C1 controls) are *shown*,
  not executed, in caret notation as ``cat -v`` and ``less`` show them: ESC
  becomes ``^[``, BEL ``^G``, DEL ``^?`` (plain ASCII, so any font shows it);
  C1 controls and bidi overrides (Trojan Source) become a visible ``<U+XXXX>``;
- newlines and tabs stay; ``\\r\\n`` becomes ``\\n``;
- Rich/Textual markup is never interpreted, because every widget gets a
  `rich.text.Text` (`safe_text`) or plain content, never a markup string.

For Markdown, `markdown_parser()` is a markdown-it parser with raw HTML off (so
``<script>`` shows as text) and the widget is built with ``open_links=False``.
This module does not import Textual.
"""

from __future__ import annotations

import math
import re
import time

from markdown_it import MarkdownIt
from rich.text import Text

_CARET = {code: "^" + chr(code + 0x40) for code in range(0x20)}
_CARET[0x7F] = "^?"

# C0 and C1 controls (tab and newline kept) and the bidi overrides/isolates that can
# reorder what a reader sees (Trojan Source)
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


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


def safe_text(text: str | None, style: str = "", *, one_line_only: bool = False) -> Text:
    """A Rich Text holding `text` literally: no markup, no escapes interpreted."""
    clean = one_line(text) if one_line_only else sanitize(text)
    return Text(clean, style=style, end="")


def markdown_parser() -> MarkdownIt:
    """The parser for model-written Markdown: GFM-like, raw HTML shown as text, not rendered."""
    return MarkdownIt("gfm-like", {"html": False})


# ---------------------------------------------------------------------------
# number and time formats shared by the widgets


def na(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_mb(mb: float | None, *, unit: bool = True) -> str:
    if na(mb):
        return "N/A"
    s = f"{mb:,.0f}"
    return f"{s} MB" if unit else s


def fmt_gb(mb: float | None) -> str:
    return "N/A" if na(mb) else f"{mb / 1024:.1f}"


def fmt_pct(fraction: float | None, digits: int = 0) -> str:
    return "N/A" if na(fraction) else f"{fraction * 100:.{digits}f} %"


def fmt_num(v: float | None, digits: int = 1, *, suffix: str = "") -> str:
    if na(v):
        return "—"
    return f"{v:.{digits}f}{suffix}"


def fmt_int(v: float | None) -> str:
    if na(v):
        return "—"
    return f"{v:,.0f}"


def fmt_hms(seconds: float | None) -> str:
    """00:12:34 (hours grow past 99 if they must)."""
    if na(seconds):
        return "--:--:--"
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_dur(seconds: float | None) -> str:
    """Short human duration: 45 s, 2 min 05 s, 1 h 03 min."""
    if na(seconds):
        return "—"
    s = max(0, int(round(seconds)))
    if s < 100:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_clock(ts: float | None) -> str:
    """Wall-clock time of day (local time zone)."""
    if na(ts):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def theme_color(variables: dict[str, str], name: str, fallback: str = "") -> str:
    """A theme variable as a Rich colour (hex), or `fallback` when it is not a plain colour."""
    value = variables.get(name, "")
    if value.startswith("#") and " " not in value:
        return value
    return fallback
