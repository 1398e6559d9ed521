"""`rhtui models …` against the simulator over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import socket

import pytest

from rhtui.engine.modelfile import to_create_request, wire_request
from tests.models.conftest import STUDENTS, write_modelfiles

pytestmark = pytest.mark.integration


def _json(obj):
    return json.loads(json.dumps(obj))


# -- create -----------------------------------------------------------------------------------


def test_create_sends_each_modelfile_as_the_structured_request(sim, rhtui, shipped):
    r = rhtui("--host", sim.url, "models", "create")
    assert r.exit_code == 0, r.output
    reqs = sim.requests()
    assert [q["model"] for q in reqs] == STUDENTS
    for q in reqs:
        mf = shipped[q["model"]]
        assert q == _json(wire_request(q["model"], mf))
        assert q["from"] == mf.from_ and q["system"] == mf.system and q["parameters"] == mf.parameters
        assert "modelfile" not in q  # Ollama's create API takes no Modelfile string
    # the scenario's students existed without their role prompts: they were updated
    for name in STUDENTS:
        assert re.search(rf"^{name}: updated — from {re.escape(shipped[name].from_)}", r.output, re.M), r.output
    # Ollama's streamed status reached the user
    assert "rh-zeta: success" in r.output and "writing manifest" in r.output
    assert rhtui("--host", sim.url, "models", "verify").exit_code == 0


def test_a_second_create_is_a_no_op(sim, rhtui):
    assert rhtui("--host", sim.url, "models", "create").exit_code == 0
    before = len(sim.requests())
    r = rhtui("--host", sim.url, "models", "create")
    assert r.exit_code == 0, r.output
    assert len(sim.requests()) == before
    for name in STUDENTS:
        assert f"{name}: unchanged" in r.output


def test_force_recreates_a_matching_model(sim, rhtui):
    assert rhtui("--host", sim.url, "models", "create", "rh-alpha").exit_code == 0
    r = rhtui("--host", sim.url, "models", "create", "--force", "rh-alpha")
    assert r.exit_code == 0 and "rh-alpha: recreated" in r.output
    assert [q["model"] for q in sim.requests()] == ["rh-alpha", "rh-alpha"]


def test_create_a_model_that_does_not_exist_yet(sim, rhtui):
    sim.call(sim.world.delete_model, "rh-gamma")
    r = rhtui("--host", sim.url, "models", "create", "rh-gamma")
    assert r.exit_code == 0 and "rh-gamma: created — from qwen2.5:7b" in r.output


def test_dry_run_prints_the_requests_and_sends_nothing_at_all(rhtui, shipped):
    # a listener that only counts: the command must not even connect
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.3)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        r = rhtui("--host", host, "models", "create", "--dry-run")
        with pytest.raises(TimeoutError):
            listener.accept()
    assert r.exit_code == 0, r.output
    chunks = re.split(r"^# .*$", r.output, flags=re.M)
    bodies = [json.loads(c) for c in chunks if c.strip()]
    assert [b["model"] for b in bodies] == STUDENTS
    for b in bodies:
        assert b == _json(wire_request(b["model"], shipped[b["model"]]))
    assert f"POST http://{host}/api/create" in r.output and "nothing sent" in r.output


def test_dry_run_against_the_simulator_records_no_request(sim, rhtui):
    r = rhtui("--host", sim.url, "models", "create", "--dry-run", "rh-beta")
    assert r.exit_code == 0 and '"model": "rh-beta"' in r.output
    assert sim.requests() == []


def test_a_bad_modelfile_stops_everything_before_anything_is_sent(sim, rhtui, tmp_path):
    folder = write_modelfiles(tmp_path / "mf", {
        "rh-alpha": "FROM nous-hermes:7b\nPARAMETER temperature 0.5\n",
        "rh-beta": "FROM mistral:7b\n# the role\nSYSTEM hi\nPARAMETER temperature hot\n",
    })
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "create")
    assert r.exit_code == 1
    assert "rh-beta.Modelfile:4: PARAMETER temperature expects a number, got 'hot'" in r.output
    assert "nothing was sent to Ollama" in r.output
    assert sim.requests() == []


def test_a_base_that_is_not_pulled_gives_the_ollama_pull_command(sim, rhtui, tmp_path):
    folder = write_modelfiles(tmp_path / "mf", {"rh-new": "FROM phi3:mini\nSYSTEM hi\n"})
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "create")
    assert r.exit_code == 1
    assert "rh-new: failed" in r.output and "ollama pull phi3:mini" in r.output


def test_an_unknown_student_name_exits_2(sim, rhtui):
    r = rhtui("--host", sim.url, "models", "create", "rh-omega")
    assert r.exit_code == 2 and "not a student: rh-omega" in r.output and "rh-alpha" in r.output


def test_the_server_down_names_the_host(rhtui):
    r = rhtui("--host", "127.0.0.1:9", "models", "create")
    assert r.exit_code == 1 and "not reachable at http://127.0.0.1:9" in r.output


# -- verify -----------------------------------------------------------------------------------


def test_verify_reports_the_scenario_students_as_drifted_until_created(sim, rhtui):
    r = rhtui("--host", sim.url, "models", "verify")
    assert r.exit_code == 1
    assert "drifted" in r.output and "system prompt missing in Ollama" in r.output
    assert f"rhtui --host {sim.url} models create {' '.join(STUDENTS)}" in r.output


def test_verify_detects_a_drifted_parameter(sim, rhtui, shipped):
    assert rhtui("--host", sim.url, "models", "create").exit_code == 0
    changed = dict(to_create_request(shipped["rh-beta"]))
    changed["parameters"] = {**changed["parameters"], "temperature": 0.95}
    sim.call(sim.world.create_model, "rh-beta", **changed)
    r = rhtui("--host", sim.url, "models", "verify")
    assert r.exit_code == 1, r.output
    assert "parameter temperature is 0.95 in Ollama, 0.6 in the Modelfile" in r.output
    assert f"rhtui --host {sim.url} models create rh-beta" in r.output
    assert "rh-alpha" in r.output and r.output.count("drifted") == 1
    # and create puts it right
    r = rhtui("--host", sim.url, "models", "create")
    assert "rh-beta: updated" in r.output and "rh-alpha: unchanged" in r.output
    assert rhtui("--host", sim.url, "models", "verify").exit_code == 0


def test_verify_reports_a_missing_model_with_the_fix(sim, rhtui):
    assert rhtui("--host", sim.url, "models", "create").exit_code == 0
    sim.call(sim.world.delete_model, "rh-gamma")
    r = rhtui("--host", sim.url, "models", "verify")
    assert r.exit_code == 1 and "missing" in r.output
    assert re.search(r"models create rh-gamma\s*$", r.output, re.M), r.output


# -- list ---------------------------------------------------------------------------------------


def test_list_without_a_database_says_no_runs_yet_and_creates_nothing(sim, rhtui, tmp_path):
    data = tmp_path / "fresh"
    r = rhtui("--host", sim.url, "--data-dir", str(data), "models", "list")
    assert r.exit_code == 0, r.output
    for name in STUDENTS:
        assert name in r.output
    assert "llama3.1:8b" in r.output and "4.6 GB" in r.output  # zeta's 4,700 MB of weights
    assert "no runs yet" in r.output
    assert not data.exists()


def test_list_shows_loaded_models_and_the_learned_profile(sim, rhtui, tmp_path):
    from rhtui.engine.records import RunRecord
    from rhtui.engine.store import Store

    data = tmp_path / "d"

    async def seed():
        store = await Store.open(data / "rhtui.db")
        try:
            sid = await store.start_session("s", 1000.0)
            for i, (vram, secs) in enumerate([(3850.0, 28.0), (3844.0, 29.0)]):
                await store.record_run(RunRecord(
                    session_id=sid, cycle=i + 1, student="rh-alpha", model="rh-alpha", status="ok",
                    started_at=1000.0 + i * 60, ended_at=1000.0 + i * 60 + secs, total_s=secs, wall_s=secs,
                    eval_s=secs - 2, tokens=2800, tok_per_s=2800 / (secs - 2), vram_mb=vram,
                ))
        finally:
            await store.close()

    asyncio.run(seed())
    sim.call(sim.world.load, "rh-zeta")
    r = rhtui("--host", sim.url, "--data-dir", str(data), "models", "list")
    assert r.exit_code == 0, r.output
    alpha = next(line for line in r.output.splitlines() if "rh-alpha" in line)
    assert re.search(r"\b2\b.*3,847", alpha), alpha
    zeta = next(line for line in r.output.splitlines() if "rh-zeta" in line)
    assert re.search(r"5,012 MB", zeta), zeta  # loaded: its VRAM from /api/ps
    assert " no " in next(line for line in r.output.splitlines() if "rh-beta" in line)


def test_list_with_ollama_down_still_lists_and_exits_1(rhtui):
    r = rhtui("--host", "127.0.0.1:9", "models", "list")
    assert r.exit_code == 1 and "rh-zeta" in r.output and "not reachable at http://127.0.0.1:9" in r.output


# -- rm -----------------------------------------------------------------------------------------


def test_rm_asks_first(sim, rhtui):
    r = rhtui("--host", sim.url, "models", "rm", "rh-zeta", input="n\n")
    assert r.exit_code == 1 and "nothing deleted" in r.output
    assert sim.call(sim.world.find_model, "rh-zeta") is not None
    r = rhtui("--host", sim.url, "models", "rm", "rh-zeta", input="y\n")
    assert r.exit_code == 0 and "rh-zeta: deleted" in r.output
    assert sim.call(sim.world.find_model, "rh-zeta") is None


def test_rm_yes_and_a_missing_model(sim, rhtui):
    r = rhtui("--host", sim.url, "models", "rm", "--yes", "rh-alpha", "rh-beta")
    assert r.exit_code == 0 and "rh-alpha: deleted" in r.output and "rh-beta: deleted" in r.output
    r = rhtui("--host", sim.url, "models", "rm", "--yes", "rh-alpha")
    assert r.exit_code == 0 and "was not in Ollama" in r.output


def test_rm_refuses_a_model_that_is_not_a_student(sim, rhtui):
    r = rhtui("--host", sim.url, "models", "rm", "--yes", "mistral:7b")
    assert r.exit_code == 2 and "not a student" in r.output
    assert sim.call(sim.world.find_model, "mistral:7b") is not None


# -- the odd cases ------------------------------------------------------------------------------


def test_a_student_brought_without_a_modelfile_is_only_checked_for_presence(sim, rhtui, tmp_path):
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text('[[students]]\nname = "mine"\nmodel = "mistral:7b"\n\n'
                   '[[students]]\nname = "gone"\nmodel = "phi3:mini"\n')
    r = rhtui("--host", sim.url, "--config", str(cfg), "models", "verify")
    assert r.exit_code == 1
    assert re.search(r"mine\s+present\s+mistral:7b \(no Modelfile", r.output), r.output
    assert re.search(r"gone\s+missing", r.output) and "ollama pull phi3:mini" in r.output
    r = rhtui("--host", sim.url, "--config", str(cfg), "models", "create", "mine")
    assert r.exit_code == 0 and "nothing to create" in r.output and sim.requests() == []


def test_what_ollama_reports_is_printed_as_text_never_as_markup(sim, rhtui, shipped):
    assert rhtui("--host", sim.url, "models", "create", "rh-alpha").exit_code == 0
    evil = dict(to_create_request(shipped["rh-alpha"]))
    evil["system"] = "[bold red]obey[/bold red] \x1b]0;pwned\x07 [link=http://x]y[/link]"
    sim.call(sim.world.create_model, "rh-alpha", **evil)
    r = rhtui("--host", sim.url, "models", "verify")
    assert r.exit_code == 1
    assert "[bold red]obey[/bold red]" in r.output  # shown literally
    assert "\x1b" not in r.output and "\x07" not in r.output


def test_the_shipped_modelfiles_are_found_from_an_installed_copy_of_the_package(tmp_path):
    """After a non-editable install the package is a plain directory in site-packages: the
    Modelfiles must be found from there (not through the repository), from any directory."""
    import shutil
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    import rhtui

    repo = Path(rhtui.__file__).resolve().parent.parent
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    assert "modelfiles/*" in pyproject["tool"]["setuptools"]["package-data"]["rhtui"]
    site = tmp_path / "site-packages"
    shutil.copytree(Path(rhtui.__file__).parent, site / "rhtui", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import rhtui, json; from rhtui.engine.modelfile import discover_students, shipped_modelfiles_dir;"
        "print(json.dumps([rhtui.__file__, str(shipped_modelfiles_dir()), [s.name for s in discover_students()]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.returncode == 0, out.stderr
    init, folder, names = json.loads(out.stdout)
    assert init.startswith(str(site)) and folder == str(site / "rhtui" / "modelfiles")
    assert names == STUDENTS


def test_a_modelfiles_folder_that_does_not_exist_is_an_error_not_silence(sim, rhtui, tmp_path):
    r = rhtui("--host", sim.url, "--modelfiles", str(tmp_path / "nope"), "models", "create")
    assert r.exit_code == 2 and "nope: is not a folder" in r.output and sim.requests() == []
    (tmp_path / "empty").mkdir()
    r = rhtui("--host", sim.url, "--modelfiles", str(tmp_path / "empty"), "models", "verify")
    assert r.exit_code == 2 and "contains no *.Modelfile files" in r.output
    r = rhtui("--host", sim.url, "--modelfiles", str(tmp_path / "nope"), "doctor")
    assert r.exit_code == 1 and "FAIL  Modelfiles" in r.output
