"""Modelfiles: parse, validate, render, and map onto Ollama's create API.

The syntax is Ollama's (``parser/parser.go``): one instruction per line, names
case-insensitive, ``#`` comments, values that run to the end of the line, and
quoted values (``"…"`` or ``\"\"\"…\"\"\"``) that may span lines and end at the
first line where the quoting closes. Everything is checked before anything is
sent to Ollama: an unknown instruction or parameter, a value of the wrong type,
a missing FROM or an unclosed block raises `ModelfileError`, whose text names
the file, the line and what was expected::

    rh-beta.Modelfile:12: PARAMETER temperature expects a number, got 'hot'

`render_modelfile` writes a Modelfile back (``parse(render(x)) == x``);
`to_create_request` maps one onto ``ollama.AsyncClient.create`` (which takes
structured fields, not a Modelfile string); `compare_with_show` lists how a
model in Ollama (``/api/show``) differs from its Modelfile. This module never
talks to Ollama.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rhtui.engine.config import Settings, StudentSpec

# -- what Ollama accepts ---------------------------------------------------------------

INSTRUCTIONS: tuple[str, ...] = ("from", "parameter", "system", "template", "license", "message", "adapter")
"""The instructions rhtui reads."""

OLLAMA_INSTRUCTIONS: tuple[str, ...] = INSTRUCTIONS + ("draft", "renderer", "parser", "requires")
"""Everything a newer Ollama may write in /api/show's modelfile text."""

MESSAGE_ROLES: tuple[str, ...] = ("system", "user", "assistant")

ParamKind = Literal["int", "float", "bool", "strings"]

PARAMETERS: dict[str, ParamKind] = {
    # load-time options (set when the model is loaded)
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "int",
    "num_thread": "int",
    "numa": "bool",
    "use_mmap": "bool",
    "low_vram": "bool",
    "f16_kv": "bool",
    "logits_all": "bool",
    "vocab_only": "bool",
    "use_mlock": "bool",
    "embedding_only": "bool",
    # run-time options
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "top_p": "float",
    "min_p": "float",
    "tfs_z": "float",
    "typical_p": "float",
    "repeat_last_n": "int",
    "temperature": "float",
    "repeat_penalty": "float",
    "presence_penalty": "float",
    "frequency_penalty": "float",
    "mirostat": "int",
    "mirostat_tau": "float",
    "mirostat_eta": "float",
    "penalize_newline": "bool",
    "stop": "strings",
}
"""Ollama's model options (its ``api.Options`` and the official client's ``Options``) and their types."""

DEPRECATED_PARAMETERS: frozenset[str] = frozenset(
    {
        "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
        "embedding_only", "mirostat", "mirostat_tau", "mirostat_eta", "tfs_z",
    }
)
"""Known, but ignored by recent Ollama versions (its CLI warns about them)."""

# (low, high) inclusive; None = unbounded on that side.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "num_ctx": (1, None),
    "num_batch": (1, None),
    "num_gpu": (-1, None),
    "main_gpu": (0, None),
    "num_thread": (0, None),
    "num_keep": (-1, None),
    "num_predict": (-2, None),
    "top_k": (0, None),
    "top_p": (0, 1),
    "min_p": (0, 1),
    "typical_p": (0, 1),
    "tfs_z": (0, None),
    "repeat_last_n": (-1, None),
    "temperature": (0, None),
    "repeat_penalty": (0, None),
    "mirostat": (0, 2),
    "mirostat_tau": (0, None),
    "mirostat_eta": (0, None),
}

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
# Go's unicode.IsSpace, which Ollama's parser trims values with.
_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NEWLINE = re.compile(r"\r\n|\r|\n")


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
    """Instruction ("from", "system", "parameter temperature", ...) → the line it starts on."""

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


