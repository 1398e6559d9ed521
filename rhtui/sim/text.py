"""Deterministic research text about the Riemann Hypothesis, split into tokens.

A student's answer (`proposal_text`) has the headings its Modelfile asks for (TITLE:, IDEA:,
METHOD:, EXPECTED EVIDENCE:, RISKS:) and is built from the student, the question and a RNG, so
two students on one question, or one student on two questions, write different texts. When the
prompt quotes proposals (``--- PROPOSAL by <name> ---`` blocks, as the critique and synthesis
prompts do) or a ``--- PREVIOUS SYNTHESIS ---``, the answer names each one by its first TITLE
line, so a test can see what reached the model. `json_text` answers a request that carries
Ollama's ``format`` ("json" or a JSON schema) with a JSON document valid for the schema.

`tokenize` splits text into token-ish pieces (a word, a piece of a long word, a punctuation
mark, a newline), about four characters each. `sprinkle_hostile` mixes in what a terminal must
never interpret: ANSI CSI and OSC escape sequences, control characters and Rich markup. A
dashboard must show those as text.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "END_MARKER",
    "answer_quality",
    "HOSTILE_PIECES",
    "GivenProposal",
    "PromptContext",
    "cut_at_stop",
    "json_text",
    "malform_json",
    "proposal_text",
    "proposal_tokens",
    "read_prompt",
    "sprinkle_hostile",
    "tokenize",
]

END_MARKER = "=== END OF PROPOSAL ==="
"""The line the Modelfiles ask a proposal to end with; also one of their stop parameters."""

_TITLES = [
    "Proposal: {topic}",
    "Research plan: {topic}",
    "A programme on {topic}",
    "Towards {topic}",
    "What {topic} can still tell us",
    "A careful look at {topic}",
]

_TOPICS = [
    "zero-density estimates near the critical line",
    "the de Bruijn-Newman constant and heat-flow deformations",
    "spectral interpretations of the nontrivial zeros",
    "mollified moments of the zeta function",
    "pair correlation and random matrix statistics",
    "explicit formulae and prime gaps",
    "Li's criterion and positivity of the Keiper-Li coefficients",
    "the Nyman-Beurling approach via Dirichlet polynomials",
    "large sieve inequalities for zero detection",
    "a Hilbert-Polya operator from quantum chaos",
]

_SENTENCES = [
    "The Riemann Hypothesis asserts that every nontrivial zero of zeta(s) lies on the line Re(s) = 1/2.",
    "We propose to sharpen the known zero-density estimate N(sigma, T) << T^(A(1 - sigma)) log T.",
    "Montgomery's pair correlation conjecture suggests that the zeros repel like eigenvalues of a GUE matrix.",
    "Numerical verification has confirmed the first 10^13 zeros, but no finite check can settle the question.",
    "Our first aim is to extend Levinson's method with a longer mollifier of length T^theta.",
    "Conrey showed that more than two fifths of the zeros lie on the critical line; we aim to push this further.",
    "The explicit formula links sums over primes to sums over zeros, and every bound on one side informs the other.",
    "A key step is a mean-value theorem for Dirichlet polynomials twisted by the Mobius function.",
    "We will test each conjectured inequality numerically before attempting a proof.",
    "The de Bruijn-Newman constant Lambda is now known to be nonnegative, so RH is equivalent to Lambda = 0.",
    "Heat-flow deformations of the Riemann xi function give a family of entire functions to study.",
    "If the approach fails, the intermediate bounds remain useful for the distribution of primes in short intervals.",
    "We expect the main difficulty to lie in controlling the off-diagonal terms of the second moment.",
    "Random matrix theory predicts the moments of zeta on the critical line up to an arithmetic factor.",
    "The Hilbert-Polya idea asks for a self-adjoint operator whose eigenvalues are the ordinates of the zeros.",
    "Berry and Keating suggested the classical Hamiltonian H = xp as a starting point for such an operator.",
    "Li's criterion states that RH holds if and only if all Keiper-Li coefficients are nonnegative.",
    "We will compute the first several thousand coefficients with interval arithmetic to guard against rounding.",
    "The Nyman-Beurling criterion reformulates RH as an approximation problem in L^2(0, 1).",
    "Weil's positivity criterion connects the hypothesis to the positivity of a certain quadratic functional.",
    "A successful outcome would be a new unconditional proportion of critical zeros.",
    "Milestone one: reproduce the classical Levinson bound with our own code and notation.",
    "Milestone two: introduce the two-piece mollifier and optimise its coefficients numerically.",
    "Milestone three: write up the argument and submit the numerical data for independent checking.",
    "The risk is that the error terms grow faster than the main term once theta exceeds 4/7.",
    "Our collaborators in the ensemble will review each lemma before it is used in a later step.",
    "Gram's law fails infinitely often, so any argument based on it must handle the exceptional blocks.",
    "The function S(T) measures the deviation of the zero count from its smooth approximation.",
    "Selberg's central limit theorem describes the distribution of log |zeta(1/2 + it)|.",
    "We conjecture that the refined bound holds uniformly for T in dyadic ranges.",
]

HOSTILE_PIECES = [
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[2J",
    "\x1b[H",
    "\x1b]0;owned\x07",
    "\x1b]8;;http://example.invalid/\x1b\\click\x1b]8;;\x1b\\",
    "\x1b]52;c;cm0gLXJmIH4=\x07",
    "\x07",
    "\x08\x08",
    "\r",
    "\x00",
    "\x9b31m",
    "[bold red]",
    "[/]",
    "[blink]alert[/blink]",
    "[link=http://example.invalid]here[/link]",
    "[/bold red]",
    "\\[escaped]",
    ":warning:",
    "\u202e",
]


_ROLE_SENTENCES = {
    "alpha": [
        "Every step is stated as a lemma with its hypotheses, so that a gap shows as a missing hypothesis.",
        "We separate what is proved from what is conjectured, and label each heuristic as a heuristic.",
        "The weakest link is an exchange of limits that needs a uniform bound we do not yet have.",
        "Each equivalence with RH is checked in both directions before it is used.",
    ],
    "beta": [
        "A zero-free region of Vinogradov-Korobov type is the input; a sharper zero-density bound is the output.",
        "The explicit formula turns the bound on zeros into a statement about primes in short intervals.",
        "In a mollified second moment the off-diagonal terms decide the outcome.",
        "The loss of a logarithm at each step is tracked, since three such losses would erase the gain.",
    ],
    "gamma": [
        "Zeros are computed with the Odlyzko-Schonhage algorithm and each is certified with Turing's method.",
        "All arithmetic uses interval bounds, so that a rounding error cannot pass as evidence.",
        "The cost estimate is a few thousand core-hours for a window of zeros near height 10^20.",
        "Every table is published with the code and the precision that produced it.",
    ],
    "delta": [
        "The pair correlation of the zeros is compared with the GUE kernel 1 - (sin(pi x)/(pi x))^2.",
        "A candidate operator must be self-adjoint and match the Riemann-von Mangoldt counting function.",
        "Nearest-neighbour spacings at large height are the statistic that would show a mismatch first.",
        "Random matrix theory predicts the leading term; the arithmetic factor is what the model must explain.",
    ],
    "epsilon": [
        "Over a finite field the analogue of RH is Deligne's theorem, proved through the Weil conjectures.",
        "The question is which ingredient of the function-field proof has an analogue over the integers.",
        "Frobenius acting on cohomology has no known counterpart for Spec Z, and that is where the analogy breaks.",
        "A toy model over F_q(t) lets each step be checked before it is transplanted.",
    ],
    "zeta": [
        "The claim is restated in its strongest form before it is tested.",
        "Each check names the weakness it targets and the test that would settle it.",
        "A counterexample to one lemma would be worth more than another heuristic in its favour.",
        "Where a step cannot be checked, the critique says so rather than guessing.",
    ],
}

_ROLE_TITLES = {
    "alpha": ["Lemma by lemma: {topic}", "Closing the gaps in {topic}"],
    "beta": ["Sharper estimates for {topic}", "Moments and densities: {topic}"],
    "gamma": ["Computing {topic}", "Numerical evidence on {topic}"],
    "delta": ["A spectral view of {topic}", "Random matrices and {topic}"],
    "epsilon": ["A function-field analogue of {topic}", "What curves over F_q say about {topic}"],
    "zeta": ["Testing the claims about {topic}", "A sceptical look at {topic}"],
}

_STEPS = [
    "Reproduce the classical bound in our own notation, as a check of every constant.",
    "State the key mean-value estimate for the mollified Dirichlet polynomial (open).",
    "Prove the estimate first for a smoothed weight, where the off-diagonal terms are easier.",
    "Compute the relevant statistic for the first million zeros and compare it with the prediction.",
    "Optimise the free parameters numerically and record where the optimum sits.",
    "Check the special cases that are already known, so that the method recovers them.",
    "Isolate the one inequality the whole argument rests on and test it at many heights (open).",
    "Write the argument up with each open step marked, and ask a colleague to attack it.",
    "Transfer the finite-field version of the step and see exactly where it fails.",
    "Bound the error terms uniformly in T, which is where earlier attempts lost control (open).",
]

_CHECKS = [
    "the main estimate is plausible, but the error term is not shown to be smaller than the main term.",
    "the equivalence with RH is used in one direction only; the converse needs its own proof.",
    "the numerical evidence is suggestive at the heights checked and says nothing uniform.",
    "the step from the model to the zeta function assumes what the method should establish.",
    "the argument is sound as far as it goes, and the open step is correctly marked as open.",
    "the cited result applies to a smoothed sum, not to the sharp cut-off used here.",
    "the cost estimate is optimistic by at least an order of magnitude.",
    "the analogy is suggestive, but the ingredient it needs has no known counterpart over Q.",
]

_MERGES = [
    "keep its central estimate and test it against the computations proposed alongside.",
    "adopt its method for the first milestone and set its speculative part aside.",
    "use its numerical checks as the gate every later step must pass.",
    "take its sharpest lemma as the common starting point.",
    "keep its honest list of risks as the list the whole programme answers to.",
    "merge its statistics with the spectral model, so that both are tested on the same data.",
]

_EVIDENCE = [
    "A success would give a new unconditional proportion of zeros on the critical line.",
    "A partial result, the estimate for a smoothed weight, would still be worth publishing.",
    "The tables would show whether the statistic follows the prediction up to height 10^20.",
    "If the claim is wrong, the first sign would be a systematic drift in the normalised spacings.",
    "Support would be a matching statistic together with a proved special case.",
    "A failure at a known barrier would at least say which barrier the method meets.",
]

_RISKS = [
    "The error terms may grow faster than the main term once theta exceeds 4/7.",
    "The parity problem may block the sieve step entirely.",
    "Numerical agreement at accessible heights may not survive at larger ones.",
    "The analogy may be purely formal at the step that matters most.",
    "A referee would attack the uniformity of the key estimate first.",
    "Rounding errors could pass as evidence unless every bound is an interval.",
]

_TOKEN_RE = re.compile(r" ?[A-Za-z']{1,7}| ?\d{1,3}| ?[^\sA-Za-z\d]|\n+| +|\s")
_JSON_TOKEN_RE = re.compile(r" ?[A-Za-z']{1,7}| ?\d{1,3}| ?[^\sA-Za-z\d]{1,3}|\n+| +|\s")
_MARKER_RE = re.compile(r"^[ \t]*--- (.+?) ---[ \t]*$", re.M)
_TITLE_RE = re.compile(r"^[ \t#*]*TITLE[ \t*]*:[ \t*]*(.*?)[ \t*]*$", re.M)
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z ]{0,29}:\s+")
_WORD_RE = re.compile(r"[a-z]{4,}")


def tokenize(text: str, *, json: bool = False) -> list[str]:
    """Split text into token-ish pieces (about four characters each, like a BPE tokenizer); their
    concatenation is the text. ``json=True`` keeps runs of punctuation (``":``, ``"},``) together,
    as a tokenizer does, so JSON is not counted a quote at a time."""
    return (_JSON_TOKEN_RE if json else _TOKEN_RE).findall(text)


def sprinkle_hostile(rng: random.Random, pieces: list[str], rate: float = 0.03) -> list[str]:
    """`pieces` with a piece of HOSTILE_PIECES before about `rate` of them."""
    out: list[str] = []
    for piece in pieces:
        if rng.random() < rate:
            out.append(rng.choice(HOSTILE_PIECES))
        out.append(piece)
    return out


def cut_at_stop(text: str, stops: list[str] | tuple[str, ...]) -> str:
    """The text up to the first stop sequence, which Ollama leaves out of the answer."""
    cut = min((i for s in stops if s and (i := text.find(s)) >= 0), default=-1)
    return text if cut < 0 else text[:cut]


# -- what the prompt gives --------------------------------------------------------------------


@dataclass(frozen=True)
class GivenProposal:
    """A proposal quoted in a prompt after a ``--- PROPOSAL by <author> ---`` line."""

    author: str
    title: str
    """Its first TITLE line (the text after ``TITLE:``), else its first line."""
    body: str


@dataclass(frozen=True)
class PromptContext:
    """What an answer refers to: the question, the proposals given, the previous synthesis."""

    question: str
    proposals: tuple[GivenProposal, ...] = ()
    previous_title: str | None = None
    role: str = "proposal"
    """proposal | critique | synthesis: what the prompt asks for."""


def _first_title(body: str) -> str:
    m = _TITLE_RE.search(body)
    if m and m.group(1).strip():
        return m.group(1).strip()[:200]
    return next((line.strip()[:200] for line in body.splitlines() if line.strip()), "")


def read_prompt(prompt: str) -> PromptContext:
    """The question (first line outside the quoted blocks, without a short ``Label:``), the
    ``--- PROPOSAL by X ---`` blocks and the ``--- PREVIOUS SYNTHESIS ---`` block of a prompt.
    A block runs to the next ``--- ... ---`` line. With proposals the answer is a synthesis when
    a previous synthesis is given or the instructions before the first block speak of a
    synthesis (or merging) before any critique or review; else it is a critique."""
    marks = list(_MARKER_RE.finditer(prompt))
    own = [prompt[: marks[0].start()] if marks else prompt]
    given: list[GivenProposal] = []
    previous: str | None = None
    for i, m in enumerate(marks):
        body = prompt[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(prompt)]
        label = m.group(1).strip()
        if label.upper().startswith("PROPOSAL BY "):
            given.append(GivenProposal(label[len("PROPOSAL BY "):].strip(), _first_title(body), body.strip()))
        elif label.upper() == "PREVIOUS SYNTHESIS":
            previous = _first_title(body)
        else:
            own.append(body)
    instructions = "\n".join(own)
    first = next((line.strip() for line in instructions.splitlines() if line.strip()), "")
    question = _LABEL_RE.sub("", first)[:160].strip()
    role = "proposal"
    if given:
        first_ask = re.search(r"synthes|merg|critiq|critic|review", own[0] or instructions, re.I)
        asks_synthesis = first_ask is not None and first_ask.group(0).lower() in ("synthes", "merg")
        role = "synthesis" if previous is not None or asks_synthesis else "critique"
    return PromptContext(question, tuple(given), previous, role)


# -- a student's answer -----------------------------------------------------------------------


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


class _Draw:
    """Sentences from a pool, each used once before any repeats (then reshuffled)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._left: dict[int, list[str]] = {}

    def __call__(self, pool: list[str]) -> str:
        left = self._left.get(id(pool))
        if not left:
            left = self._left[id(pool)] = self.rng.sample(pool, len(pool))
        return left.pop()


