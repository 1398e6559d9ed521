"""The drift check: how a model in Ollama differs from its Modelfile (what `models verify` uses).

`read_show` reads Ollama's /api/show answer (its ``modelfile`` text leniently, its ``parameters``
text with Go's quoting as ``%#v`` writes it) into a `ShownModel`; `compare_with_show` lists each
difference from a `Modelfile` as a `Drift`, judged as Ollama builds a model FROM another.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from rhtui.engine.modelfile.spec import _SPACE, INSTRUCTIONS, PARAMETERS, Modelfile, _param_order
from rhtui.engine.modelfile.syntax import iter_commands
from rhtui.engine.modelfile.values import _FALSE, _TRUE, _fmt


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
                return "system prompt missing in Ollama" if self.what == "system" else "template missing in Ollama"
            return f"{self.what} differs from the Modelfile ({_brief(self.actual)} instead of {_brief(self.expected)})"
        if self.actual is None:
            return f"{self.what} is not set in Ollama (Modelfile: {_fmt(self.expected)})"
        return f"{self.what} is {_fmt(self.actual)} in Ollama, {_fmt(self.expected)} in the Modelfile"


def _brief(s: Any) -> str:
    text = str(s).replace("\n", " ").strip()
    return repr(text[:37] + "…" if len(text) > 38 else text) + f", {len(str(s))} chars"

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