def _split_lines(text: str) -> list[tuple[str, str]]:
    """(content, separator) per line; the separator is '' on the last line."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _NEWLINE.finditer(text):
        out.append((text[pos : m.start()], m.group(0)))
        pos = m.end()
    out.append((text[pos:], ""))
    return out


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def iter_commands(
    text: str, path: str | Path | None = None, instructions: tuple[str, ...] = INSTRUCTIONS
) -> list[Command]:
    """Split a Modelfile into its instructions, with Ollama's quoting rules.

    Checks only the syntax (instruction names, the shape of PARAMETER and MESSAGE,
    closed quotes); `parse_modelfile` checks what the values mean.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    names = ", ".join(n.upper() for n in instructions)
    out: list[Command] = []
    i = 0
    while i < len(lines):
        lineno = i + 1
        s = lines[i][0].lstrip(" \t")
        if not s.strip() or s.startswith("#"):  # blank (any Unicode whitespace) or a comment
            i += 1
            continue
        m = re.match(r"[A-Za-z]+", s)
        word = m.group(0) if m else ""
        rest = s[len(word) :]
        kind = word.lower()
        if not word or (rest and rest[0] not in " \t"):
            bad = s.split()[0]
            if kind in instructions:
                raise ModelfileError(path, lineno, f"expected a space after {word.upper()}, got {bad!r}")
            raise ModelfileError(path, lineno, f"unknown instruction {bad!r}; expected one of {names}{_suggest(bad.upper(), [n.upper() for n in instructions])}")
        if kind not in instructions:
            raise ModelfileError(path, lineno, f"unknown instruction {word!r}; expected one of {names}{_suggest(word.upper(), [n.upper() for n in instructions])}")
        rest = rest.lstrip(" \t")
        key = ""
        if kind in ("parameter", "message"):
            what = "a parameter name" if kind == "parameter" else "a role (system, user or assistant)"
            km = re.match(r"[A-Za-z0-9_]+" if kind == "parameter" else r"[A-Za-z]+", rest)
            key = km.group(0) if km else ""
            after = rest[len(key) :]
            if not key or (after and after[0] not in " \t"):
                got = re.match(r"\S*", rest).group(0)  # type: ignore[union-attr]
                raise ModelfileError(path, lineno, f"{word.upper()} expects {what} then a value, got {got or 'nothing'!r}")
            if not after.strip(_SPACE):
                raise ModelfileError(path, lineno, f"{word.upper()} {key} needs a value")
            if kind == "message" and key not in MESSAGE_ROLES:
                raise ModelfileError(path, lineno, f"MESSAGE role must be system, user or assistant, got {key!r}")
            rest = after.lstrip(" \t")
        elif not rest.strip(_SPACE):
            raise ModelfileError(path, lineno, f"{word.upper()} needs a value")
        # The value runs to the first line end at which its quoting is closed.
        buf = rest
        j = i
        while True:
            value, closed = _unquote(buf.strip(_SPACE))
            if closed:
                break
            if j + 1 >= len(lines):
                opener = '"""' if buf.strip(_SPACE).startswith('"""') else '"'
                head = (word.upper() + (" " + key if key else "")).strip()
                raise ModelfileError(
                    path, lineno,
                    f"{head} opens a {opener} block here that is never closed (expected a line ending with {opener})",
                )
            buf += lines[j][1] + lines[j + 1][0]
            j += 1
        out.append(Command(kind, key, value, lineno))
        i = j + 1
    return out


def _coerce(name: str, raw: str, path: str | Path | None, line: int | None) -> Any:
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
        if not _INT.match(raw):
            raise ModelfileError(path, line, f"PARAMETER {name} expects a whole number, got {raw!r}")
        value: float = int(raw)
    else:
        if not _FLOAT.match(raw):
            raise ModelfileError(path, line, f"PARAMETER {name} expects a number, got {raw!r}")
        value = float(raw)
        if not math.isfinite(value):
            raise ModelfileError(path, line, f"PARAMETER {name} expects a finite number, got {raw!r}")
    _check_range(name, value, raw, path, line)
    return value


