"""Round prompts: what reaches each model, and how it is fitted to the context window."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhtui.engine.ensemble.prompts import (
    DEFAULT_CHARS_PER_TOKEN,
    TRIMMED,
    CharsPerToken,
    budget_chars,
    critique_prompt,
    proposal_prompt,
    student_num_ctx,
    synthesis_prompt,
    trim,
)

Q = "Propose a way to sharpen the zero-free region."


def _para(tag: str, n: int) -> str:
    return "\n\n".join(f"{tag} paragraph {i}. " + "The zeros are studied here. " * 4 + "And more." for i in range(n))


# -- chars per token and the budget ------------------------------------------------------------


def test_ratio_default_before_any_observation():
    cpt = CharsPerToken()
    assert cpt.ratio("rh-alpha") == DEFAULT_CHARS_PER_TOKEN == 2.5


def test_ratio_is_the_running_ratio_per_student():
    cpt = CharsPerToken()
    cpt.observe("rh-alpha", 4000, 1000)
    assert cpt.ratio("rh-alpha") == 4.0
    cpt.observe("rh-alpha", 2000, 1000)
    assert cpt.ratio("rh-alpha") == 3.0
    assert cpt.ratio("rh-beta") == 2.5


def test_ratio_is_clamped_and_implausible_counts_are_left_out():
    cpt = CharsPerToken()
    cpt.observe("a", 100, 100)
    assert cpt.ratio("a") == 1.5
    cpt.observe("b", 9000, 1000)  # 9 chars a token: a cached prompt, not a tokenizer
    assert cpt.ratio("b") == 2.5
    cpt.observe("b", 8000, 1000)
    assert cpt.ratio("b") == 8.0
    for chars, tokens in ((0, 10), (10, 0), (-5, 3)):
        cpt.observe("c", chars, tokens)
    assert cpt.ratio("c") == 2.5


@pytest.mark.parametrize(
    ("num_ctx", "num_predict", "system", "ratio", "expected"),
    [
        (5120, 3328, 2000, 2.5, int((5120 - 3328 - 256) * 2.5) - 2000),
        (6144, 3584, 0, 4.0, (6144 - 3584 - 256) * 4),
        (4096, None, 1000, 2.5, int((4096 - 2048 - 256) * 2.5) - 1000),  # unset: half the window
        (4096, -1, 0, 2.0, (4096 - 2048 - 256) * 2),  # unlimited: half the window
        (4096, 4096, 0, 4.0, 0),  # the answer takes it all
        (2048, 1000, 100_000, 4.0, 0),  # a system prompt larger than the window
    ],
)
def test_budget_chars(num_ctx, num_predict, system, ratio, expected):
    assert budget_chars(num_ctx, num_predict, system, ratio) == expected


def test_budget_margin():
    assert budget_chars(4096, 1024, 0, 2.0, margin_tokens=0) - budget_chars(4096, 1024, 0, 2.0) == 512


# -- trim -------------------------------------------------------------------------------------


def test_trim_keeps_short_text():
    assert trim("short", 5) == "short"
    assert trim("", 0) == ""


def test_trim_on_a_paragraph():
    text = "First paragraph, a long one.\n\nSecond paragraph here.\n\nThird paragraph that will not fit."
    out = trim(text, 70)
    assert out == "First paragraph, a long one.\n\nSecond paragraph here.\n" + TRIMMED
    assert len(out) <= 70


def test_trim_on_a_sentence():
    text = "One sentence here. Another sentence there. " * 5
    out = trim(text, 100)
    assert out.endswith("there.\n" + TRIMMED)
    assert len(out) <= 100


def test_trim_on_a_word_then_hard():
    out = trim("word " * 50, 60)
    assert out.endswith("word\n" + TRIMMED)
    hard = trim("x" * 200, 60)
    assert hard == "x" * (60 - len(TRIMMED) - 1) + "\n" + TRIMMED


def test_trim_too_small_for_the_note():
    assert trim("abcdefghijklmnopqrstuvwxyz", 5) == "abcde"
    assert trim("abc", 0) == ""
    assert trim("abc", -4) == ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab .!?\n\t\x1b"), max_size=400), st.integers(min_value=-5, max_value=450))
def test_trim_never_exceeds_max_chars(text, max_chars):
    out = trim(text, max_chars)
    assert len(out) <= max(0, max_chars)
    if len(text) <= max_chars:
        assert out == text
    elif max_chars > len(TRIMMED) + 1:
        assert out.endswith(TRIMMED)
        assert text.startswith(out[: -len(TRIMMED) - 1].rstrip())


# -- the round's prompts ----------------------------------------------------------------------


def test_proposal_prompt_without_context():
    prompt = proposal_prompt(Q, None, "  ", 10_000)
    assert prompt.startswith(f"Research question: {Q}\n")
    assert "previous synthesis" not in prompt and "previous critique" not in prompt
    assert prompt.rstrip().endswith("Answer the question from your role, in the headings your instructions give.")


def test_proposal_prompt_with_context_in_order():
    prompt = proposal_prompt(Q, "TITLE: last synthesis", "TITLE: last critique", 10_000)
    i_q = prompt.index(Q)
    i_s = prompt.index("--- PREVIOUS SYNTHESIS ---\nTITLE: last synthesis")
    i_c = prompt.index("--- PREVIOUS CRITIQUE ---\nTITLE: last critique")
    i_a = prompt.index("Answer the question from your role")
    assert i_q < i_s < i_c < i_a
    assert "The ensemble's previous synthesis" in prompt
    assert "The critic's previous critique" in prompt


def test_proposal_prompt_fits_and_shares_the_budget():
    synthesis, critique = _para("S", 40), _para("C", 40)
    full = proposal_prompt(Q, synthesis, critique, 100_000)
    assert synthesis in full and critique in full
    prompt = proposal_prompt(Q, synthesis, critique, 3000)
    assert len(prompt) <= 3000
    assert prompt.count(TRIMMED) == 2
    assert len(prompt) > 2800  # the budget is used, not wasted


def test_a_short_context_leaves_its_share_to_the_other():
    short, long = "TITLE: short critique", _para("S", 40)
    prompt = proposal_prompt(Q, long, short, 2500)
    assert len(prompt) <= 2500
    assert short in prompt
    assert prompt.count(TRIMMED) == 1
    assert prompt.index(TRIMMED) < prompt.index(short)


def test_prompts_are_sanitised():
    prompt = proposal_prompt(Q + "\x1b[2J", "syn \x1b]8;;http://x\x07link", "crit\x9b31m", 10_000)
    assert not any(ch in prompt for ch in "\x1b\x07\x9b")
    assert "^[[2J" in prompt and "^[]8;;http://x^Glink" in prompt and "<U+009B>" in prompt
    c = critique_prompt(Q, [("rh-\x1balpha", "text \x1b[31m")], 10_000)
    s = synthesis_prompt(Q, [("rh-alpha", "text \x1b[31m")], "crit \x1b", 10_000)
    assert "\x1b" not in c and "\x1b" not in s


def test_sanitising_does_not_break_the_budget():
    hostile = "\x1b" * 3000  # each ESC becomes two characters
    assert len(proposal_prompt(Q, hostile, hostile, 2000)) <= 2000
    assert len(critique_prompt(Q, [("a", hostile), ("b", hostile)], 2000)) <= 2000


def test_critique_prompt_labels_each_proposal():
    proposals = [("rh-alpha", "TITLE: A plan"), ("rh-beta", "TITLE: B plan"), ("rh-gamma", "TITLE: C plan")]
    prompt = critique_prompt(Q, proposals, 10_000, headings=("TITLE", "IDEA", "METHOD"))
    for author, text in proposals:
        assert f"\n--- PROPOSAL by {author} ---\n{text}\n--- end of {author}'s proposal ---\n" in prompt
    assert prompt.index("rh-alpha") < prompt.index("rh-beta") < prompt.index("rh-gamma")
    assert "critic" in prompt
    assert "(TITLE, IDEA, METHOD)" in prompt
    assert "synthes" not in prompt.lower() and "merge" not in prompt.lower()


def test_critique_prompt_trims_proposals_equally():
    proposals = [(f"rh-{n}", _para(n.upper(), 30)) for n in ("alpha", "beta", "gamma", "delta")]
    prompt = critique_prompt(Q, proposals, 6000)
    assert len(prompt) <= 6000
    blocks = prompt.split("--- PROPOSAL by ")[1:]
    assert len(blocks) == 4
    sizes = [len(b.split(" proposal ---")[0]) for b in blocks]
    assert max(sizes) - min(sizes) < 200  # equal shares, cut on sentence boundaries
    assert all(TRIMMED in b for b in blocks)


def test_critique_prompt_needs_proposals():
    with pytest.raises(ValueError):
        critique_prompt(Q, [], 1000)


def test_synthesis_prompt():
    proposals = [("rh-alpha", "TITLE: A plan"), ("rh-delta", "TITLE: D plan")]
    prompt = synthesis_prompt(Q, proposals, "TITLE: the critique", 10_000, headings=("TITLE", "RISKS"))
    assert "--- PROPOSAL by rh-alpha ---\nTITLE: A plan" in prompt
    assert "--- PROPOSAL by rh-delta ---\nTITLE: D plan" in prompt
    assert "--- CRITIQUE ---\nTITLE: the critique" in prompt
    assert "Merge these proposals and the critique into one proposal" in prompt
    assert "credit each idea to its author by name" in prompt
    assert "(TITLE, RISKS)" in prompt
    without = synthesis_prompt(Q, proposals, None, 10_000)
    assert "CRITIQUE" not in without and "and the critique" not in without


def test_synthesis_prompt_fits():
    proposals = [(f"rh-{i}", _para(str(i), 20)) for i in range(5)]
    prompt = synthesis_prompt(Q, proposals, _para("K", 20), 5000)
    assert len(prompt) <= 5000
    assert prompt.count("--- PROPOSAL by ") == 5 and "--- CRITIQUE ---" in prompt


def test_synthesis_prompt_needs_proposals():
    with pytest.raises(ValueError):
        synthesis_prompt(Q, [], "critique", 1000)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(max_size=600), min_size=1, max_size=5),
    st.one_of(st.none(), st.text(max_size=600)),
    st.integers(min_value=0, max_value=3000),
)
def test_prompts_fit_whenever_the_fixed_text_does(texts, critique, extra):
    proposals = [(f"rh-{i}", t) for i, t in enumerate(texts)]
    # with no room at all every quoted text is cut to nothing: what is left is the fixed text
    fixed = len(synthesis_prompt(Q, proposals, critique, 0))
    assert len(synthesis_prompt(Q, proposals, critique, fixed + extra)) <= fixed + extra
    fixed = len(proposal_prompt(Q, texts[0], critique, 0))
    assert len(proposal_prompt(Q, texts[0], critique, fixed + extra)) <= fixed + extra
    fixed = len(critique_prompt(Q, proposals, 0))
    assert len(critique_prompt(Q, proposals, fixed + extra)) <= fixed + extra
    full = critique_prompt(Q, proposals, 100_000)
    assert critique_prompt(Q, proposals, len(full)) == full  # nothing is cut when all of it fits


# -- /api/show parameters ---------------------------------------------------------------------


def test_student_num_ctx():
    text = (
        'num_ctx                        5120\n'
        'num_predict                    3328\n'
        'stop                           "=== END OF PROPOSAL ==="\n'
        'temperature                    0.5'
    )
    assert student_num_ctx(text) == (5120, 3328)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (None, None)),
        ("temperature 0.4", (None, None)),
        ("num_ctx 8192", (8192, None)),
        ("num_predict -1", (None, -1)),
        ("num_ctx 4096.5\nnum_predict many", (None, None)),
        ("num_ctx 2048\nnum_ctx 4096", (4096, None)),
    ],
)
def test_student_num_ctx_partial(text, expected):
    assert student_num_ctx(text) == expected
