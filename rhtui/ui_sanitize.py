"""Untrusted text (model output, server messages) made safe for a terminal.

Model output must never move the cursor, retitle the window, change colours or
inject Rich markup. `sanitize` removes ANSI/OSC/DCS escape sequences and other
control characters (keeping newlines and tabs) and shows what was removed as a
visible placeholder; Rich markup needs no escaping as long as the result is put
into a `Text` or a widget with markup off — callers do that.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC (ESC P|X|^|_ ... ST),
# two-byte escapes (ESC + one char), and 8-bit C1 forms of CSI/OSC.
_ESCAPES = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]          # CSI
  | \x9b[0-?]*[ -/]*[@-~]            # 8-bit CSI
  | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC, terminated or not
  | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # 8-bit OSC
  | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC
  | \x1b[@-Z\\-_]?                    # other escapes (and a lone ESC)
    """,
    re.VERBOSE,
)
# C0 controls except \t and \n, DEL, and the remaining C1 controls.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

PLACEHOLDER = "\ufffd"  # � marks where something was removed


def sanitize(text: str, *, placeholder: str = PLACEHOLDER) -> str:
    """Text without escape sequences or control characters (newlines and tabs kept)."""
    text = text.replace("\r\n", "\n")
    text = _ESCAPES.sub(placeholder, text)
    return _CONTROLS.sub(placeholder, text)


def sanitize_line(text: str) -> str:
    """One line: like `sanitize`, with newlines and tabs shown as spaces."""
    return sanitize(text).replace("\n", " ").replace("\t", " ")