def _role(author: str) -> str | None:
    name = author.split(":")[0].lower()
    return next((r for r in _ROLE_SENTENCES if name.endswith(r)), None)


def _topic(rng: random.Random, question: str) -> str:
    """The topic closest to the question (most shared words), else one at random."""
    words = set(_WORD_RE.findall(question.lower()))
    scored = [(len(words & set(_WORD_RE.findall(t.lower()))), rng.random(), t) for t in _TOPICS]
    best = max(scored)
    return best[2] if best[0] > 0 else rng.choice(_TOPICS)


def proposal_text(rng: random.Random, n: int, *, author: str, context: PromptContext) -> str:
    """A student's answer of about `n` tokens (whole sentences; never much more than `n` unless
    the headings alone are longer), with the five headings the Modelfiles ask for."""
    ctx, draw = context, _Draw(rng)
    role = _role(author)
    own = _ROLE_SENTENCES[role] if role else _SENTENCES
    topic = _topic(rng, ctx.question)
    given = ctx.proposals
    names = ", ".join(g.author for g in given)
    if ctx.role == "critique":
        title = f"A critique of {len(given)} proposals on {topic}"
        idea = [f"This critique tests the claims of {names}."]
    elif ctx.role == "synthesis":
        title = f"A synthesis on {topic}"
        idea = [f"This synthesis merges the proposals of {names} into one programme."]
    else:
        title = rng.choice(_ROLE_TITLES[role] if role else _TITLES).format(topic=topic)
        idea = [draw(own)]
    if ctx.question:
        idea.append(f'It answers the question "{ctx.question}".')
    if ctx.previous_title is not None:
        idea.append(f"It builds on the previous synthesis: {ctx.previous_title}.")
    idea.append(draw(_SENTENCES))
    if ctx.role == "critique":
        steps = [[f"Check {i} ({g.author}'s TITLE \"{g.title}\"): {draw(_CHECKS)}"] for i, g in enumerate(given, 1)]
    elif ctx.role == "synthesis":
        steps = [[f"Step {i} (from {g.author}'s TITLE \"{g.title}\"): {draw(_MERGES)}"] for i, g in enumerate(given, 1)]
    else:
        steps = [[draw(_STEPS)], [draw(_STEPS)]]
    evidence, risks = [draw(_EVIDENCE)], [draw(_RISKS)]

    def render() -> str:
        method = "\n".join(f"{k}. {' '.join(s)}" for k, s in enumerate(steps, 1))
        return (f"TITLE: {title}\n\nIDEA: {' '.join(idea)}\n\nMETHOD:\n{method}\n\n"
                f"EXPECTED EVIDENCE: {' '.join(evidence)}\n\nRISKS: {' '.join(risks)}")

    total, misses, repeats = len(tokenize(render())), 0, 0
    while misses < 8:
        u = rng.random()
        if u < 0.3:
            target, sentence, extra = None, draw(_STEPS), 3  # a new numbered step
        elif u < 0.6:
            target, sentence, extra = steps[-1], draw(own if rng.random() < 0.4 else _SENTENCES), 0
        elif u < 0.8:
            target, sentence, extra = evidence, draw(_EVIDENCE if rng.random() < 0.4 else _SENTENCES), 0
        elif u < 0.95:
            target, sentence, extra = risks, draw(_RISKS if rng.random() < 0.4 else _SENTENCES), 0
        else:
            target, sentence, extra = (idea if len(idea) < 6 else risks), draw(own), 0
        if target is not None and sentence in target and repeats < 100:
            repeats += 1  # not twice in one paragraph
            continue
        cost = len(tokenize(" " + sentence)) + extra
        if total + cost > n:
            misses += 1
            continue
        if target is None:
            steps.append([sentence])
        else:
            target.append(sentence)
        total += cost
    return render()


