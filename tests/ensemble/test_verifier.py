"""The deterministic verifier: each rule with examples that must fail it and examples that must not."""

from __future__ import annotations

import random

import pytest

from rhtui.engine.ensemble.verifier import end_marker, required_sections, rh_claim, verify
from rhtui.engine.modelfile import load_modelfile, shipped_modelfiles_dir

SECTIONS = ("TITLE", "IDEA", "METHOD", "EXPECTED EVIDENCE", "RISKS")
END = "=== END OF PROPOSAL ==="


def _system(name: str) -> str:
    system = load_modelfile(shipped_modelfiles_dir() / f"{name}.Modelfile").system
    assert system
    return system


ALPHA = _system("rh-alpha")

GOOD = """TITLE: Mollified moments and the proportion of zeros on the line

IDEA: Levinson's method with a longer mollifier raises the proportion of zeros on the critical line.
We build on Conrey's 2/5 and the later 41 % results, and ask what a longer mollifier needs.

METHOD:
1. State the twisted second moment with a mollifier of length T^theta. Open for theta > 4/7.
2. Bound the off-diagonal terms with Kloosterman-sum estimates.

EXPECTED EVIDENCE: a mean-value theorem for theta slightly above 4/7 would give a small gain.

RISKS: the off-diagonal terms may not be smaller than the main term; a referee would start there.
"""


@pytest.mark.parametrize("name", ["rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"])
def test_shipped_system_prompts(name):
    system = _system(name)
    assert required_sections(system) == SECTIONS
    assert end_marker(system) == END


def test_sections_and_marker_of_other_prompts():
    assert required_sections(None) == ()
    assert required_sections("Write freely. RH: is a name, too short.") == ()
    assert required_sections("SUMMARY: one line\nNEXT STEP: one\nSUMMARY: again") == ("SUMMARY", "NEXT STEP")
    assert end_marker(None) is None
    assert end_marker("no marker here") is None
    assert end_marker('end with the line: "<<DONE>>"  ') == "<<DONE>>"


def test_a_good_proposal_passes():
    assert verify(GOOD, system=ALPHA, done_reason="stop") == verify(GOOD, system=ALPHA, done_reason="stop")
    verdict = verify(GOOD, system=ALPHA, done_reason="stop")
    assert verdict.ok
    assert verdict.failures == ()


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty(text):
    verdict = verify(text, system=ALPHA, done_reason="stop")
    assert not verdict.ok
    assert verdict.failures == ("empty",)


def test_missing_sections_are_named_in_order():
    text = GOOD.replace("METHOD:", "APPROACH:").replace("RISKS:", "Dangers:")
    assert verify(text, system=ALPHA, done_reason="stop").failures == ("missing sections: METHOD, RISKS",)


@pytest.mark.parametrize(
    "heading",
    [
        "RISKS: x", "Risks: x", "risks : x", "**RISKS:** x", "**Risks**: x", "## Risks", "### RISKS:", "## **Risks**",
        "**Risks**", "- **Risks:** x", "  RISKS: indented", "3. RISKS: x", "> Risks: quoted",
    ],
)
def test_heading_styles_that_count(heading):
    text = GOOD.replace("RISKS: the off-diagonal", heading + "\nthe off-diagonal")
    assert verify(text, system=ALPHA, done_reason="stop").ok, heading


@pytest.mark.parametrize(
    "heading",
    ["The risks: x", "RISK: x", "RISKSS: x", "See RISKS: below", "Riskiness: x", "Risks are few.", "*Risks*"],
)
def test_heading_styles_that_do_not_count(heading):
    text = GOOD.replace("RISKS: the off-diagonal", heading + "\nthe off-diagonal")
    assert verify(text, system=ALPHA, done_reason="stop").failures == ("missing sections: RISKS",), heading


def test_two_word_heading_variants():
    for heading in ("Expected evidence:", "**EXPECTED  EVIDENCE:**", "## Expected Evidence", "EXPECTED_EVIDENCE:"):
        text = GOOD.replace("EXPECTED EVIDENCE:", heading + "\n")
        assert verify(text, system=ALPHA, done_reason="stop").ok, heading


@pytest.mark.parametrize("kind", ["proposal", "critique", "synthesis"])
def test_sections_checked_for_every_text_kind(kind):
    text = GOOD.replace("IDEA:", "Thoughts:")
    assert verify(text, system=_system("rh-zeta"), done_reason="stop", kind=kind).failures == (
        "missing sections: IDEA",
    )


