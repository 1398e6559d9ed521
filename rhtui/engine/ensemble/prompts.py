"""The user prompts of a research round, fitted to each student's context window.

A student's window (``num_ctx``) holds its system prompt, the user prompt and its answer
(``num_predict``). What is left for the user prompt is measured in tokens, but trimming works on
characters, so each student's characters-per-token ratio is learned from Ollama's
``prompt_eval_count`` (`CharsPerToken`). Text from other models is sanitised before it is given to
the next one: no terminal escape reaches a model, or a person reading the stored prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rhtui.engine.modelfile.drift import parse_show_parameters
from rhtui.engine.sanitize import sanitize

TRIMMED = "[… trimmed]"
DEFAULT_CHARS_PER_TOKEN = 2.5
"""Before the first observation: fewer characters a token than most tokenizers give English (3.5-4),
so more tokens are assumed and more is trimmed."""
MIN_CHARS_PER_TOKEN = 1.5
MAX_CHARS_PER_TOKEN = 8.0


class CharsPerToken:
    """Each student's characters per prompt token, from what Ollama counted."""

    def __init__(self, default: float = DEFAULT_CHARS_PER_TOKEN) -> None:
        self.default = default
        self._chars: dict[str, int] = {}
        self._tokens: dict[str, int] = {}

    def observe(self, student: str, prompt_chars: int, prompt_tokens: int) -> None:
        """A run's prompt: its characters (system prompt included) and Ollama's prompt_eval_count.

        An observation above 8 characters a token is left out: no tokenizer packs text that
        densely, so Ollama counted only part of the prompt (a prefix served from its cache)."""
        if prompt_chars <= 0 or prompt_tokens <= 0 or prompt_chars / prompt_tokens > MAX_CHARS_PER_TOKEN:
            return
        self._chars[student] = self._chars.get(student, 0) + prompt_chars
        self._tokens[student] = self._tokens.get(student, 0) + prompt_tokens

    def ratio(self, student: str) -> float:
        """The running ratio (all observations together), within [1.5, 8]; the default before any."""
        tokens = self._tokens.get(student)
        if not tokens:
            return self.default
        return min(MAX_CHARS_PER_TOKEN, max(MIN_CHARS_PER_TOKEN, self._chars[student] / tokens))


def budget_chars(
    num_ctx: int, num_predict: int | None, system_chars: int, ratio: float, margin_tokens: int = 256
) -> int:
    """Characters of user prompt that fit: the window less the answer's tokens (num_predict; half
    the window when it is unset or unlimited, -1/-2) and a margin for the chat template, converted
    at `ratio`, less the system prompt; never below 0."""
    answer = num_predict if num_predict is not None and num_predict > 0 else num_ctx // 2
    return max(0, int((num_ctx - answer - margin_tokens) * ratio) - system_chars)


_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE = re.compile(r"[.!?][\"')\]]*(?=\s)")


