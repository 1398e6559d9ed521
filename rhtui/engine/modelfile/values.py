"""PARAMETER values as Ollama reads them: Go's strconv, by the option's Go type.

`_coerce` turns a PARAMETER's text into its value as ``api.FormatParams`` does (int64, float32,
bool; anything else raises `ModelfileError`), `float32_value` writes a float as Go's JSON encoder
writes a float32, and `_range_note` says when a value lies outside its usual range (Ollama
accepts it; rhtui warns).
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from typing import Any

from rhtui.engine.modelfile.spec import PARAMETERS, ModelfileError

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

def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
