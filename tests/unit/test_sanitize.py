from hypothesis import given, strategies as st

from rhtui.ui_sanitize import PLACEHOLDER, sanitize, sanitize_line

HOSTILE = (
    "Lemma\x1b[2J\x1b[H one\x1b]0;pwned title\x07 two\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
    " \x1bP+q\x1b\\ three\x9b31m four\x07\x08 [bold red]markup[/]\r\nend"
)


def test_escape_sequences_and_controls_are_removed():
    out = sanitize(HOSTILE)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\x08" not in out
    assert "pwned title" not in out  # an OSC payload is part of the sequence
    assert "Lemma" in out and "three" in out and "end" in out
    assert "[bold red]markup[/]" in out  # markup stays literal text; callers never parse it
    assert PLACEHOLDER in out


def test_newlines_and_tabs_survive_but_not_in_a_line():
    assert sanitize("a\n\tb") == "a\n\tb"
    assert sanitize_line("a\n\tb") == "a  b"


@given(st.text())
def test_no_control_character_ever_survives(text):
    out = sanitize(text)
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in out)
