"""The students: the shipped Modelfiles, and which Modelfile each configured student uses.

`shipped_modelfiles_dir` is the folder of Modelfiles inside the installed package
(``rhtui/modelfiles``); `discover_students` makes one `StudentSpec` per ``*.Modelfile`` in a
folder, in `student_order`; `resolve_students` fills in the Modelfile of each configured student
and `check_modelfiles_dir` says why a configured folder cannot be used; `full_tag` is Ollama's
full name for a model tag.
"""

from __future__ import annotations

import importlib.resources
import re
import shutil
import tempfile
from pathlib import Path

from rhtui.engine.config import Settings, StudentSpec
from rhtui.engine.modelfile.spec import ModelfileError

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
