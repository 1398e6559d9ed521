"""The research agenda: question files in both formats, every error, and the dealing order."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhtui.engine.ensemble.agenda import MAX_QUESTION_CHARS, Agenda, AgendaError, load_questions


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_none_loads_the_shipped_bank():
    questions = load_questions(None)
    import tomllib
    from importlib import resources

    shipped = tomllib.loads(resources.files("rhtui").joinpath("data/prompts.toml").read_text(encoding="utf-8"))
    assert questions == [q.strip() for q in shipped["prompts"]]
    assert len(questions) >= 10
    assert all(q and q == q.strip() for q in questions)


def test_toml_in_the_shipped_format(tmp_path):
    path = _write(tmp_path, "q.toml", 'prompts = ["  First question?  ", "", "Second question?"]\n')
    assert load_questions(path) == ["First question?", "Second question?"]


def test_toml_drops_repeated_questions(tmp_path):
    path = _write(tmp_path, "q.toml", 'prompts = ["A?", "B?", "A?"]\n')
    assert load_questions(path) == ["A?", "B?"]


def test_toml_syntax_error_names_file_and_line(tmp_path):
    path = _write(tmp_path, "bad.toml", 'prompts = [\n  "one",\n  two\n]\n')
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    assert f"{path}:3:" in str(info.value)
    assert "not valid TOML" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('questions = ["A?"]\n', "has no `prompts` key"),
        ("prompts = []\n", "empty"),
        ('prompts = ["", "   "]\n', "empty"),
        ('prompts = "A?"\n', "must be a list of strings"),
        ('prompts = ["A?", 3]\n', "prompts[1] is not a string"),
    ],
)
def test_toml_content_errors(tmp_path, text, expected):
    path = _write(tmp_path, "q.toml", text)
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_toml_question_too_long_names_its_line(tmp_path):
    long = "x" * (MAX_QUESTION_CHARS + 1)
    path = _write(tmp_path, "q.toml", f'prompts = [\n  "short?",\n  "{long}",\n]\n')
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    assert f"{path}:3:" in str(info.value)
    assert "prompts[1]" in str(info.value)


def test_txt_one_question_per_line_with_comments(tmp_path):
    path = _write(
        tmp_path, "q.txt",
        "# my agenda\n\n  What is the first question?  \n\n# a comment\nWhat is the second?\n- a dash stays in text\n",
    )
    assert load_questions(path) == ["What is the first question?", "What is the second?", "- a dash stays in text"]


def test_md_list_markers_and_headings(tmp_path):
    path = _write(
        tmp_path, "agenda.md",
        "# Agenda\n\n## Zeros\n- First question?\n* Second question?\n1. Third question?\n12) Fourth question?\n"
        "+ Fifth question?\n---\n-\nPlain line question?\n",
    )
    assert load_questions(path) == [
        "First question?", "Second question?", "Third question?", "Fourth question?", "Fifth question?",
        "Plain line question?",
    ]


def test_other_suffix_is_read_as_text(tmp_path):
    path = _write(tmp_path, "questions", "One?\r\nTwo?\r\n")
    assert load_questions(path) == ["One?", "Two?"]


def test_utf8_bom_is_accepted(tmp_path):
    path = _write(tmp_path, "q.txt", "\ufeffWhat about Re(s) = 1/2?\n".encode())
    assert load_questions(path) == ["What about Re(s) = 1/2?"]


def test_text_question_too_long_names_its_line(tmp_path):
    path = _write(tmp_path, "q.txt", "ok?\n\n" + "y" * (MAX_QUESTION_CHARS + 1) + "\n")
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    assert f"{path}:3:" in str(info.value)
    assert str(MAX_QUESTION_CHARS) in str(info.value)


def test_question_of_exactly_the_cap_is_accepted(tmp_path):
    path = _write(tmp_path, "q.txt", "z" * MAX_QUESTION_CHARS + "\n")
    assert load_questions(path) == ["z" * MAX_QUESTION_CHARS]


@pytest.mark.parametrize("text", ["", "\n\n   \n", "# only a comment\n", "# Heading\n\n- \n"])
def test_file_without_questions(tmp_path, text):
    path = _write(tmp_path, "q.md", text)
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    assert str(path) in str(info.value)
    assert "no question" in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    assert str(path) in str(info.value)
    assert "does not exist" in str(info.value)


def test_directory(tmp_path):
    with pytest.raises(AgendaError) as info:
        load_questions(tmp_path)
    assert "is a folder" in str(info.value)


def test_not_utf8_names_line_and_byte(tmp_path):
    path = _write(tmp_path, "q.txt", b"first?\nsecond?\nth\xe9rd?\n")
    with pytest.raises(AgendaError) as info:
        load_questions(path)
    msg = str(info.value)
    assert f"{path}:3:" in msg
    assert "0xe9" in msg
    assert "offset 17" in msg
    assert "UTF-8" in msg


def test_agenda_deals_every_question_once_per_pass():
    questions = [f"Q{i}?" for i in range(7)]
    agenda = Agenda(questions, seed=3)
    first = [agenda.next() for _ in range(7)]
    second = [agenda.next() for _ in range(7)]
    assert sorted(first) == sorted(questions)
    assert sorted(second) == sorted(questions)
    assert first != questions or second != questions  # shuffled, not file order


def test_agenda_is_deterministic_per_seed():
    questions = [f"Q{i}?" for i in range(9)]
    a, b, c = Agenda(questions, seed=42), Agenda(questions, seed=42), Agenda(questions, seed=43)
    deal_a = [a.next() for _ in range(27)]
    assert deal_a == [b.next() for _ in range(27)]
    assert deal_a != [c.next() for _ in range(27)]


@pytest.mark.parametrize("seed", range(20))
def test_agenda_never_repeats_across_a_reshuffle(seed):
    agenda = Agenda(["A?", "B?", "C?"], seed=seed)
    dealt = [agenda.next() for _ in range(30)]
    assert all(x != y for x, y in zip(dealt, dealt[1:], strict=False))


def test_single_question_repeats():
    agenda = Agenda(["Only?"], seed=1)
    assert [agenda.next() for _ in range(3)] == ["Only?"] * 3


def test_push_comes_first_in_the_order_asked():
    agenda = Agenda(["A?", "B?"], seed=0)
    agenda.push("  Mine?  ")
    agenda.push("Second of mine?")
    assert agenda.pending == ("Mine?", "Second of mine?")
    assert agenda.next() == "Mine?"
    assert agenda.next() == "Second of mine?"
    assert agenda.pending == ()
    assert sorted([agenda.next(), agenda.next()]) == ["A?", "B?"]


def test_push_does_not_disturb_the_deck():
    plain, pushed = Agenda(["A?", "B?", "C?"], seed=5), Agenda(["A?", "B?", "C?"], seed=5)
    pushed.push("Mine?")
    assert pushed.next() == "Mine?"
    assert [pushed.next() for _ in range(6)] == [plain.next() for _ in range(6)]


@pytest.mark.parametrize("question", ["", "   ", "q" * (MAX_QUESTION_CHARS + 1)])
def test_push_rejects_empty_and_long(question):
    with pytest.raises(AgendaError):
        Agenda(["A?"], seed=0).push(question)


def test_agenda_needs_a_question():
    with pytest.raises(AgendaError):
        Agenda(["", "  "], seed=0)
