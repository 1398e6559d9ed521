"""What Ollama accepts in a Modelfile, and what a parsed one is.

The instructions and parameters Ollama's parser knows (``parser/parser.go``, ``api/types.go``),
the characters it keeps in a value, `ModelfileError` (``FILE:LINE: what is wrong``) and the
`Modelfile` dataclass that the other modules of this package read, write and compare.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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

_ORDER = list(PARAMETERS)


def _param_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)

_TRIM = " \t\r\n"
"""What Go's strings.TrimSpace can meet in a value: the parser keeps no other space character."""
_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Go's unicode.IsSpace (strings.TrimSpace), for text Ollama sends back."""

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