def proposal_tokens(rng: random.Random, n: int, *, hostile: bool = False) -> list[str]:
    """Exactly `n` pieces of a proposal (cut where `n` falls), deterministic for a given `rng` state."""
    if n <= 0:
        return []
    pieces = tokenize(proposal_text(rng, n, author="", context=PromptContext("")))
    while len(pieces) < n:  # only when the headings alone come to less than n: more steps
        pieces += tokenize("\n" + rng.choice(_STEPS))
    return (sprinkle_hostile(rng, pieces) if hostile else pieces)[:n]


# -- structured outputs (Ollama's `format`) ----------------------------------------------------

_SMALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["answer", "score", "confidence"],
}
"""What ``format: "json"`` gets: a small object."""

_GOOD = ["Clear aim and a checkable first step", "Precise statements with the open steps marked",
         "A sound plan that builds on known results", "Well-grounded in the literature and honest about risk"]
_MIXED = ["A reasonable idea with a gap in the method", "Promising, but the key estimate is only heuristic",
          "Useful computations, though the link to RH is loose", "A fair plan whose cost is underestimated"]
_POOR = ["Vague about what would be proved", "The central step assumes what it should show",
         "No test could tell success from failure", "The claimed equivalence with RH holds in one direction only"]
_DETAILS = ["the error term in step 2 is not controlled", "the numerical check is a good first gate",
            "the risks section names the right barrier", "the expected evidence is concrete",
            "the method needs a uniform bound it does not have", "the question is answered only in part"]
