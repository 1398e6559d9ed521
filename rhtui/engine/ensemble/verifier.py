"""Deterministic checks of a proposal, critique or synthesis, before any judge reads it.

Each rule gives a short reason when it fails: the answer is empty; it lacks a heading the system
prompt asks for; it was cut off (no END line and Ollama did not stop on a stop sequence); it loops
(a line, or a block at the end, repeated); or it claims that the Riemann Hypothesis has been proved
or disproved. Judge answers are JSON and are checked by `rhtui.engine.ensemble.judge.parse_rubric`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from rhtui.engine.sanitize import one_line

_SECTION_LINE = re.compile(r"^([A-Z][A-Z ]{2,}):", re.MULTILINE)
_END_LINE = re.compile(r"end with the line:[ \t]*(.+?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
CHECKED_KINDS = ("proposal", "critique", "synthesis")
_MIN_LOOP_LINE = 20
_MIN_LINE_REPEATS = 4
_MIN_LOOP_BLOCK = 50
_MIN_BLOCK_REPEATS = 3
_MIN_LOOP_SHARE = 0.30
_LOOP_SCAN_CHARS = 200_000


@dataclass(frozen=True)
class Verdict:
    """The checks' outcome: `failures` is what `RunRecord.verifier` stores (() when ok)."""

    ok: bool
    failures: tuple[str, ...]


def required_sections(system: str | None) -> tuple[str, ...]:
    """The headings a system prompt asks for: its lines that start ``NAME:`` in capitals
    (``TITLE``, ``EXPECTED EVIDENCE``), in order, once each."""
    if not system:
        return ()
    names = (m.group(1).strip() for m in _SECTION_LINE.finditer(system))
    return tuple(dict.fromkeys(n for n in names if n))


def end_marker(system: str | None) -> str | None:
    """The line a system prompt asks the answer to end with ("End with the line: X"), if any."""
    if not system:
        return None
    m = _END_LINE.search(system)
    if not m:
        return None
    marker = m.group(1).strip().strip("\"'").strip()
    return marker or None


def _heading(name: str) -> re.Pattern[str]:
    """A heading at the start of a line, as a model writes it: ``TITLE:``, ``Title:``,
    ``**TITLE:**``, ``- **Title**:``, ``## Title`` or ``**Title**`` on a line of its own."""
    core = r"[ \t_]+".join(re.escape(w) for w in name.split())
    lead = r"^[ \t>]*(?:#{1,6}[ \t]*)?(?:[-*+][ \t]+|\d+[.)][ \t]+)?[*_]{0,3}[ \t]*"
    with_colon = rf"{lead}{core}[ \t]*[*_]{{0,3}}[ \t]*:"
    alone = rf"^[ \t>]*(?:#{{1,6}}[ \t]*[*_]{{0,3}}|[*_]{{2,3}})[ \t]*{core}[ \t]*[*_]{{0,3}}[ \t]*:?[ \t]*$"
    return re.compile(f"{with_colon}|{alone}", re.IGNORECASE | re.MULTILINE)


def missing_sections(text: str, sections: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in sections if not _heading(name).search(text))


def _repeated_line(text: str) -> str | None:
    lines = Counter(
        s for s in (line.strip() for line in text.splitlines())
        if len(s) >= _MIN_LOOP_LINE and any(ch.isalnum() for ch in s)
    )
    if not lines:
        return None
    line, count = lines.most_common(1)[0]
    if count < _MIN_LINE_REPEATS:
        return None
    return f"looping: the line {one_line(line, 60)!r} repeats {count} times"


def _z_function(s: str) -> list[int]:
    """z[i]: the length of the longest common prefix of s and s[i:] (z[0] = len(s))."""
    n = len(s)
    z = [0] * n
    if n:
        z[0] = n
    left = right = 0
    for i in range(1, n):
        if i < right:
            z[i] = min(right - i, z[i - left])
        while i + z[i] < n and s[z[i]] == s[i + z[i]]:
            z[i] += 1
        if i + z[i] > right:
            left, right = i, i + z[i]
    return z


