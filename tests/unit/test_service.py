"""`rhtui service print`: the systemd user unit of the headless engine. Its keys, absolute paths,
systemd's quoting of paths with spaces, quotes, % and $, and `systemd-analyze verify` where it exists."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.commands.service import UnitSpec, render_unit


def print_unit(*args: str) -> str:
    r = CliRunner().invoke(app, [*args])
    assert r.exit_code == 0, r.output
    return r.stdout


def keys(unit: str) -> dict[str, list[str]]:
    """Each key's values (a key may repeat: Environment=), comments and sections left out."""
    out: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def exec_argv(value: str) -> list[str]:
    """ExecStart= as systemd splits it: shell-like quoting, then %% and $$ unescaped."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]


def test_the_unit_runs_the_headless_engine_with_absolute_paths(tmp_path, monkeypatch):
    config = tmp_path / "rhtui.toml"
    config.write_text("[session]\nname = 'from_config'\n")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:11500")
    monkeypatch.chdir(tmp_path)
    unit = print_unit("service", "print", "--config", "rhtui.toml", "--data-dir", "data", "--session", "weeks",
                      "--duration", "43200")
    k = keys(unit)
    argv = exec_argv(k["ExecStart"][0])
    assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)
    assert argv[argv.index("--config") + 1] == str(config)  # given relative: written absolute
    assert argv[argv.index("--data-dir") + 1] == str(tmp_path / "data")
    assert argv[argv.index("--session") + 1] == "weeks"
    assert argv[argv.index("--duration") + 1] == "43200"
    assert "--headless" in argv
    assert k["WorkingDirectory"] == [f"-{tmp_path / 'data'}"]
    assert 'Environment="OLLAMA_HOST=127.0.0.1:11500"' in unit
    assert k["Restart"] == ["on-failure"] and k["RestartPreventExitStatus"] == ["2"]
    assert k["KillSignal"] == ["SIGINT"]  # the headless engine's graceful stop
    assert int(k["TimeoutStopSec"][0]) >= 60
    assert k["WantedBy"] == ["default.target"]
    assert k["Type"] == ["exec"]
    assert "journalctl --user -u rhtui -f" in unit and "rhtui watch --data-dir" in unit
    assert "loginctl enable-linger" in unit


def test_without_options_the_config_in_effect_and_the_data_dir_are_named(tmp_path, monkeypatch):
    xdg_config = Path(os.environ["XDG_CONFIG_HOME"])
    (xdg_config / "rhtui").mkdir(parents=True)
    (xdg_config / "rhtui" / "rhtui.toml").write_text("")
    monkeypatch.setenv("RHTUI_BUDGET__RESERVE_MB", "2048")
    unit = print_unit("service", "print")
    argv = exec_argv(keys(unit)["ExecStart"][0])
    assert argv[argv.index("--config") + 1] == str(xdg_config / "rhtui" / "rhtui.toml")
    assert argv[argv.index("--data-dir") + 1] == str(Path(os.environ["XDG_DATA_HOME"]) / "rhtui")
    assert "--session" not in argv and "--duration" not in argv  # the config's, then
    assert 'Environment="RHTUI_BUDGET__RESERVE_MB=2048"' in unit  # a service does not see this shell's
    assert "One session of 480 min" in unit and "--duration 43200" in unit  # it stops after 8 h: said


def test_options_given_before_service_are_carried(tmp_path):
    unit = print_unit("--session", "early", "--policy", "efficiency", "service", "print", "--data-dir",
                      str(tmp_path))
    argv = exec_argv(keys(unit)["ExecStart"][0])
    assert argv[argv.index("--session") + 1] == "early"
    assert argv[argv.index("--policy") + 1] == "efficiency"


def test_paths_with_spaces_quotes_percent_and_dollar_survive_systemd_quoting(tmp_path):
    odd = tmp_path / 'my data/50% "$HOME" \\ x'
    odd.mkdir(parents=True)
    config = odd / "rh tui.toml"
    config.write_text("")
    unit = print_unit("service", "print", "--config", str(config), "--data-dir", str(odd))
    k = keys(unit)
    argv = exec_argv(k["ExecStart"][0])
    assert argv[argv.index("--config") + 1] == str(config)
    assert argv[argv.index("--data-dir") + 1] == str(odd)
    assert k["WorkingDirectory"] == ["-" + str(odd).replace("%", "%%")]


def test_a_path_a_unit_cannot_hold_is_refused(tmp_path):
    r = CliRunner().invoke(app, ["service", "print", "--data-dir", str(tmp_path / "a\nb")])
    assert r.exit_code == 2
    assert "control character" in r.output


def test_a_bad_config_fails_here_not_in_the_service(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[budget]\nreserve_mb = -1\n")
    r = CliRunner().invoke(app, ["service", "print", "--config", str(bad)])
    assert r.exit_code == 2
    assert "reserve_mb" in r.output


def test_demo_is_not_a_service():
    r = CliRunner().invoke(app, ["--demo", "service", "print"])
    assert r.exit_code == 2
    assert "rhtui --demo --headless" in r.output


# -- systemd's own check ---------------------------------------------------------------------


def verify(unit_file: Path) -> None:
    """`systemd-analyze verify`: fails the test on any complaint about this unit."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    r = subprocess.run([tool, "verify", str(unit_file)], capture_output=True, text=True, timeout=120)
    about_it = [line for line in (r.stdout + r.stderr).splitlines() if unit_file.name in line]
    if r.returncode != 0 and not about_it:
        pytest.skip(f"systemd-analyze cannot run here ({r.stderr.strip()[:300]})")
    assert r.returncode == 0 and not about_it, r.stdout + r.stderr


def test_the_printed_unit_passes_systemd_analyze_verify(tmp_path):
    data = tmp_path / "data dir"
    unit = print_unit("service", "print", "--data-dir", str(data), "--duration", "60")
    path = tmp_path / "rhtui.service"
    path.write_text(unit)
    verify(path)


def test_an_executable_under_a_path_with_spaces_passes_verify(tmp_path):
    # systemd checks that ExecStart's program exists: a space quoted wrongly would name another file
    program = tmp_path / "bin dir" / "rh tui"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    unit = render_unit(UnitSpec(argv=[str(program), "--headless", "--data-dir", str(tmp_path / "a b")],
                                working_dir=tmp_path / "a b", environment={"OLLAMA_HOST": "h:1 2"}))
    path = tmp_path / "rhtui.service"
    path.write_text(unit)
    verify(path)