def test_no_system_prompt_no_section_rule():
    assert verify("Just an answer with no headings at all.", system=None, done_reason="stop").ok


def test_judge_runs_are_not_verified_here():
    with pytest.raises(ValueError, match="parse_rubric"):
        verify('{"rigour": {}}', system=None, done_reason="stop", kind="judge")


@pytest.mark.parametrize(
    ("text", "done_reason", "failure"),
    [
        (GOOD, "length", "cut off: done_reason length, no END marker"),
        (GOOD, None, "cut off: done_reason none, no END marker"),
        (GOOD, "", "cut off: done_reason none, no END marker"),
        (GOOD, "load", "cut off: done_reason load, no END marker"),
    ],
)
def test_cut_off(text, done_reason, failure):
    assert verify(text, system=ALPHA, done_reason=done_reason).failures == (failure,)


@pytest.mark.parametrize(
    ("text", "done_reason"),
    [
        (GOOD, "stop"),  # the marker is a stop parameter: Ollama strips it and says "stop"
        (GOOD + END + "\n", "length"),  # the marker written, the limit reached just after
        (GOOD + END, None),
    ],
)
def test_finished(text, done_reason):
    assert verify(text, system=ALPHA, done_reason=done_reason).ok


def test_cut_off_without_a_marker_in_the_system_prompt():
    assert verify("An answer.", system="Answer briefly.", done_reason="length").failures == (
        "cut off: done_reason length, no END marker",
    )


LINE = "We now apply the large sieve to the sum over primes."


@pytest.mark.parametrize(
    "text",
    [
        GOOD + ("\n" + LINE) * 4,
        GOOD.replace("METHOD:\n", "METHOD:\n" + (LINE + "\n" + "x = 1\n") * 4),  # not adjacent: still a loop
        GOOD + "\n" + ("   " + LINE + "  \n") * 5,
        GOOD + " " + "the zeros of the zeta function lie close to the line and " * 12,
        GOOD + " " + "zeta " * 400,  # a short loop is a long block repeated too
        GOOD + "\n" + "1. Compute the next zero with Turing's method and check it against the table.\n" * 6,
    ],
)
def test_looping(text):
    failures = verify(text, system=ALPHA, done_reason="stop").failures
    assert len(failures) == 1
    assert failures[0].startswith("looping: ")


@pytest.mark.parametrize(
    "text",
    [
        GOOD + ("\n" + LINE) * 3,  # three times is a refrain, not a loop
        GOOD + ("\nshort line") * 10,  # under 20 characters
        GOOD + "\n" + "\n".join(["| --------------------- | ------------------- |"] * 8),  # no letters
        GOOD + " " + "the zeros of the zeta function lie close to the line and " * 2,  # two repeats
        GOOD + " " + "0123456789" * 4,  # a block under 50 characters, three times
        "\n".join(f"Step {i}: verify the zeros of the zeta function up to height {10 ** i}." for i in range(1, 9)),
    ],
)
def test_not_looping(text):
    failures = verify(text, system=None, done_reason="stop").failures
    assert not any(f.startswith("looping") for f in failures), failures


def test_loop_must_cover_30_percent_of_the_text():
    block = "A repeated remark about the explicit formula for primes, once more. "  # 68 characters
    long_text = GOOD + "".join(f"Remark {i}: the zeros up to height {i}000 were checked.\n" for i in range(40))
    assert len(block * 3) < 0.3 * len(long_text + block * 3)
    assert verify(long_text + block * 3, system=None, done_reason="stop").ok
    assert not verify(long_text + block * 40, system=None, done_reason="stop").ok


def test_a_long_text_of_random_words_is_not_a_loop():
    rng = random.Random(7)
    words = ["zeta", "zero", "line", "prime", "bound", "sum", "lemma", "critical", "moment", "sieve"]
    text = " ".join(rng.choice(words) for _ in range(6000))
    assert verify(text, system=None, done_reason="stop").ok