def _repeated_tail(text: str) -> str | None:
    """The end of the text is one block (50+ characters, some of them letters or digits) repeated
    3+ times, and the repetition covers at least 30 % of the text (whitespace runs count as one space)."""
    flat = re.sub(r"\s+", " ", text).strip()[-_LOOP_SCAN_CHARS:]
    n = len(flat)
    if n < _MIN_LOOP_BLOCK * _MIN_BLOCK_REPEATS:
        return None
    # z of the reversed text at p: how far back from the end the text keeps period p
    z = _z_function(flat[::-1])
    for period in range(_MIN_LOOP_BLOCK, n // _MIN_BLOCK_REPEATS + 1):
        run = period + z[period]
        if run >= _MIN_BLOCK_REPEATS * period and run >= _MIN_LOOP_SHARE * n:
            block = flat[n - period:]
            if not any(ch.isalnum() for ch in block):  # rules and table borders are not a loop
                return None
            return (f"looping: the last {run} characters repeat a {period}-character block "
                    f"{run // period} times ({one_line(block, 40)!r})")
    return None


# -- claims that RH is settled --------------------------------------------------------------------

_RH = (r"(?:(?:the\s+)?(?:(?:generali[sz]ed|extended|grand)\s+)?riemann(?:['’]s)?\s+hypothesis"
       r"|(?-i:\b[GE]?RH\b)(?![-\w]))")
# a special case or an analogue, not RH itself: "RH for curves over finite fields", "RH is true for
# the first 10^13 zeros", "RH's equivalence with ..."
_QUALIFIED = (r"(?!['’]s\b|\s+(?:for|over|in|on|up\s+to|below|at|when|if|analogue|analog|type|like|"
              r"equivalent|conjecture\s+for)\b)")
_ADV = r"(?:(?:have|has|hereby|now|finally|thus|therefore|hence|just|successfully|rigorously|indeed|fully)\s+)*"
_SETTLED = r"(?:proved|proven|disproved|disproven|refuted|settled|resolved|solved|established)"
_ZETA = r"(?:of\s+(?:the\s+)?(?:riemann\s+)?(?:zeta|ζ)(?:\s+function|\(s\))?\s+)?"

_CLAIMS = [re.compile(p, re.IGNORECASE) for p in (
    # we have proved the Riemann Hypothesis / I disproved RH / we now prove RH
    rf"\b(?:we|i)\s+{_ADV}(?:{_SETTLED}|prove|disprove|refute|settle|resolve|solve)\s+{_RH}{_QUALIFIED}",
    # we have shown that RH holds / is false
    rf"\b(?:we|i)\s+{_ADV}(?:proved|proven|shown|established|demonstrated|verified|confirmed)\s+that\s+{_RH}"
    rf"\s+(?:holds|fails|is\s+(?:true|false|correct|wrong))\b{_QUALIFIED}",
    # we have shown that all non-trivial zeros lie on the critical line
    rf"\b(?:we|i)\s+{_ADV}(?:proved|proven|shown|established|demonstrated)\s+that\s+all\s+(?:the\s+)?"
    rf"(?:non-?\s?trivial\s+|complex\s+)?zeros\s+{_ZETA}(?:lie|are|have|satisfy)\b",
    # this proves RH / which disproves the Riemann Hypothesis
    rf"\b(?:proves|disproves|refutes|settles|resolves|establishes|solves)\s+{_RH}{_QUALIFIED}",
    # thereby proving RH
    rf"\b(?:thereby|thus|hence|so)\s+(?:proving|disproving|refuting|settling|resolving|establishing)\s+{_RH}{_QUALIFIED}",
    # RH is false / RH has been proved
    rf"{_RH}\s+(?:is|has\s+been|was)\s+(?:now\s+|therefore\s+|thus\s+|hence\s+|finally\s+|indeed\s+|definitely\s+)?"
    rf"(?:false|true|wrong|{_SETTLED})\b{_QUALIFIED}",
    # a proof of the Riemann hypothesis is complete
    rf"\b(?:dis)?proof\s+of\s+{_RH}\s+(?:is|was)\s+(?:now\s+|hereby\s+|therefore\s+|thus\s+)?"
    r"(?:complete|completed|finished|done|correct|valid)\b",
    # this completes the proof of RH
    rf"\b(?:completes|concludes|finishes)\s+(?:the|our|my|this)\s+(?:dis)?proof\s+of\s+{_RH}{_QUALIFIED}",
    # we present a complete proof of RH
    rf"\b(?:we|i)\s+(?:hereby\s+|now\s+)?(?:present|give|offer|provide|obtain)\s+(?:a|an|the|our)\s+"
    rf"(?:(?:complete|full|rigorous|new|short|simple|elementary)\s+)*(?:dis)?proof\s+of\s+{_RH}{_QUALIFIED}",
    # we found a counterexample to RH / a zero off the critical line
    rf"\b(?:we|i)\s+{_ADV}(?:found|find|discovered|exhibit|exhibited|constructed|computed|located)\s+(?:a|an)\s+"
    rf"(?:(?:explicit|genuine|new)\s+)?(?:counter-?\s?example\s+to\s+{_RH}|(?:non-?\s?trivial\s+)?zero\s+{_ZETA}"
    r"off\s+the\s+critical\s+line)",
)]

# what makes a matching sentence conditional, negated, reported or hoped for, when it comes before
# the claim in the same sentence: "if RH is false", "nobody has proved", "it is believed RH is true"
_HEDGE_BEFORE = re.compile(
    r"\b(?:if|iff|when|whenever|whether|unless|assum\w*|suppos\w*|would|could|might|may|should|not|never|no|"
    r"nobody|none|neither|nor|without|nothing|\w+n['’]t|conditional\w*|under|hypothetical\w*|claim\w*|"
    r"believ\w*|expect\w*|conjectur\w*|hope\w*|aim\w*|attempt\w*|try|tries|trying|goal|want\w*|wish\w*|"
    r"pretend\w*|alleg\w*|purport\w*|say|says|said|state|states|stated|assert\w*|argu(?:e|es|ed|ing)|writes|wrote|"
    r"suggest\w*|evidence|likely|unlikely|probabl\w*|heuristic\w*|predict\w*|premature|incorrect\w*|"
    r"wrong\w*|mistak\w*|erroneous\w*|flaw\w*)\b",
    re.IGNORECASE,
)
# ... or after it: "this proves RH if Lemma 2 holds", "... provided the sum converges"
_HEDGE_AFTER = re.compile(
    r"\b(?:if|iff|provided|assuming|unless|conditional\w*|only\s+when|would|could|might|modulo|granted|"
    r"subject\s+to)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def rh_claim(text: str) -> str | None:
    """The first sentence that claims, without condition or negation, that RH has been proved or
    disproved; None when there is none."""
    for sentence in _SENTENCE_END.split(text):
        for pattern in _CLAIMS:
            for m in pattern.finditer(sentence):
                if _HEDGE_BEFORE.search(sentence, 0, m.start()) or _HEDGE_AFTER.search(sentence, m.end()):
                    continue
                return sentence.strip()
    return None


def verify(text: str, *, system: str | None, done_reason: str | None, kind: str = "proposal") -> Verdict:
    """Check an answer against its system prompt and Ollama's done_reason; `kind` is "proposal",
    "critique" or "synthesis" (a judge's JSON is not checked here)."""
    if kind not in CHECKED_KINDS:
        raise ValueError(f"cannot verify a {kind!r} run: kind is one of {', '.join(CHECKED_KINDS)}"
                         " (a judge's answer is checked by parse_rubric)")
    if not text or not text.strip():
        return Verdict(False, ("empty",))
    failures: list[str] = []
    missing = missing_sections(text, required_sections(system))
    if missing:
        failures.append("missing sections: " + ", ".join(missing))
    marker = end_marker(system)
    if done_reason != "stop" and (marker is None or marker not in text):
        failures.append(f"cut off: done_reason {done_reason or 'none'}, no END marker")
    loop = _repeated_line(text) or _repeated_tail(text)
    if loop:
        failures.append(loop)
    claim = rh_claim(text)
    if claim:
        failures.append(f"claims RH proved or disproved: {one_line(claim, 100)!r}")
    return Verdict(not failures, tuple(failures))
