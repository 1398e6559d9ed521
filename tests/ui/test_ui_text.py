"""The sanitiser for untrusted model text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from rhtui.tui.text import markdown_parser, one_line, safe_text, sanitize


def test_escape_sequences_are_shown_not_executed():
    s = sanitize("a\x1b[31mred\x1b[0m \x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\ \x1b]52;c;ZXZpbA==\x07")
    assert "\x1b" not in s and "\x07" not in s
    assert s == "a^[[31mred^[[0m ^[]8;;https://x^[\\link^[]8;;^[\\ ^[]52;c;ZXZpbA==^G"


def test_c1_controls_bidi_and_del_are_visible():
    s = sanitize("x\x9b31m y\u202edcba z\x7f")
    assert s == "x<U+009B>31m y<U+202E>dcba z^?"


def test_newlines_and_tabs_stay_crlf_folds_lone_cr_shows():
    assert sanitize("a\r\nb\tc\rd") == "a\nb\tc^Md"


def test_one_line_folds_and_cuts():
    assert one_line("a\nb", 10) == "a ↵ b"
    assert one_line("x" * 20, 5) == "xxxx…"


def test_markup_is_literal_in_safe_text():
    console = Console(record=True, width=80, force_terminal=True, color_system="truecolor")
    console.print(safe_text("[bold red]markup[/] [link=https://evil]x[/link]"))
    out = console.export_text()
    assert "[bold red]markup[/]" in out and "[link=https://evil]x[/link]" in out


def test_markdown_shows_raw_html_as_text():
    tokens = markdown_parser().parse("<script>alert(1)</script>\n\n<b>x</b>")
    assert not any(t.type in ("html_block", "html_inline") for t in tokens)
    inline = [c.content for t in tokens if t.type == "inline" for c in t.children or []]
    assert any("<script>" in c for c in inline)


@given(st.text())
def test_nothing_a_terminal_would_act_on_survives(text):
    s = sanitize(text)
    assert not any(ord(ch) < 0x20 and ch not in "\n\t" for ch in s)
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in s)
    assert not any(ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for ch in s)
