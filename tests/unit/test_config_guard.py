"""Configuration that would pass a loose check but break the budget guard, or that is not what
was meant, is refused: exit 2 with the key and where the value came from, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.engine.config import ConfigError, load_settings

FILE_CASES = {
    # TOML text: (key, words of the reason)
    "gpu_total_mb = inf\n": ("gpu_total_mb", "finite number"),
    "gpu_total_mb = 1e300\n": ("gpu_total_mb", "less than or equal to"),
    "keep_alive_s = inf\n": ("keep_alive_s", "finite number"),
    "snapshot_retention_days = inf\n": ("snapshot_retention_days", "finite number"),
    "[budget]\ntimeout_s = nan\n": ("budget.timeout_s", "finite number"),
    "[budget]\nemergency_fraction = nan\n": ("budget.emergency_fraction", "finite number"),
    "[session]\nduration_min = inf\n": ("session.duration_min", "finite number"),
    "students = []\n": ("students", "at least one is needed"),
    'data_dir = ""\n': ("data_dir", "is empty"),
    'ollama_host = "http://"\n': ("ollama_host", "no host after http://"),
}


@pytest.mark.parametrize("toml", list(FILE_CASES))
def test_a_bad_file_value_is_exit_2_with_key_and_file(toml, tmp_path):
    key, words = FILE_CASES[toml]
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text(toml)
    r = CliRunner().invoke(app, ["--config", str(cfg), "report", "--data-dir", str(tmp_path)]
                           if "data_dir" not in toml else ["--config", str(cfg), "report"])
    assert r.exit_code == 2, r.output
    assert f"  {key}: " in r.output and words in r.output and f"config file {cfg}" in r.output, r.output
    assert "Traceback" not in r.output


ENV_CASES = {
    # variable, value: (key, words, source)
    ("RHTUI_BUDGET", "notjson"): ("budget", "is not valid JSON", "environment variable RHTUI_BUDGET"),
    ("RHTUI_STUDENTS", "[garbage"): ("students", "is not valid JSON", "environment variable RHTUI_STUDENTS"),
    ("RHTUI_BUDGET", '{"reserve_mb":-3}'): ("budget.reserve_mb", "greater than or equal to 0",
                                            "environment variable RHTUI_BUDGET"),
    ("RHTUI_SESSION", '{"policy":"random"}'): ("session.policy", "'fair' or 'efficiency'",
                                               "environment variable RHTUI_SESSION"),
    ("RHTUI_DATA_DIR", ""): ("data_dir", "is empty", "environment variable RHTUI_DATA_DIR"),
    ("RHTUI_DATA_DIR", "  "): ("data_dir", "is empty", "environment variable RHTUI_DATA_DIR"),
    ("RHTUI_STUDENTS", "[]"): ("students", "at least one is needed", "environment variable RHTUI_STUDENTS"),
    ("RHTUI_GPU_TOTAL_MB", "inf"): ("gpu_total_mb", "finite number", "environment variable RHTUI_GPU_TOTAL_MB"),
    ("RHTUI_KEEP_ALIVE_S", "Infinity"): ("keep_alive_s", "finite number", "environment variable RHTUI_KEEP_ALIVE_S"),
    ("RHTUI_BUDGET__MAX_FRACTION", "nan"): ("budget.max_fraction", "finite number",
                                            "environment variable RHTUI_BUDGET__MAX_FRACTION"),
}


@pytest.mark.parametrize(("var", "value"), list(ENV_CASES))
def test_a_bad_environment_value_is_exit_2_with_key_and_variable(var, value, monkeypatch, tmp_path):
    key, words, source = ENV_CASES[(var, value)]
    monkeypatch.setenv(var, value)
    args = ["report"] if var == "RHTUI_DATA_DIR" else ["report", "--data-dir", str(tmp_path)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert f"  {key}: " in r.output and words in r.output and source in r.output, r.output
    assert "Traceback" not in r.output and "from default" not in r.output


def test_the_section_as_json_still_works_and_its_keys_are_named(monkeypatch):
    monkeypatch.setenv("RHTUI_BUDGET", '{"reserve_mb": 2048}')
    assert load_settings().budget.reserve_mb == 2048
    monkeypatch.setenv("RHTUI_BUDGET", '{"reserve_mb": 2048, "timeout_s": -1}')
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "budget.timeout_s" in str(e.value) and "environment variable RHTUI_BUDGET" in str(e.value)


def test_finite_values_within_bounds_still_load(tmp_path):
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text("gpu_total_mb = 12282.5\nkeep_alive_s = 300\nsnapshot_retention_days = 0.5\n")
    s = load_settings(cfg)
    assert (s.gpu_total_mb, s.keep_alive_s, s.snapshot_retention_days) == (12282.5, 300, 0.5)