_NAME_KEYS = ("author", "student", "model", "proposer", "name")


class _JsonWriter:
    """A value for a JSON schema: numbers around a quality `q` in [0, 1] (the same for every judge
    of one answer) with a judge's own noise; strings are short one-line reasons."""

    def __init__(self, rng: random.Random, root: Any, q: float, context: PromptContext, author: str,
                 hostile: bool) -> None:
        self.rng, self.root, self.q, self.ctx, self.author, self.hostile = rng, root, q, context, author, hostile

    def resolve(self, schema: Any) -> dict[str, Any]:
        for _ in range(32):
            if not isinstance(schema, dict):
                return {}
            if isinstance(ref := schema.get("$ref"), str) and ref.startswith("#"):
                target: Any = self.root
                for part in ref.lstrip("#").strip("/").split("/"):
                    if part:
                        target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) \
                            if isinstance(target, dict) else {}
                schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
                continue
            if isinstance(options := schema.get("anyOf") or schema.get("oneOf"), list) and options:
                rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                typed = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                schema = {**rest, **(typed or options)[0]}
                continue
            if isinstance(parts := schema.get("allOf"), list) and parts:
                merged = {k: v for k, v in schema.items() if k != "allOf"}
                for part in parts:
                    merged.update(self.resolve(part))
                schema = merged
                continue
            return schema
        return {}

    @staticmethod
    def _type(s: dict[str, Any]) -> str:
        t = s.get("type")
        if isinstance(t, list):
            t = next((x for x in t if x != "null"), "null")
        if isinstance(t, str):
            return t
        return "object" if "properties" in s else "array" if "items" in s else "string"

    def value(self, schema: Any, key: str = "", depth: int = 0) -> Any:
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            enum = s["enum"]
            return enum[self._index(len(enum))]
        t = self._type(s)
        if depth > 12:
            return {} if t == "object" else [] if t == "array" else None
        if t == "object":
            props = s.get("properties") or {}
            return {k: self.value(v, k, depth + 1) for k, v in props.items()} if isinstance(props, dict) else {}
        if t == "array":
            lo = int(s.get("minItems", 1))
            hi = max(lo, int(s.get("maxItems", max(lo, 3))))
            items = [self.value(s.get("items", {"type": "string"}), key, depth + 1)
                     for _ in range(self.rng.randint(lo, min(hi, lo + 2)))]
            return items
        if t == "integer":
            return int(self._number(s, integer=True))
        if t == "number":
            return self._number(s, integer=False)
        if t == "boolean":
            return self.rng.random() < self.q
        if t == "null":
            return None
        return self._string(s, key)

    def _index(self, n: int) -> int:
        return min(n - 1, max(0, round(self.q * (n - 1) + self.rng.gauss(0, 0.5))))

    def _number(self, s: dict[str, Any], *, integer: bool) -> float:
        def bound(key: str, exclusive: str, sign: int) -> float | None:
            if isinstance(x := s.get(exclusive), int | float) and not isinstance(x, bool):
                return (math.floor(x) + 1 if sign > 0 else math.ceil(x) - 1) if integer else x + sign * 0.01
            x = s.get(key)
            return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None

        low, high = bound("minimum", "exclusiveMinimum", 1), bound("maximum", "exclusiveMaximum", -1)
        span = 9.0 if integer else 1.0
        if low is None and high is None:
            low, high = (1.0, 10.0) if integer else (0.0, 1.0)
        lo = low if low is not None else high - span if high is not None else 0.0
        hi = high if high is not None else lo + span
        if integer:
            lo, hi = math.ceil(lo), math.floor(hi)
        v = min(hi, max(lo, lo + self.q * (hi - lo) + self.rng.gauss(0, 0.12 * (hi - lo))))
        if integer:
            return float(min(hi, max(lo, round(v))))
        r = round(v, 2)
        return r if lo <= r <= hi else v

    def _string(self, s: dict[str, Any], key: str) -> str:
        k = key.lower()
        given = self.ctx.proposals
        fmt = s.get("format")
        if fmt == "date-time":
            text = "2024-06-01T12:00:00Z"
        elif fmt == "date":
            text = "2024-06-01"
        elif "title" in k:
            text = given[0].title if given else f"A note on {_topic(self.rng, self.ctx.question)}"
        elif any(n in k for n in _NAME_KEYS):
            text = given[0].author if given else self.author.split(":")[0]
        else:
            pool = _GOOD if self.q >= 0.65 else _MIXED if self.q >= 0.4 else _POOR
            text = f"{self.rng.choice(pool)}; {self.rng.choice(_DETAILS)}."
        if self.hostile and self.rng.random() < 0.3:
            at = self.rng.randint(0, len(text))
            text = text[:at] + self.rng.choice(HOSTILE_PIECES) + text[at:]
        return _fit(text, s)


