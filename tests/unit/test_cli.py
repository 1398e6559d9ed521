"""The `rhtui` command's handling of bad input: a message a person can act on, the right exit code."""

from __future__ import annotations

from typer.testing import CliRunner

from rhtui.commands.cli import app

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("rhtui ")


def test_invalid_flag_value_exits_2_naming_key_and_source(tmp_path):
    r = runner.invoke(app, ["--headless", "--duration", "-3", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "session.duration_min" in r.output and "command-line flag --duration" in r.output


def test_invalid_config_file_exits_2(tmp_path):
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text("[budget]\nemergency_fraction = 2\n")
    r = runner.invoke(app, ["--config", str(cfg), "report"])
    assert r.exit_code == 2
    assert "budget.emergency_fraction" in r.output and str(cfg) in r.output


def test_report_without_a_database_says_so_and_creates_nothing(tmp_path):
    r = runner.invoke(app, ["--data-dir", str(tmp_path / "d"), "report"])
    assert r.exit_code == 1
    assert "no session has run yet" in r.output
    assert not (tmp_path / "d").exists()


def test_headless_with_ollama_down_names_the_host(tmp_path):
    r = runner.invoke(app, ["--headless", "--host", "127.0.0.1:9", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert "not reachable at http://127.0.0.1:9" in r.output and "ollama serve" in r.output
