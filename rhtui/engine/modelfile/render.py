"""Rendering: a `Modelfile` written back as text that Ollama's parser reads back exactly.

`render_modelfile` writes one (``parse_modelfile(render_modelfile(mf)) == mf``); `quote_value`
picks, for each value, the quoting (bare, ``"…"`` or ``\"\"\"…\"\"\"``) that reads back as the same text.
"""

from __future__ import annotations

import math
from typing import Any

from rhtui.engine.modelfile.spec import (
    MESSAGE_ROLES,
    PARAMETERS,
    Modelfile,
    ModelfileError,
    _param_order,
    _printable,
)
from rhtui.engine.modelfile.syntax import iter_commands
from rhtui.engine.modelfile.values import _INT64, _go_float32


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