CLAIMS = [
    "We have proved the Riemann Hypothesis.",
    "we have proven RH.",
    "I have disproved the Riemann hypothesis.",
    "This proves RH.",
    "This proves the Riemann Hypothesis.",
    "Combined with Lemma 2, this proves RH.",
    "Hence RH is true.",
    "RH is false.",
    "The Riemann Hypothesis is false.",
    "Therefore the Riemann hypothesis is now proved.",
    "A proof of the Riemann hypothesis is complete.",
    "Our proof of RH is complete.",
    "This completes the proof of the Riemann Hypothesis.",
    "The zero at 0.7 + 14i disproves the Riemann Hypothesis.",
    "We exhibit an explicit counterexample to RH.",
    "We found a zero off the critical line.",
    "We have shown that all non-trivial zeros of the zeta function lie on the critical line.",
    "We present a complete proof of the Riemann Hypothesis.",
    "**We have proved the Riemann Hypothesis.**",
    "The argument settles RH once and for all.",
    "The bound follows, thereby proving RH.",
    "RH has been proved.",
    "We have shown that RH holds.",
    "IDEA: we now prove RH by a positivity argument.",
    "The Generalized Riemann Hypothesis is false.",
]

NOT_CLAIMS = [
    "Never claim to have proved or disproved RH.",
    "Never claim RH is proved or disproved.",
    "If RH is true, the error term is O(x^{1/2} log^2 x).",
    "Assuming RH, the bound improves.",
    "Such a lemma would prove RH.",
    "A proof of RH would require a new idea.",
    "A proof of the Riemann hypothesis is not within reach.",
    "If RH is false, there is a zero off the line.",
    "Suppose RH is false; then Robin's inequality fails for some n > 5040.",
    "It is not known whether RH is true.",
    "RH is true for the first 10^13 zeros (Gourdon).",
    "The Riemann Hypothesis is true for curves over finite fields (Weil).",
    "Deligne proved the Riemann hypothesis for varieties over finite fields.",
    "This does not prove RH.",
    "We have not proved RH.",
    "Nobody has proved the Riemann Hypothesis.",
    "This would disprove RH.",
    "A counterexample to RH would look like a zero with real part above 1/2.",
    "Most experts believe RH is true.",
    "Numerical evidence suggests RH is true.",
    "This proves RH if Lemma 3 holds.",
    "This proves RH provided the sum converges.",
    "This proves RH modulo Lemma 4.",
    "rh-alpha's proposal proves nothing new.",
    "rh-beta claims that this proves RH, which is unverified.",
    "Under RH, the gaps between primes are small.",
    "Conditional on RH, we get the bound.",
    "If we found a zero off the critical line, RH would be false.",
    "We aim to prove RH for a model problem.",
    "We prove RH-type bounds for the model.",
    "RH is equivalent to Robin's inequality.",
    "We have verified that RH holds for the first 10^12 zeros.",
    "Proving RH is beyond current methods.",
    "The difficulty of proving RH lies in the parity problem.",
    "This proves the bound unconditionally, but RH remains open.",
    "RH remains unproven.",
    "Whether RH is false is unknown.",
    "The claim that RH is false rests on a numerical error.",
    "It would be premature to say this proves RH.",
    "We cannot prove RH with these tools.",
    "A disproof of RH would need a zero off the line.",
    "Our approach won't prove RH.",
    "The rh-alpha proposal is false in step 3.",
    "We give a proof of the Riemann Hypothesis for function fields in a special case.",
]


@pytest.mark.parametrize("sentence", CLAIMS)
def test_rh_claims_fail(sentence):
    text = GOOD.replace("We build on", sentence + " We build on")
    failures = verify(text, system=ALPHA, done_reason="stop").failures
    assert len(failures) == 1, failures
    assert failures[0].startswith("claims RH proved or disproved: ")
    assert rh_claim(sentence) is not None


@pytest.mark.parametrize("sentence", NOT_CLAIMS)
def test_hedged_or_conditional_statements_pass(sentence):
    text = GOOD.replace("We build on", sentence + " We build on")
    assert verify(text, system=ALPHA, done_reason="stop").ok, sentence
    assert rh_claim(sentence) is None


def test_the_system_prompts_themselves_claim_nothing():
    for name in ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"):
        assert rh_claim(_system(name)) is None, name


def test_claim_reason_is_one_sanitised_line():
    failures = verify(GOOD + "\nThis proves RH \x1b[31mtoday.", system=ALPHA, done_reason="stop").failures
    assert failures == ("claims RH proved or disproved: 'This proves RH ^[[31mtoday.'",)


def test_several_failures_are_all_reported():
    text = "TITLE: x\n" + ("We have proved the Riemann Hypothesis again and again.\n" * 5)
    failures = verify(text, system=ALPHA, done_reason="length").failures
    assert [f.split(":")[0] for f in failures] == [
        "missing sections", "cut off", "looping", "claims RH proved or disproved",
    ]