def trim(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters: at the end of a paragraph, else of a sentence,
    else of a word, in the second half of what fits, followed by "[… trimmed]". Where not even
    that note fits, a plain cut."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 0:
        return ""
    room = max_chars - len(TRIMMED) - 1  # the note goes on a line of its own
    if room <= 0:
        return text[:max_chars]
    head = text[: room + 1]  # one more, to see whether the cut falls on a boundary
    floor = room // 2
    cut = _last_boundary(head, room, floor)
    return text[:cut].rstrip() + "\n" + TRIMMED


def _last_boundary(head: str, room: int, floor: int) -> int:
    ends = [m.start() for m in _PARAGRAPH.finditer(head) if floor <= m.start() <= room]
    if ends:
        return ends[-1]
    ends = [m.end() for m in _SENTENCE.finditer(head) if floor <= m.end() <= room]
    if ends:
        return ends[-1]
    space = max(head.rfind(" ", 0, room + 1), head.rfind("\n", 0, room + 1))
    return space if space >= floor else room


def _shares(lengths: Sequence[int], available: int) -> list[int]:
    """Split `available` characters fairly: a text shorter than an equal share keeps all of it, and
    what it leaves goes to the others."""
    shares = [0] * len(lengths)
    remaining = max(0, available)
    pending = sorted(range(len(lengths)), key=lambda i: lengths[i])
    while pending:
        each = remaining // len(pending)
        first = pending[0]
        if lengths[first] <= each:
            shares[first] = lengths[first]
            remaining -= lengths[first]
            pending.pop(0)
            continue
        extra = remaining - each * len(pending)
        for k, i in enumerate(pending):
            shares[i] = each + (1 if k < extra else 0)
        break
    return shares


def _fit(parts: list[str | tuple[str, str]], budget: int) -> str:
    """Join fixed text (str) and trimmable blocks ((header, body)); the bodies share what the fixed
    text and the headers leave of `budget`."""
    fixed = sum(len(p) if isinstance(p, str) else len(p[0]) for p in parts)
    bodies = [p[1] for p in parts if not isinstance(p, str)]
    shares = iter(_shares([len(b) for b in bodies], budget - fixed))
    out = []
    for p in parts:
        out.append(p if isinstance(p, str) else p[0] + trim(p[1], next(shares)))
    return "".join(out)


def _question(question: str) -> str:
    return f"Research question: {sanitize(question).strip()}\n"


def _headings(headings: Sequence[str]) -> str:
    return f" ({', '.join(sanitize(h) for h in headings)})" if headings else ""


def _proposal_blocks(proposals: Sequence[tuple[str, str]]) -> list[str | tuple[str, str]]:
    parts: list[str | tuple[str, str]] = []
    for author, text in proposals:
        name = sanitize(author, keep_newlines=False).strip()
        parts += [
            (f"\n--- PROPOSAL by {name} ---\n", sanitize(text).strip()),
            f"\n--- end of {name}'s proposal ---\n",
        ]
    return parts


def proposal_prompt(
    question: str, previous_synthesis: str | None, previous_critique: str | None, budget: int
) -> str:
    """A proposer's prompt: the question, then the ensemble's previous synthesis and the critic's
    previous critique when there are any, trimmed so the whole fits `budget` characters (the question
    and the instructions are never trimmed)."""
    parts: list[str | tuple[str, str]] = [_question(question)]
    if previous_synthesis and previous_synthesis.strip():
        parts += [
            "\nThe ensemble's previous synthesis (its best answer so far; build on it, improve it or argue"
            " against it):",
            ("\n--- PREVIOUS SYNTHESIS ---\n", sanitize(previous_synthesis).strip()),
            "\n--- end of the previous synthesis ---\n",
        ]
    if previous_critique and previous_critique.strip():
        parts += [
            "\nThe critic's previous critique (answer the weaknesses it found that apply to you):",
            ("\n--- PREVIOUS CRITIQUE ---\n", sanitize(previous_critique).strip()),
            "\n--- end of the previous critique ---\n",
        ]
    parts.append("\nAnswer the question from your role, in the headings your instructions give.\n")
    return _fit(parts, budget)


def critique_prompt(
    question: str, proposals: Sequence[tuple[str, str]], budget: int, *, headings: Sequence[str] = ()
) -> str:
    """The critic's prompt: the question and this round's proposals, each labelled with its author
    (``--- PROPOSAL by rh-alpha ---``) and trimmed equally to share `budget` characters. `headings`:
    the critic's own (`required_sections` of its system prompt), named in the instructions."""
    if not proposals:
        raise ValueError("no proposal to critique")
    parts: list[str | tuple[str, str]] = [
        _question(question),
        "\nYour task: critique this round's proposals (below) as the ensemble's critic.\n",
        "\nThis round's proposals, each by one member of the ensemble:\n",
        *_proposal_blocks(proposals),
        "\nCritique these proposals as the ensemble's critic: test their strongest claims, check the facts they "
        "cite, and for each weakness name the test that would settle it. Refer to each proposal by its author's "
        f"name. Write the critique in the headings your instructions give{_headings(headings)}.\n",
    ]
    return _fit(parts, budget)


def synthesis_prompt(
    question: str,
    proposals: Sequence[tuple[str, str]],
    critique: str | None,
    budget: int,
    *,
    headings: Sequence[str] = (),
) -> str:
    """The synthesiser's prompt: the question, this round's valid proposals (labelled with their
    authors) and the critique, trimmed equally to share `budget` characters, and the request to merge
    them into one proposal in the same headings, crediting each idea to its author."""
    if not proposals:
        raise ValueError("no proposal to synthesise")
    parts: list[str | tuple[str, str]] = [
        _question(question),
        "\nYour task: merge this round's proposals (below) into one synthesis.\n",
        "\nThis round's proposals that passed the checks, each by one member of the ensemble:\n",
        *_proposal_blocks(proposals),
    ]
    if critique and critique.strip():
        parts += [
            "\nThe critic's critique of this round:",
            ("\n--- CRITIQUE ---\n", sanitize(critique).strip()),
            "\n--- end of the critique ---\n",
        ]
    parts.append(
        "\nMerge these proposals" + (" and the critique" if critique and critique.strip() else "")
        + " into one proposal that answers the question better than any of them alone: keep what is sound, "
        "repair or drop what is weak, and credit each idea to its author by name, e.g. \"(from rh-beta)\". "
        f"Write it as one proposal in the same headings{_headings(headings)}.\n"
    )
    return _fit(parts, budget)


def student_num_ctx(parameters: str) -> tuple[int | None, int | None]:
    """num_ctx and num_predict from Ollama's /api/show ``parameters`` text (``num_ctx   5120`` per
    line); None for one that is not set (Ollama's default applies) or not a whole number."""
    values = parse_show_parameters(parameters or "")

    def whole(name: str) -> int | None:
        v = values.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return whole("num_ctx"), whole("num_predict")
