"""A `Modelfile` mapped onto Ollama's create API, as ``ollama create -f`` maps it.

`to_create_request` gives the keyword arguments for `OllamaBackend.create` (``parser.go``
CreateRequest; a FROM, ADAPTER or DRAFT that names a local file becomes a file to upload, found
as `local_path` finds it); `wire_request` gives the JSON body that would be POSTed (for
``--dry-run``), with `file_digest` in place of each file.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from rhtui.engine.modelfile.spec import Modelfile, ModelfileError

_PATHLIKE = re.compile(r"^(?:\.{1,2}(?:[/\\]|$)|[/\\~]|[A-Za-z]:[/\\])|\.(?:gguf|bin|safetensors)$", re.IGNORECASE)
"""A FROM value that can only be meant as a file (``./m.gguf``, ``/models/x``, ``~/m.gguf``)."""


def local_path(value: str, modelfile: Path | None) -> Path:
    """Where ``ollama create -f`` looks for the file a FROM, ADAPTER or DRAFT names (``parser.go``
    expandPath): an absolute path as is, ``~`` or ``~user`` from that home folder, anything else
    relative to the Modelfile's folder."""
    if value.startswith(("/", "\\")) or os.path.isabs(value):
        p = value
    elif value.startswith("~"):
        p = os.path.expanduser(value)
    else:
        base = Path(modelfile).parent if modelfile is not None else Path.cwd()
        p = os.path.join(base, value)
    return Path(os.path.normpath(os.path.abspath(p)))


def from_file(mf: Modelfile) -> Path | None:
    """The local file `mf`'s FROM names, when it names one that exists (as the CLI decides:
    FROM is a file when such a file exists, else a model name); None for a model name."""
    p = local_path(mf.from_, mf.path)
    return p if p.exists() else None


def _blob_file(mf: Modelfile, what: str, value: str) -> Path:
    line = mf.lines.get(what)
    p = local_path(value, mf.path)
    if not p.exists():
        raise ModelfileError(mf.path, line, f"{what.upper()} {value}: there is no such file ({p}; a relative path is "
                                            "taken from the Modelfile's folder)")
    if p.is_dir():
        raise ModelfileError(
            mf.path, line,
            f"{what.upper()} {value} is a folder ({p}); rhtui uploads one GGUF file, not a folder of model files "
            "(safetensors): create this model with `ollama create NAME -f MODELFILE` instead",
        )
    return p


def to_create_request(mf: Modelfile) -> dict[str, Any]:
    """Keyword arguments for `OllamaBackend.create` (besides ``model``): what ``ollama create -f``
    sends for `mf` (``parser.go`` CreateRequest), only what is set.

    A FROM that names an existing file (relative to the Modelfile's folder), an ADAPTER and a
    DRAFT become ``files``, ``adapters`` and ``draft_files``: ``{file name: local Path}``; the
    backend uploads each file as a blob and sends its sha256 digest in its place, as the CLI does.
    A FROM that can only be a path but names no file is refused here, before anything is sent."""
    req: dict[str, Any] = {}
    path = from_file(mf)
    if path is not None:
        if path.is_dir():
            _blob_file(mf, "from", mf.from_)  # raises: a folder
        req["files"] = {path.name: path}
    elif _PATHLIKE.search(mf.from_.strip()):
        raise ModelfileError(
            mf.path, mf.lines.get("from"),
            f"FROM {mf.from_}: there is no such file ({local_path(mf.from_, mf.path)}; a relative path is taken "
            "from the Modelfile's folder); to build on a model in Ollama, name it, e.g. FROM mistral:7b",
        )
    else:
        req["from_"] = mf.from_
    if mf.adapter is not None:
        p = _blob_file(mf, "adapter", mf.adapter)
        req["adapters"] = {p.name: p}
    if mf.draft is not None:
        p = _blob_file(mf, "draft", mf.draft)
        if path is not None and p.resolve() == path.resolve():
            raise ModelfileError(mf.path, mf.lines.get("draft"),
                                 f"DRAFT must not reference the same local path as FROM: {p}")
        req["draft_files"] = {p.name: p}
    if mf.template:  # Ollama's JSON omits an empty one, and keeps the base model's
        req["template"] = mf.template
    if mf.license:
        req["license"] = list(mf.license)
    if mf.system:
        req["system"] = mf.system
    if mf.parameters:
        req["parameters"] = {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in mf.parameters.items()}
    if mf.messages:
        req["messages"] = [{"role": m["role"], "content": m["content"]} for m in mf.messages]
    for what in ("renderer", "parser", "requires"):
        value = getattr(mf, what)
        if value:
            req[what] = value
    return req


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, as Ollama names its blobs."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def wire_request(model: str, mf: Modelfile) -> dict[str, Any]:
    """The JSON body POSTed to /api/create for `mf` (for --dry-run), local files replaced by
    their digests as they would be after the upload."""
    fields = to_create_request(mf)
    for key in ("files", "adapters", "draft_files"):
        if key in fields:
            fields[key] = {name: file_digest(p) for name, p in fields[key].items()}
    extra = {k: fields.pop(k) for k in ("draft_files", "renderer", "parser", "requires") if k in fields}
    try:
        from ollama._types import CreateRequest  # the client's own serialisation

        body = CreateRequest(model=model, stream=True, **fields).model_dump(exclude_none=True)
    except Exception:  # pragma: no cover - a different client version
        body = {"model": model, "stream": True}
        for k, v in fields.items():
            body["from" if k == "from_" else k] = v
    return body | extra
