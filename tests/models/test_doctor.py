"""`rhtui doctor` against the simulator: a verdict per check, the fix for each failure."""

from __future__ import annotations

import re

import pytest

from tests.models.conftest import STUDENTS, write_modelfiles

pytestmark = pytest.mark.integration


def verdict(output: str, check: str) -> str:
    m = re.search(rf"^(OK|WARN|FAIL|SKIP)\s+{re.escape(check)}(?=\s)", output, re.M)
    assert m, f"no {check!r} row in:\n{output}"
    return m.group(1)


def test_doctor_passes_against_the_simulator(sim, rhtui):
    assert rhtui("--host", sim.url, "models", "create").exit_code == 0
    r = rhtui("--host", sim.url, "doctor")
    assert r.exit_code == 0, r.output
    assert verdict(r.output, "config") == "OK"
    assert verdict(r.output, "Ollama") == "OK" and f"Ollama 0.12.6 at {sim.url}" in r.output
    assert "command-line flag --host" in r.output  # where the host came from
    assert verdict(r.output, "GPU (NVML)") == "WARN"  # no NVIDIA driver here: rhtui runs without NVML
    assert verdict(r.output, "students") == "OK" and "6 present and matching their Modelfiles" in r.output
    assert verdict(r.output, "base models") == "OK" and "6 pulled" in r.output
    assert verdict(r.output, "database") == "OK" and "will be created on the first run" in r.output
    assert verdict(r.output, "disk") == "OK"
    assert "FAIL" not in r.output and "rhtui is ready" in r.output


def test_drifted_students_are_warnings_with_the_fix(sim, rhtui):
    r = rhtui("--host", sim.url, "doctor")
    assert r.exit_code == 0, r.output
    assert verdict(r.output, "students drifted") == "WARN"
    for name in STUDENTS:
        assert f"{name}: system prompt, num_ctx, num_predict" in r.output
    assert f"fix: rhtui --host {sim.url} models create {' '.join(STUDENTS)}" in r.output


def test_doctor_fails_when_the_server_is_down_and_names_the_host(rhtui):
    r = rhtui("--host", "127.0.0.1:9", "doctor")
    assert r.exit_code == 1
    assert verdict(r.output, "Ollama") == "FAIL"
    assert "not reachable at http://127.0.0.1:9 (host from command-line flag --host)" in r.output
    assert "ollama serve" in r.output
    assert verdict(r.output, "students") == "SKIP"


def test_doctor_names_the_environment_variable_the_host_came_from(rhtui, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    r = rhtui("doctor")
    assert r.exit_code == 1 and "host from environment variable OLLAMA_HOST" in r.output


def test_doctor_fails_when_a_model_is_missing_with_the_command_that_fixes_it(sim, rhtui):
    assert rhtui("--host", sim.url, "models", "create").exit_code == 0
    sim.call(sim.world.delete_model, "rh-gamma")
    r = rhtui("--host", sim.url, "doctor")
    assert r.exit_code == 1
    assert verdict(r.output, "students missing") == "FAIL" and "not in Ollama: rh-gamma" in r.output
    assert f"fix: rhtui --host {sim.url} models create rh-gamma" in r.output
    assert "5 present and matching" in r.output


def test_a_base_that_is_not_pulled_gives_the_pull_command(sim, rhtui, tmp_path):
    folder = write_modelfiles(tmp_path / "mf", {"rh-new": "FROM phi3:mini\nSYSTEM hi\n"})
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "doctor")
    assert r.exit_code == 1
    assert verdict(r.output, "students missing") == "FAIL"
    assert verdict(r.output, "base phi3:mini") == "WARN" and "fix: ollama pull phi3:mini" in r.output


def test_a_bad_modelfile_fails_with_file_and_line(sim, rhtui, tmp_path):
    folder = write_modelfiles(tmp_path / "mf", {"rh-x": "FROM mistral:7b\nPARAMETER top_q 0.5\n"})
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "doctor")
    assert r.exit_code == 1
    assert verdict(r.output, "Modelfile rh-x") == "FAIL"
    assert "rh-x.Modelfile:2: PARAMETER top_q is not an Ollama parameter (did you mean top_p?)" in r.output


def test_an_existing_database_is_checked_and_a_damaged_one_left_alone(sim, rhtui, tmp_path):
    import asyncio

    from rhtui.engine.store import SCHEMA_VERSION, Store

    good = tmp_path / "good"

    async def make():
        await (await Store.open(good / "rhtui.db")).close()

    asyncio.run(make())
    r = rhtui("--host", sim.url, "--data-dir", str(good), "doctor")
    assert verdict(r.output, "database") == "OK" and f"schema v{SCHEMA_VERSION} (current)" in r.output

    bad = tmp_path / "bad"
    bad.mkdir()
    junk = b"SQLite format 3\x00" + b"\xff" * 4000
    (bad / "rhtui.db").write_bytes(junk)
    r = rhtui("--host", sim.url, "--data-dir", str(bad), "doctor")
    assert r.exit_code == 1
    assert verdict(r.output, "database") == "FAIL" and "move" in r.output
    assert (bad / "rhtui.db").read_bytes() == junk


def test_an_invalid_config_is_a_failure_and_the_other_checks_still_run(sim, rhtui, monkeypatch):
    monkeypatch.setenv("RHTUI_BUDGET__MAX_FRACTION", "2")
    r = rhtui("--host", sim.url, "doctor")
    assert r.exit_code == 1
    assert verdict(r.output, "config") == "FAIL" and "RHTUI_BUDGET__MAX_FRACTION" in r.output
    assert verdict(r.output, "GPU (NVML)") == "WARN" and verdict(r.output, "disk") == "OK"
