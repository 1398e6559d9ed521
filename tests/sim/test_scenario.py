"""Scenario files: bundled by name, by path, `extends`, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhtui.sim.scenario import ScenarioError, list_scenarios, load_scenario

BASE = """
[gpu]
name = "Test GPU"
total_mb = 8000
bandwidth_gbps = 400

[[students]]
name = "s1"
base = "llama2:7b"
weights_mb = 3000
resident_mb = 3200
tokens_mean = 500
"""


def test_bundled_by_name_has_every_table(scenario) -> None:
    assert scenario.name == "rtx4070s"
    assert scenario.gpu.name == "NVIDIA GeForce RTX 4070 SUPER"
    assert scenario.gpu.total_mb == 12282
    assert scenario.gpu.concurrent_gain == pytest.approx(1.10)
    assert scenario.cpu.offload_bandwidth_gbps == 60
    assert scenario.pcie.gbps == 25
    assert scenario.disk.read_gbps == 3.0 and scenario.disk.unload_s == 0.3
    assert scenario.ollama.max_loaded_models == 3 and scenario.ollama.keep_alive_s == 300
    assert scenario.budget.reserve_mb == 1024 and scenario.budget.emergency_fraction == 0.95
    assert [s.name for s in scenario.students] == [
        "rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"
    ]
    alpha = scenario.student("rh-alpha:latest")
    assert (alpha.base, alpha.weights_mb, alpha.resident_mb, alpha.prompt_tokens) == ("nous-hermes:7b", 3560, 3847, 420)
    assert scenario.external == () and scenario.faults.http_500_rate == 0
    assert scenario.source.startswith("package:")


def test_list_scenarios_names_the_bundled_files() -> None:
    assert {"rtx4070s", "rtx4070s-hostile"} <= set(list_scenarios())


def test_hostile_extends_the_reference(hostile, scenario) -> None:
    assert hostile.name == "rtx4070s-hostile"
    assert hostile.gpu == scenario.gpu and hostile.students == scenario.students  # inherited
    assert [(e.at_s, e.mb, e.for_s) for e in hostile.external] == [
        (600, 3000, 300), (1800, 6500, 120), (3000, 11000, 240)]
    f = hostile.faults
    assert (f.http_500_rate, f.stall_rate, f.disconnect_rate, f.malformed_chunk_rate, f.oom_error_rate) == (
        0.02, 0.01, 0.01, 0.005, 0.01)
    assert [(w.at_s, w.for_s) for w in f.server_down] == [(2400, 90)]


def test_load_by_path_and_relative_extends(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(BASE + '\n[faults]\nserver_down = [{ at_s = 1, for_s = 2 }]\n')
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "child.toml").write_text(
        'extends = "../base.toml"\n[gpu]\ntotal_mb = 16000\n[faults]\nhttp_500_rate = 0.5\n'
    )
    child = load_scenario(sub / "child.toml")
    assert child.name == "child"
    assert child.gpu.total_mb == 16000 and child.gpu.name == "Test GPU"  # tables deep-merge
    assert child.faults.http_500_rate == 0.5 and len(child.faults.server_down) == 1
    assert [s.name for s in child.students] == ["s1"]  # inherited when the child has none
    assert load_scenario(str(sub / "child.toml")).gpu.total_mb == 16000


def test_child_arrays_replace_the_parents(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(BASE + "\n[[external]]\nat_s = 1\nmb = 10\nfor_s = 1\n")
    (tmp_path / "child.toml").write_text(
        'extends = "base.toml"\n[[students]]\nname = "s2"\nbase = "mistral:7b"\nweights_mb = 4000\n'
        "resident_mb = 4300\ntokens_mean = 800\n[[external]]\nat_s = 5\nmb = 20\nfor_s = 2\n"
    )
    child = load_scenario(tmp_path / "child.toml")
    assert [s.name for s in child.students] == ["s2"]
    assert [e.at_s for e in child.external] == [5]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (BASE.replace("total_mb = 8000", "total_mb = -1"), "gpu.total_mb"),
        (BASE + "\n[gpu_typo]\nx = 1\n", "gpu_typo: unknown key"),
        (BASE.replace("bandwidth_gbps = 400", "bandwidth_gbps = 400\nbandwith = 3"), "gpu.bandwith: unknown key"),
        (BASE.replace("resident_mb = 3200", "resident_mb = 100"), "resident_mb must be >= weights_mb"),
        (BASE.split("[[students]]")[0], "students"),
        ("[gpu\nname=", "invalid TOML"),
        (BASE + '\n[[students]]\nname = "s1"\nbase = "x"\nweights_mb = 1\nresident_mb = 2\ntokens_mean = 3\n',
         "repeated: s1"),
        # [budget] is the engine's BudgetPolicy, validated by its rules
        (BASE + "\n[budget]\nmax_fraction = 0.95\nemergency_fraction = 0.90\n", "must be above max_fraction"),
        (BASE + "\n[budget]\nreserve = 512\n", "budget.reserve: unknown key"),
    ],
)
def test_bad_scenario_names_file_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_missing_files_and_cycles(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no bundled scenario named 'nope'.*rtx4070s"):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "absent.toml")
    (tmp_path / "a.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(ScenarioError, match="missing.toml.*file not found"):
        load_scenario(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text('extends = "c.toml"\n')
    (tmp_path / "c.toml").write_text('extends = "b.toml"\n')
    with pytest.raises(ScenarioError, match="extends itself"):
        load_scenario(tmp_path / "b.toml")


def test_bundled_scenarios_load_from_an_installed_zip(tmp_path: Path) -> None:
    """No path tricks: the loader reads package data through importlib.resources, so it works
    from a wheel install (and even a zipped package), not only from a source checkout."""
    import subprocess
    import sys
    import zipfile

    import rhtui

    pkg = Path(rhtui.__file__).parent
    zpath = tmp_path / "rhtui.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in pkg.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and (f.suffix in (".py", ".toml")):
                z.write(f, Path("rhtui") / f.relative_to(pkg))
    code = (
        "import rhtui.sim.scenario as s; assert 'zip' in s.__file__, s.__file__;"
        "h = s.load_scenario('rtx4070s-hostile'); assert len(h.students) == 6 and h.external;"
        "print(sorted(s.list_scenarios()))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env={"PYTHONPATH": str(zpath), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "rtx4070s-hostile" in r.stdout
