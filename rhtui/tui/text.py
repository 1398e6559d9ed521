"""Text for the dashboard: the sanitiser for untrusted model text, and number formats.

Model output (proposals, error messages that quote it) is untrusted. Before it
reaches a widget it goes through `sanitize()` (`rhtui.engine.sanitize`, re-exported here):

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
import time

from markdown_it import MarkdownIt
from rich.text import Text

# the sanitiser lives in the engine (the headless log and the exports use it too); re-exported here
from rhtui.engine.sanitize import one_line as one_line
from rhtui.engine.sanitize import sanitize as sanitize


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


def known(value: float | None) -> float | None:
    """The value, or None where it is missing or NaN (what the formats below show as N/A)."""
    return None if value is None or na(value) else value


def fmt_mb(mb: float | None, *, unit: bool = True) -> str:
    v = known(mb)
    if v is None:
        return "N/A"
    s = f"{v:,.0f}"
    return f"{s} MB" if unit else s


def fmt_gb(mb: float | None) -> str:
    v = known(mb)
    return "N/A" if v is None else f"{v / 1024:.1f}"


def fmt_pct(fraction: float | None, digits: int = 0) -> str:
    v = known(fraction)
    return "N/A" if v is None else f"{v * 100:.{digits}f} %"


def fmt_num(v: float | None, digits: int = 1, *, suffix: str = "") -> str:
    x = known(v)
    if x is None:
        return "—"
    return f"{x:.{digits}f}{suffix}"


def fmt_int(v: float | None) -> str:
    x = known(v)
    if x is None:
        return "—"
    return f"{x:,.0f}"


def fmt_hms(seconds: float | None) -> str:
    """00:12:34 (hours grow past 99 if they must)."""
    v = known(seconds)
    if v is None:
        return "--:--:--"
    s = max(0, int(v))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_dur(seconds: float | None) -> str:
    """Short human duration: 45 s, 2 min 05 s, 1 h 03 min."""
    v = known(seconds)
    if v is None:
        return "—"
    s = max(0, int(round(v)))
    if s < 100:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_clock(ts: float | None) -> str:
    """Wall-clock time of day (local time zone)."""
    v = known(ts)
    if v is None:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(v))


def theme_color(variables: dict[str, str], name: str, fallback: str = "") -> str:
    """A theme variable as a Rich colour (hex), or `fallback` when it is not a plain colour."""
    value = variables.get(name, "")
    if value.startswith("#") and " " not in value:
        return value
    return fallback