def _fit(text: str, s: dict[str, Any]) -> str:
    """`text` within the schema's minLength and maxLength (cut at a word where it can be)."""
    lo, hi = int(s.get("minLength", 0)), s.get("maxLength")
    while len(text) < lo:
        text += " " + _DETAILS[len(text) % len(_DETAILS)]
    if isinstance(hi, int) and len(text) > hi:
        cut = text[:hi]
        space = cut.rfind(" ")
        text = cut[:space] if space >= max(lo, 1) else cut
    return text


def _lengthen(value: Any, rng: random.Random, schema: dict[str, Any], writer: _JsonWriter) -> bool:
    """Add a clause to the first free-text string that has room; False when none has."""
    def walk(v: Any, s: Any) -> bool:
        s = writer.resolve(s)
        if isinstance(v, dict):
            props = s.get("properties") or {}
            for k, item in v.items():
                sub = writer.resolve(props.get(k, {}))
                if isinstance(item, str) and not any(n in k.lower() for n in (*_NAME_KEYS, "title")) \
                        and "enum" not in sub and "const" not in sub and "format" not in sub:
                    fresh = [d for d in _DETAILS if d not in item]
                    longer = f"{item.rstrip('.')}; {rng.choice(fresh)}." if fresh else item
                    limit = sub.get("maxLength")
                    if len(longer) > len(item) and not (isinstance(limit, int) and len(longer) > limit):
                        v[k] = longer
                        return True
                elif walk(item, sub):
                    return True
        elif isinstance(v, list):
            return any(walk(item, s.get("items", {})) for item in v)
        return False

    return walk(value, schema)


