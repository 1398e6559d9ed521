"""The research agenda: which question each round answers.

A question file is either the shipped bank's TOML (``prompts = ["…", …]``) or plain text with one
question per non-empty line (``.txt``; ``.md`` may use list markers and headings). Every problem
with the file is an `AgendaError` that names the file, the line where there is one, and what to fix.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections import deque
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

MAX_QUESTION_CHARS = 4000
"""A longer question would crowd the context out of a small model's window."""

SHIPPED_BANK = "data/prompts.toml"

_MARKDOWN = (".md", ".markdown")
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d{1,9}[.)])\s+")
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOO_LONG = f"keep a question under {MAX_QUESTION_CHARS} characters (put background in the students' Modelfiles)"


class AgendaError(ValueError):
    """The question file cannot be used; str() says which file, where, and what to fix."""


def load_questions(path: Path | None) -> list[str]:
    """The questions of a file (None: the shipped Riemann Hypothesis bank), in file order, without
    repeats; raises `AgendaError` for a file that cannot be read or holds no question."""
    if path is None:
        text = resources.files("rhtui").joinpath(SHIPPED_BANK).read_text(encoding="utf-8")
        return _from_toml(text, f"the shipped question bank ({SHIPPED_BANK})")
    text = _read(path)
    if path.suffix.lower() == ".toml":
        return _from_toml(text, str(path))
    return _from_text(text, str(path), markdown=path.suffix.lower() in _MARKDOWN)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AgendaError(f"question file {path} does not exist: check the path given with --questions") from None
    except IsADirectoryError:
        raise AgendaError(f"question file {path} is a folder: give a .toml, .txt or .md file") from None
    except PermissionError:
        raise AgendaError(f"question file {path} cannot be read (permission denied): make it readable") from None
    except OSError as exc:
        raise AgendaError(f"question file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data[:start].count(b"\n") + 1
        raise AgendaError(
            f"{path}:{line}: is not UTF-8 text (byte 0x{data[start]:02x} at offset {start}): save the file as UTF-8"
        ) from None


def _from_toml(text: str, where: str) -> list[str]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        at = f"{where}:{m.group(1)}" if m else where
        raise AgendaError(f"{at}: is not valid TOML ({exc}): fix the syntax there") from None
    if "prompts" not in data:
        raise AgendaError(f'{where}: has no `prompts` key: write prompts = ["first question", "second question"]')
    items = data["prompts"]
    if not isinstance(items, list):
        raise AgendaError(f'{where}: `prompts` must be a list of strings, e.g. prompts = ["first question"]')
    questions: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise AgendaError(f"{where}: prompts[{i}] is not a string ({type(item).__name__}): quote the question")
        q = item.strip()
        if len(q) > MAX_QUESTION_CHARS:
            line = _line_of(text, q)
            at = f"{where}:{line}" if line else where
            raise AgendaError(f"{at}: prompts[{i}] is {len(q)} characters long: {_TOO_LONG}")
        if q:
            questions.append(q)
    return _nonempty(_unique(questions), where, 'the `prompts` list is empty: add at least one question')


def _from_text(text: str, where: str, *, markdown: bool) -> list[str]:
    questions: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):  # numbered as editors number lines
        q = raw.strip()
        if not q or q.startswith("#"):  # blank, a Markdown heading, or a comment line
            continue
        if markdown:
            q = _LIST_MARKER.sub("", q, count=1).strip()
        if not any(ch.isalnum() for ch in q):  # a rule (---), a fence (```), an empty list item
            continue
        if len(q) > MAX_QUESTION_CHARS:
            raise AgendaError(f"{where}:{number}: the question is {len(q)} characters long: {_TOO_LONG}")
        questions.append(q)
    return _nonempty(_unique(questions), where, "holds no question: write one question per line")


def _line_of(text: str, question: str) -> int | None:
    """The line where a TOML string starts (its first words found in the file), if it can be found."""
    probe = question.splitlines()[0][:40]
    at = text.find(probe)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def _unique(questions: list[str]) -> list[str]:
    return list(dict.fromkeys(questions))


def _nonempty(questions: list[str], where: str, what: str) -> list[str]:
    if not questions:
        raise AgendaError(f"{where}: {what}")
    return questions


class Agenda:
    """Deals the questions in a shuffled order, each once before any repeats (deterministic for a
    seed), with questions a person asked (`push`) ahead of the rest."""

    def __init__(self, questions: Sequence[str], seed: int | None = None) -> None:
        self.questions = [q.strip() for q in questions if q.strip()]
        if not self.questions:
            raise AgendaError("the agenda has no question: give a question file with at least one question")
        self._rng = random.Random(seed)
        self._deck: list[str] = []
        self._asked: deque[str] = deque()
        self._last: str | None = None

    def next(self) -> str:
        """The next round's question: a pushed one first, else the next of the shuffled deck."""
        if self._asked:
            return self._asked.popleft()
        if not self._deck:
            deck = list(self.questions)
            self._rng.shuffle(deck)
            # no question twice in a row across a reshuffle
            if len(deck) > 1 and deck[0] == self._last:
                deck[0], deck[-1] = deck[-1], deck[0]
            self._deck = deck[::-1]
        self._last = self._deck.pop()
        return self._last

    def push(self, question: str) -> None:
        """A person's question (`rhtui ask`): dealt before the agenda's own, several in the order asked."""
        q = question.strip()
        if not q:
            raise AgendaError("the question is empty: write the question to ask")
        if len(q) > MAX_QUESTION_CHARS:
            raise AgendaError(f"the question is {len(q)} characters long: {_TOO_LONG}")
        self._asked.append(q)

    @property
    def pending(self) -> tuple[str, ...]:
        """Questions a person asked that no round has taken yet."""
        return tuple(self._asked)

    def __len__(self) -> int:
        return len(self.questions)