def _check_range(name: str, value: float, raw: str, path: str | Path | None, line: int | None) -> None:
    lo, hi = _RANGES.get(name, (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        what = "a whole number" if PARAMETERS[name] == "int" else "a number"
        if lo is not None and hi is not None:
            span = f"from {lo:g} to {hi:g}"
        elif lo is not None:
            span = f"of at least {lo:g}"
        else:
            span = f"of at most {hi:g}"
        raise ModelfileError(path, line, f"PARAMETER {name} expects {what} {span}, got {raw!r}")


def parse_modelfile(text: str, path: str | Path | None = None) -> Modelfile:
    """Parse and validate a Modelfile; raise `ModelfileError` naming the file and line."""
    first: dict[str, int] = {}
    from_: str | None = None
    system = template = adapter = None
    licenses: list[str] = []
    params: dict[str, Any] = {}
    messages: list[dict[str, str]] = []
    for cmd in iter_commands(text, path):
        m = _CONTROL.search(cmd.value)
        if m:
            raise ModelfileError(path, cmd.line, f"{cmd.name.upper()} value contains a control character (U+{ord(m.group(0)):04X})")
        if cmd.name == "parameter":
            name = cmd.key.lower() if cmd.key.lower() in PARAMETERS else cmd.key
            if name not in PARAMETERS:
                raise ModelfileError(
                    path, cmd.line,
                    f"PARAMETER {cmd.key} is not an Ollama parameter{_suggest(cmd.key.lower(), PARAMETERS)}; "
                    f"known: {', '.join(sorted(PARAMETERS))}",
                )
            where = f"parameter {name}"
            if name == "stop":
                if cmd.value == "":
                    raise ModelfileError(path, cmd.line, "PARAMETER stop expects a non-empty string")
                params.setdefault("stop", []).append(cmd.value)
                first.setdefault(where, cmd.line)
                continue
            if where in first:
                raise ModelfileError(path, cmd.line, f"PARAMETER {name} is set twice (first on line {first[where]})")
            params[name] = _coerce(name, cmd.value, path, cmd.line)
            first[where] = cmd.line
        elif cmd.name == "message":
            messages.append({"role": cmd.key, "content": cmd.value})
            first.setdefault("message", cmd.line)
        elif cmd.name == "license":
            licenses.append(cmd.value)
            first.setdefault("license", cmd.line)
        else:
            if cmd.name in first:
                raise ModelfileError(path, cmd.line, f"{cmd.name.upper()} is given twice (first on line {first[cmd.name]})")
            first[cmd.name] = cmd.line
            if cmd.name == "from":
                if not cmd.value.strip(_SPACE):
                    raise ModelfileError(path, cmd.line, "FROM needs a base model, e.g. FROM mistral:7b")
                from_ = cmd.value
            elif cmd.name == "system":
                system = cmd.value
            elif cmd.name == "template":
                template = cmd.value
            elif cmd.name == "adapter":
                adapter = cmd.value
    if from_ is None:
        raise ModelfileError(path, 1, "no FROM instruction: a Modelfile must name its base model, e.g. FROM mistral:7b")
    return Modelfile(
        from_=from_, system=system, template=template, license=licenses, parameters=params,
        messages=messages, adapter=adapter, path=Path(path) if path is not None else None, lines=first,
    )


def load_modelfile(path: Path) -> Modelfile:
    """Read and parse a Modelfile from disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelfileError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ModelfileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_modelfile(text, path)


# -- writing -----------------------------------------------------------------------------


def _read_value(raw: str) -> str | None:
    """What the parser makes of `raw` written after an instruction (None: it would not end there)."""
    lines = _split_lines(raw)
    buf = lines[0][0]
    for k in range(len(lines)):
        if k:
            buf += lines[k - 1][1] + lines[k][0]
        value, closed = _unquote(buf.strip(_SPACE))
        if closed:
            return value if k == len(lines) - 1 else None
    return None


def quote_value(s: str, what: str = "value") -> str:
    """`s` written so that the parser reads it back exactly: bare, \"\"\"…\"\"\" or "…"."""
    if _CONTROL.search(s):
        raise ModelfileError(None, None, f"{what} contains a control character and cannot be written to a Modelfile")
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
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelfileError(None, None, f"PARAMETER {name} expects a whole number, got {value!r}")
        _check_range(name, value, str(value), None, None)
        return str(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ModelfileError(None, None, f"PARAMETER {name} expects a number, got {value!r}")
        _check_range(name, value, repr(value), None, None)
        return repr(float(value))
    raise AssertionError(kind)  # pragma: no cover


def render_modelfile(mf: Modelfile, *, header: str | None = None) -> str:
    """The Modelfile as text; `parse_modelfile(render_modelfile(mf)) == mf`."""
    out: list[str] = []
    if header:
        out += ["# " + line if line else "#" for line in header.splitlines()]
    out.append("FROM " + quote_value(mf.from_, "FROM"))
    if mf.adapter is not None:
        out.append("ADAPTER " + quote_value(mf.adapter, "ADAPTER"))
    for name in sorted(mf.parameters, key=_param_order):
        value = mf.parameters[name]
        if name == "stop":
            stops = [value] if isinstance(value, str) else list(value)
            for s in stops:
                if not isinstance(s, str) or not s:
                    raise ModelfileError(None, None, f"PARAMETER stop expects non-empty strings, got {s!r}")
                out.append("PARAMETER stop " + quote_value(s, "PARAMETER stop"))
        else:
            out.append(f"PARAMETER {name} {_format_param(name, value)}")
    if mf.template is not None:
        out.append("TEMPLATE " + quote_value(mf.template, "TEMPLATE"))
    if mf.system is not None:
        out.append("SYSTEM " + quote_value(mf.system, "SYSTEM"))
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


def to_create_request(mf: Modelfile) -> dict[str, Any]:
    """Keyword arguments for ``ollama.AsyncClient.create`` (besides ``model``): only what is set."""
    if mf.adapter is not None:
        raise ModelfileError(
            mf.path, mf.lines.get("adapter"),
            "ADAPTER needs its file uploaded as a blob, which rhtui does not do; "
            "create this model with `ollama create NAME -f MODELFILE` instead",
        )
    req: dict[str, Any] = {"from_": mf.from_}
    if mf.system is not None:
        req["system"] = mf.system
    if mf.parameters:
        req["parameters"] = {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in mf.parameters.items()}
    if mf.template is not None:
        req["template"] = mf.template
    if mf.license:
        req["license"] = mf.license[0] if len(mf.license) == 1 else list(mf.license)
    if mf.messages:
        req["messages"] = [{"role": m["role"], "content": m["content"]} for m in mf.messages]
    return req


def wire_request(model: str, mf: Modelfile) -> dict[str, Any]:
    """The JSON body the official client POSTs to /api/create for `mf` (for --dry-run)."""
    fields = to_create_request(mf)
    try:
        from ollama._types import CreateRequest  # the client's own serialisation

        return CreateRequest(model=model, stream=True, **fields).model_dump(exclude_none=True)
    except Exception:  # pragma: no cover - a different client version
        body: dict[str, Any] = {"model": model, "stream": True}
        for k, v in fields.items():
            body["from" if k == "from_" else k] = v
        return body


def modelfile_warnings(mf: Modelfile) -> list[str]:
    """Things that are valid but probably not what was meant."""
    out = []
    for name in mf.parameters:
        if name in DEPRECATED_PARAMETERS:
            line = mf.lines.get(f"parameter {name}")
            where = f"{mf.path or '<Modelfile>'}" + (f":{line}" if line else "")
            out.append(f"{where}: PARAMETER {name} is ignored by recent Ollama versions")
    ctx, predict = mf.parameters.get("num_ctx"), mf.parameters.get("num_predict")
    if isinstance(ctx, int) and isinstance(predict, int) and predict > ctx:
        out.append(f"{mf.path or '<Modelfile>'}: num_predict ({predict}) exceeds num_ctx ({ctx}); the context will shift mid-proposal")
    return out


# -- comparing with a model in Ollama -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drift:
    """One way a model in Ollama differs from its Modelfile."""

    what: str
    """'system', 'template' or 'parameter NAME'."""
    expected: Any
    actual: Any

    def describe(self) -> str:
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


def _go_string(s: str) -> str:
    """A Go-quoted string from `%#v` (best effort: JSON covers the common escapes)."""
    try:
        v = json.loads(s)
        if isinstance(v, str):
            return v
    except ValueError:
        pass
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


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
    """What /api/show says defines a model: its system prompt, template and parameters."""

    system: str | None
    template: str | None
    parameters: dict[str, Any]


def read_show(modelfile_text: str, parameters_text: str = "", template: str | None = None) -> ShownModel:
    """Read /api/show's ``modelfile`` (and ``parameters``) text leniently: FROM is a blob path
    there, and a newer Ollama may write instructions or parameters this module does not know."""
    system = tmpl = None
    params: dict[str, Any] = {}
    try:
        cmds = iter_commands(modelfile_text or "", None, OLLAMA_INSTRUCTIONS)
    except ModelfileError:
        cmds = []
    for cmd in cmds:
        if cmd.name == "system":
            system = cmd.value
        elif cmd.name == "template":
            tmpl = cmd.value
        elif cmd.name == "parameter":
            if cmd.key == "stop":
                params.setdefault("stop", []).append(cmd.value)
            else:
                params[cmd.key] = _loose(cmd.key, cmd.value)
    if parameters_text and parameters_text.strip():
        params = parse_show_parameters(parameters_text)
    if template:
        tmpl = template
    return ShownModel(system=system, template=tmpl, parameters=params)


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


def compare_with_show(mf: Modelfile, modelfile_text: str, parameters_text: str = "", template: str | None = None) -> list[Drift]:
    """How a model in Ollama (its /api/show texts) differs from `mf`: the system prompt, the
    template (when the Modelfile sets one) and every parameter the Modelfile sets. Parameters the
    model inherits from its base and the Modelfile does not mention are not drift."""
    shown = read_show(modelfile_text, parameters_text, template)
    out: list[Drift] = []
    if mf.system is not None and (shown.system or "").strip(_SPACE) != mf.system.strip(_SPACE):
        out.append(Drift("system", mf.system, shown.system))
    if mf.template is not None and (shown.template or "").strip(_SPACE) != mf.template.strip(_SPACE):
        out.append(Drift("template", mf.template, shown.template))
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
    "ShownModel", "compare_with_show", "discover_students", "full_tag", "iter_commands", "load_modelfile",
    "modelfile_warnings", "parse_modelfile", "parse_show_parameters", "quote_value", "read_show",
    "render_modelfile", "resolve_students", "shipped_modelfiles_dir", "student_order", "to_create_request",
    "wire_request",
]