def json_text(rng: random.Random, schema: Any, *, quality: float, author: str, context: PromptContext,
              hostile: bool = False, min_tokens: int = 60) -> str:
    """A JSON document valid for `schema` (or a small object for ``"json"``), on one line.

    Supported: object (properties, required: all properties are written), nested objects,
    ``$ref`` into ``$defs``/``definitions``, anyOf/oneOf (the first non-null branch), allOf,
    integer and number (minimum, maximum, exclusive bounds), string (minLength, maxLength, the
    date and date-time formats), boolean, null, enum, const, arrays (items, minItems, maxItems).
    Scores sit around ``quality`` with the judge's noise from `rng`; free-text strings grow
    until the answer has about `min_tokens` tokens, where their maxLength allows."""
    root = _SMALL_SCHEMA if not isinstance(schema, dict) or not schema else schema
    writer = _JsonWriter(rng, root, quality, context, author, hostile)
    value = writer.value(root)
    for _ in range(6):
        if len(tokenize(json.dumps(value, ensure_ascii=False), json=True)) >= min_tokens:
            break
        if not _lengthen(value, rng, root, writer):
            break
    return json.dumps(value, ensure_ascii=False)


def malform_json(rng: random.Random, text: str) -> str:
    """`text` made into what a JSON parser rejects: cut short, or wrapped in prose and a code fence."""
    if rng.random() < 0.5:
        cut = text[: max(1, int(len(text) * rng.uniform(0.4, 0.8)))]
        try:
            json.loads(cut)
        except ValueError:
            return cut
    return f"Here is my assessment:\n\n```json\n{text}\n```\nI hope this helps."


def answer_quality(seed: int, context: PromptContext, prompt: str) -> float:
    """How good the judged answer is, in [0.15, 0.95]: the same for every judge of one answer
    (the quoted proposals, else the whole prompt), leaning on its author's own level."""
    subject = "".join(f"{g.author}\x1f{g.body}" for g in context.proposals) or prompt
    q = random.Random(f"{seed}:quality:{_digest(subject)}").uniform(0.2, 0.9)
    if context.proposals:
        q = 0.5 * q + 0.5 * random.Random(f"{seed}:level:{context.proposals[0].author}").uniform(0.25, 0.9)
    return min(0.95, max(0.15, q))
