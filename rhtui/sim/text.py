"""Deterministic research-proposal prose about the Riemann Hypothesis, split into tokens.

`proposal_tokens(rng, n)` returns exactly `n` token-ish pieces (a word, a piece of a long
word, a punctuation mark, a newline) whose concatenation reads like a student's proposal.
With ``hostile=True`` it mixes in what a terminal must never interpret: ANSI CSI and OSC
escape sequences, control characters and Rich markup. A dashboard must show those as text.
"""

from __future__ import annotations

import random
import re

__all__ = ["HOSTILE_PIECES", "proposal_tokens", "tokenize"]

_TITLES = [
    "Proposal: {topic}",
    "Research plan: {topic}",
    "A programme on {topic}",
    "Towards {topic}",
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

_HEADINGS = ["## Background", "## Aims", "## Method", "## Risks", "## Milestones", "## Expected outcomes"]

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

_TOKEN_RE = re.compile(r" ?[A-Za-z']{1,7}| ?\d{1,3}| ?[^\sA-Za-z\d]|\n+| +")


def tokenize(text: str) -> list[str]:
    """Split text into token-ish pieces (about four characters each, like a BPE tokenizer)."""
    return _TOKEN_RE.findall(text)


def _paragraphs(rng: random.Random):
    topic = rng.choice(_TOPICS)
    yield rng.choice(_TITLES).format(topic=topic) + "\n\n"
    headings = list(_HEADINGS)
    while True:
        for heading in headings:
            yield heading + "\n\n"
            k = rng.randint(3, 6)
            yield " ".join(rng.sample(_SENTENCES, k)) + "\n\n"
        rng.shuffle(headings)


def proposal_tokens(rng: random.Random, n: int, *, hostile: bool = False) -> list[str]:
    """Exactly `n` pieces of proposal text, deterministic for a given `rng` state."""
    out: list[str] = []
    if n <= 0:
        return out
    for para in _paragraphs(rng):
        for piece in tokenize(para):
            if hostile and rng.random() < 0.03:
                out.append(rng.choice(HOSTILE_PIECES))
                if len(out) >= n:
                    return out
            out.append(piece)
            if len(out) >= n:
                return out
    return out  # pragma: no cover - the generator never ends
