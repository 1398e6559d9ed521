"""Modelfiles: parse, validate, render, and map onto Ollama's create API.

Read as ``ollama create -f`` reads them (``parser/parser.go`` ParseFile and CreateRequest,
``api/types.go`` FormatParams): one instruction per line (FROM, PARAMETER, SYSTEM, TEMPLATE,
LICENSE, MESSAGE, ADAPTER, DRAFT, RENDERER, PARSER, REQUIRES; names case-insensitive),
``#`` comments, values that run to the end of the line, and quoted values (``"…"`` or
``\"\"\"…\"\"\"``) that may span lines and end at the first line where the quoting closes;
UTF-8, or UTF-16 with a byte order mark. What Ollama rejects is rejected before anything is
sent — an unknown instruction or parameter (parameter names are case-sensitive), a value that
is not of the option's Go type, a missing FROM, an unclosed block — as a `ModelfileError`
whose text names the file, the line and what was expected::

    rh-beta.Modelfile:12: PARAMETER temperature expects a number, got 'hot'

What Ollama accepts but does silently (a repeated instruction: the last wins; deprecated
parameters: not sent; an empty SYSTEM: the base model's is kept; characters it drops) is
accepted, with a warning from `modelfile_warnings`.

`render_modelfile` writes a Modelfile back (``parse(render(x)) == x``);
`to_create_request` maps one onto Ollama's structured create request, as the CLI does (a FROM
that names a local file becomes ``files``, uploaded by the backend); `compare_with_show` lists
how a model in Ollama (``/api/show``, read leniently: Ollama writes values bare, see
`read_show`) differs from its Modelfile. This package never talks to Ollama.

The modules, each importable on its own; everything public is re-exported here:

- `spec`: what Ollama accepts (`INSTRUCTIONS`, `PARAMETERS`, …), `ModelfileError`, `Modelfile`
- `values`: PARAMETER values read as Go's strconv reads them (`float32_value`)
- `syntax`: `iter_commands`, the port of ``parser.go`` ParseFile, and its `Command`
- `parse`: `parse_modelfile`, `decode_modelfile`, `load_modelfile`, `modelfile_warnings`
- `render`: `render_modelfile`, `quote_value`
- `create`: `to_create_request`, `wire_request`, `local_path`, `from_file`, `file_digest`
- `drift`: `compare_with_show`, `read_show`, `parse_show_parameters`, `Drift`, `ShownModel`
- `students`: `shipped_modelfiles_dir`, `discover_students`, `resolve_students`,
  `check_modelfiles_dir`, `student_order`, `full_tag`

(The shipped Modelfiles themselves are the data folder ``rhtui/modelfiles``, not this package.)
"""

from __future__ import annotations

from rhtui.engine.modelfile.create import file_digest, from_file, local_path, to_create_request, wire_request
from rhtui.engine.modelfile.drift import Drift, ShownModel, compare_with_show, parse_show_parameters, read_show
from rhtui.engine.modelfile.parse import decode_modelfile, load_modelfile, modelfile_warnings, parse_modelfile
from rhtui.engine.modelfile.render import quote_value, render_modelfile
from rhtui.engine.modelfile.spec import (
    DEPRECATED_PARAMETERS,
    INSTRUCTIONS,
    MESSAGE_ROLES,
    OLLAMA_INSTRUCTIONS,
    PARAMETERS,
    Modelfile,
    ModelfileError,
    ParamKind,
)
from rhtui.engine.modelfile.students import (
    GREEK,
    check_modelfiles_dir,
    discover_students,
    full_tag,
    resolve_students,
    shipped_modelfiles_dir,
    student_order,
)
from rhtui.engine.modelfile.syntax import Command, iter_commands
from rhtui.engine.modelfile.values import float32_value

__all__ = [
    "DEPRECATED_PARAMETERS", "GREEK", "INSTRUCTIONS", "MESSAGE_ROLES", "OLLAMA_INSTRUCTIONS", "PARAMETERS",
    "Command", "Drift", "Modelfile", "ModelfileError", "ParamKind", "ShownModel",
    "check_modelfiles_dir", "compare_with_show", "decode_modelfile", "discover_students", "file_digest",
    "float32_value", "from_file", "full_tag", "iter_commands", "load_modelfile", "local_path",
    "modelfile_warnings", "parse_modelfile", "parse_show_parameters", "quote_value", "read_show",
    "render_modelfile", "resolve_students", "shipped_modelfiles_dir", "student_order", "to_create_request",
    "wire_request",
]
