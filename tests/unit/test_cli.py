"""The `rhtui` command's handling of bad input (a message a person can act on, the right exit code)
and its global options, which work before or after the subcommand."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app, demo_db_path
from rhtui.engine.config import Settings
from rhtui.engine.records import RunRecord
from rhtui.engine.store import Store

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


# -- the global options after the subcommand -------------------------------------------------

def make_db(path: Path, runs: dict[str, str]) -> Path:
    """A database with one session per name, each with one ok run of the given student."""

    async def fill() -> None:
        store = await Store.open(path)
        try:
            for i, (session, student) in enumerate(runs.items()):
                sid = await store.start_session(session, 1000.0 + i * 100)
                await store.start_cycle(sid, 1, 1000.0 + i * 100)
                await store.record_run(RunRecord(
                    sid, 1, student, student, "ok", 1000.0 + i * 100, 1030.0 + i * 100,
                    total_s=30.0, eval_s=27.0, tokens=2700, tok_per_s=100.0, vram_mb=4000.0,
                    proposal=f"a proposal by {student}",
                ))
                await store.end_session(sid, 1050.0 + i * 100, "finished")
        finally:
            await store.close()

    path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(fill())
    return path


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    make_db(Settings(data_dir=d).db_path, {"s1": "rh-alpha", "s2": "rh-beta"})
    make_db(demo_db_path(Settings(data_dir=d)), {"demo1": "rh-gamma"})
    return d


def students_in_report(output: str) -> list[str]:
    return [s["student"] for s in json.loads(output)["students"]]


@pytest.mark.parametrize("where", ["before", "after"])
def test_report_takes_data_dir_before_or_after_the_command(data_dir, where):
    opts = ["--data-dir", str(data_dir)]
    args = opts + ["report", "--format", "json"] if where == "before" else ["report", "--format", "json"] + opts
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert students_in_report(r.output) == ["rh-alpha", "rh-beta"]


def test_the_subcommands_value_wins_over_the_global_one(data_dir, tmp_path):
    r = runner.invoke(app, ["--data-dir", str(tmp_path / "elsewhere"), "report", "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["--data-dir", str(data_dir), "report", "--data-dir", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and str(tmp_path / "nowhere") in r.output


def test_global_session_and_demo_reach_report_and_export(data_dir):
    r = runner.invoke(app, ["--session", "s2", "report", "--format", "json", "--data-dir", str(data_dir)])
    assert students_in_report(r.output) == ["rh-beta"]
    r = runner.invoke(app, ["--session", "s2", "report", "--session", "s1", "--format", "json",
                            "--data-dir", str(data_dir)])
    assert students_in_report(r.output) == ["rh-alpha"]  # the subcommand's --session wins
    r = runner.invoke(app, ["--demo", "report", "--format", "json", "--data-dir", str(data_dir)])
    assert students_in_report(r.output) == ["rh-gamma"]
    r = runner.invoke(app, ["--demo", "export", "runs", "--data-dir", str(data_dir)])
    assert r.exit_code == 0 and "rh-gamma" in r.output and "rh-alpha" not in r.output


def test_export_takes_data_dir_after_the_command(data_dir):
    r = runner.invoke(app, ["export", "runs", "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("session_id,cycle,student") and len(lines) == 3
    r = runner.invoke(app, ["export", "proposals", "--session", "s1", "--data-dir", str(data_dir)])
    assert [json.loads(x)["student"] for x in r.output.splitlines()] == ["rh-alpha"]


def test_config_after_the_command(data_dir, tmp_path):
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text(f'data_dir = "{data_dir}"\n')
    r = runner.invoke(app, ["report", "--format", "json", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert students_in_report(r.output) == ["rh-alpha", "rh-beta"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[budget]\nemergency_fraction = 2\n")
    r = runner.invoke(app, ["export", "runs", "--config", str(bad)])
    assert r.exit_code == 2 and "budget.emergency_fraction" in r.output and str(bad) in r.output


def test_watch_takes_data_dir_after_the_command(tmp_path):
    r = runner.invoke(app, ["watch", "--data-dir", str(tmp_path / "w")])
    assert r.exit_code == 1
    assert f"no database at {tmp_path / 'w' / 'rhtui.db'}" in r.output


def test_doctor_takes_data_dir_and_host_after_the_command(tmp_path):
    r = runner.invoke(app, ["doctor", "--data-dir", str(tmp_path / "dd"), "--host", "127.0.0.1:9"])
    assert r.exit_code == 1  # Ollama is not there
    out = " ".join(r.output.split())
    assert "not reachable at http://127.0.0.1:9" in out
    assert "data_dir" in out and "(command-line flag --data-dir)" in out


def test_models_create_takes_modelfiles_after_the_command(tmp_path):
    folder = tmp_path / "mf"
    folder.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "rhtui" / "modelfiles" / "rh-gamma.Modelfile"
    (folder / "my-student.Modelfile").write_text(shipped.read_text())
    r = runner.invoke(app, ["models", "create", "--dry-run", "--modelfiles", str(folder), "--host", "127.0.0.1:9"])
    assert r.exit_code == 0, r.output
    assert "my-student: POST http://127.0.0.1:9/api/create" in r.output
    assert "rh-alpha" not in r.output.split("{")[0]  # only the folder's student
    r = runner.invoke(app, ["models", "list", "--modelfiles", str(folder), "--host", "127.0.0.1:9",
                            "--data-dir", str(tmp_path / "d")])
    assert "my-student" in r.output


HONOURED = {
    ("report",): ["--data-dir", "--config", "--session", "--demo"],
    ("export",): ["--data-dir", "--config", "--session", "--demo"],
    ("watch",): ["--data-dir", "--config", "--session", "--demo"],
    ("doctor",): ["--data-dir", "--config", "--host", "--modelfiles"],
    ("models", "create"): ["--config", "--host", "--modelfiles"],
    ("models", "verify"): ["--config", "--host", "--modelfiles"],
    ("models", "list"): ["--config", "--host", "--modelfiles", "--data-dir"],
    ("models", "rm"): ["--config", "--host", "--modelfiles"],
}


@pytest.mark.parametrize("command", list(HONOURED), ids=" ".join)
def test_each_subcommands_help_lists_the_global_options_it_honours(command):
    r = runner.invoke(app, [*command, "--help"])
    assert r.exit_code == 0, r.output
    for opt in HONOURED[command]:
        assert f"{opt} " in r.output, f"{' '.join(command)} --help lacks {opt}"


def test_the_demo_takes_modelfiles_it_cannot_simulate_without_crashing(tmp_path):
    """RENDERER/PARSER/REQUIRES and FROM a local file only matter to a real Ollama: the demo keeps going."""
    from rhtui.commands.cli import _create_students_in
    from rhtui.engine.clock import ScaledClock
    from rhtui.sim.scenario import load_scenario
    from rhtui.sim.world import SimWorld

    shipped = Path(__file__).resolve().parents[2] / "rhtui" / "modelfiles"
    for f in shipped.glob("*.Modelfile"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    with (tmp_path / "rh-alpha.Modelfile").open("a", encoding="utf-8") as fh:
        fh.write("RENDERER qwen3\nPARSER qwen3\nREQUIRES 0.12.0\n")
    (tmp_path / "w.gguf").write_bytes(b"GGUF")
    (tmp_path / "rh-beta.Modelfile").write_text("FROM ./w.gguf\nSYSTEM local weights\n", encoding="utf-8")
    from rhtui.engine.modelfile import resolve_students

    settings = Settings(modelfiles_dir=tmp_path)
    settings = settings.model_copy(update={"students": resolve_students(settings)})  # as the commands do
    world = SimWorld(load_scenario("rtx4070s"), ScaledClock(1.0), seed=0)
    _create_students_in(world, settings)
    from rhtui.engine.modelfile import parse_modelfile

    alpha = next(s for s in settings.students if s.name == "rh-alpha")
    wanted = parse_modelfile((tmp_path / "rh-alpha.Modelfile").read_text(encoding="utf-8"), tmp_path / "x").system
    assert wanted and world.registry.get(alpha.tag).system == wanted  # the rest of its Modelfile still applies
