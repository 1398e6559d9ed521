"""The Modelfile parser: Ollama's syntax, every malformed case named by file and line, round trips."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rhtui.engine.modelfile import (
    PARAMETERS,
    Modelfile,
    ModelfileError,
    compare_with_show,
    discover_students,
    full_tag,
    iter_commands,
    parse_modelfile,
    parse_show_parameters,
    quote_value,
    render_modelfile,
    resolve_students,
    shipped_modelfiles_dir,
    to_create_request,
    wire_request,
)
from rhtui.engine.config import Settings

NAME = "rh-beta.Modelfile"


def bad(text: str) -> ModelfileError:
    with pytest.raises(ModelfileError) as info:
        parse_modelfile(text, NAME)
    return info.value


# -- the syntax ------------------------------------------------------------------------------


def test_a_full_modelfile_parses():
    mf = parse_modelfile(
        '# a comment\n'
        'from mistral:7b\n'
        '\n'
        '  PARAMETER temperature 0.7\n'
        'parameter num_ctx 4096\n'
        'PARAMETER stop "[INST]"\n'
        'PARAMETER stop [/INST]\n'
        'PARAMETER use_mmap false\n'
        'SYSTEM """You are\n'
        '  a "student".\n'
        '"""\n'
        'TEMPLATE {{ .System }} {{ .Prompt }}\n'
        'LICENSE "MIT"\n'
        'MESSAGE user What is RH?\n'
        'MESSAGE assistant """A conjecture."""\n',
        NAME,
    )
    assert mf.from_ == "mistral:7b"
    assert mf.parameters == {"temperature": 0.7, "num_ctx": 4096, "stop": ["[INST]", "[/INST]"], "use_mmap": False}
    assert isinstance(mf.parameters["num_ctx"], int) and isinstance(mf.parameters["temperature"], float)
    assert mf.system == 'You are\n  a "student".\n'
    assert mf.template == "{{ .System }} {{ .Prompt }}"
    assert mf.license == ["MIT"]
    assert mf.messages == [{"role": "user", "content": "What is RH?"}, {"role": "assistant", "content": "A conjecture."}]
    assert mf.lines["system"] == 9 and mf.lines["parameter num_ctx"] == 5


def test_quoting_follows_ollamas_parser():
    # a value ends at the first line end where its quotes are closed
    assert parse_modelfile('FROM x\nSYSTEM "one\ntwo"\n').system == "one\ntwo"
    assert parse_modelfile('FROM x\nSYSTEM "a "quoted" word"\n').system == 'a "quoted" word'
    assert parse_modelfile('FROM x\nSYSTEM """"hi" she said"""\n').system == '"hi" she said'
    assert parse_modelfile('FROM x\nSYSTEM  padded value  \n').system == "padded value"
    assert parse_modelfile('FROM x\nSYSTEM ""\n').system == ""
    assert parse_modelfile('FROM x\r\nSYSTEM """a\r\nb"""\r\n').system == "a\r\nb"
    assert parse_modelfile('\ufeffFROM x\n').from_ == "x"
    # '#' starts a comment only where an instruction could start
    assert parse_modelfile("FROM x\nSYSTEM use # freely\n").system == "use # freely"


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("FROM x\nPARAMETER temperature 0.5\nFORM y\n", 3, ["unknown instruction 'FORM'", "did you mean FROM?"]),
        ("FROM x\n\nRUN echo hi\n", 3, ["unknown instruction 'RUN'", "FROM, PARAMETER, SYSTEM"]),
        ("FROM x\nSYSTEM: hi\n", 2, ["expected a space after SYSTEM"]),
        ("# only a comment\nPARAMETER temperature 0.5\n", 1, ["no FROM instruction", "FROM mistral:7b"]),
        ("FROM x\n# c\n\n\n\n\n\n\n\n\n\nPARAMETER temperature hot\n", 12, ["PARAMETER temperature expects a number, got 'hot'"]),
        ("FROM x\nPARAMETER num_ctx 4096.5\n", 2, ["PARAMETER num_ctx expects a whole number, got '4096.5'"]),
        ("FROM x\nPARAMETER top_p 1.5\n", 2, ["PARAMETER top_p expects a number from 0 to 1, got '1.5'"]),
        ("FROM x\nPARAMETER temperature nan\n", 2, ["expects a number"]),
        ("FROM x\nPARAMETER use_mmap maybe\n", 2, ["PARAMETER use_mmap expects true or false"]),
        ("FROM x\n\nPARAMETER tempurature 0.5\n", 3, ["PARAMETER tempurature is not an Ollama parameter", "did you mean temperature?"]),
        ("FROM x\nPARAMETER temperature\n", 2, ["PARAMETER temperature needs a value"]),
        ("FROM x\nPARAMETER temperature 0.5\nPARAMETER temperature 0.6\n", 3, ["set twice (first on line 2)"]),
        ("FROM x\nSYSTEM a\nSYSTEM b\n", 3, ["SYSTEM is given twice (first on line 2)"]),
        ("FROM x\nSYSTEM\n", 2, ["SYSTEM needs a value"]),
        ("FROM x\nMESSAGE robot hi\n", 2, ["MESSAGE role must be system, user or assistant"]),
        ('FROM x\nPARAMETER stop ""\n', 2, ["PARAMETER stop expects a non-empty string"]),
        ('FROM x\nSYSTEM """You are\na student.\nPARAMETER temperature 0.5\n', 2, ['SYSTEM opens a """ block here that is never closed', 'ending with """']),
        ('FROM x\nTEMPLATE "{{ .Prompt }}\n', 2, ['TEMPLATE opens a " block here that is never closed']),
        ('FROM x\nSYSTEM "bell \x07 here"\n', 2, ["control character (U+0007)"]),
    ],
)
def test_malformed_modelfiles_name_the_file_and_line(text, line, words):
    e = bad(text)
    assert e.line == line
    assert str(e).startswith(f"{NAME}:{line}: "), str(e)
    for w in words:
        assert w in str(e), str(e)


def test_the_message_format_of_the_issue():
    e = bad("FROM mistral:7b\n" + "\n" * 10 + "PARAMETER temperature hot\n")
    assert str(e) == "rh-beta.Modelfile:12: PARAMETER temperature expects a number, got 'hot'"


def test_every_known_parameter_accepts_a_value_of_its_type():
    sample = {"int": "2", "float": "0.5", "bool": "true", "strings": "END"}
    text = "FROM x\n" + "".join(f"PARAMETER {n} {sample[k]}\n" for n, k in PARAMETERS.items())
    mf = parse_modelfile(text)
    assert set(mf.parameters) == set(PARAMETERS)


@pytest.mark.parametrize("name", ["num_ctx", "num_predict", "temperature", "top_k", "top_p", "min_p",
                                  "repeat_penalty", "repeat_last_n", "seed", "stop", "mirostat",
                                  "mirostat_eta", "mirostat_tau", "num_gpu", "num_thread", "num_batch",
                                  "typical_p", "presence_penalty", "frequency_penalty", "tfs_z"])
def test_ollamas_documented_parameters_are_known(name):
    assert name in PARAMETERS


# -- round trips -----------------------------------------------------------------------------

# Any printable text, with the characters that matter to the quoting rules made frequent.
_piece = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8) | st.sampled_from(
    ['"', '"""', "\n", "\r\n", "\r", "\t", " ", "#", "PARAMETER x 1"]
)
_text = st.lists(_piece, max_size=6).map("".join)


def _value(kind: str):
    if kind == "int":
        return st.integers(min_value=0, max_value=2**31)
    if kind == "float":
        return st.floats(min_value=0, max_value=1, allow_nan=False, allow_infinity=False)
    if kind == "bool":
        return st.booleans()
    return st.lists(_text.filter(bool), min_size=1, max_size=3)


@st.composite
def modelfiles(draw) -> Modelfile:
    names = draw(st.lists(st.sampled_from(sorted(PARAMETERS)), unique=True, max_size=8))
    params = {n: draw(_value(PARAMETERS[n])) for n in names}
    return Modelfile(
        from_=draw(_text.filter(lambda s: s.strip())),
        system=draw(st.none() | _text),
        template=draw(st.none() | _text),
        license=draw(st.lists(_text, max_size=2)),
        parameters=params,
        messages=draw(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                                      "content": _text}), max_size=3)),
        adapter=draw(st.none() | _text.filter(lambda s: s.strip())),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modelfiles())
def test_parse_render_parse_is_identical(mf):
    try:
        text = render_modelfile(mf)
    except ModelfileError:
        # only a value no Modelfile quoting can hold (e.g. a control character, or `"""` then
        # a newline) may refuse to render; it must never render into something else
        assume(False)
    again = parse_modelfile(text, "gen.Modelfile")
    assert again == mf
    assert parse_modelfile(render_modelfile(again)) == again


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\r\t\"#"), max_size=80))
def test_every_value_the_parser_reads_renders_back(raw):
    """Whatever the parser accepts as a SYSTEM value can be written back and read identically."""
    try:
        mf = parse_modelfile("FROM x\nSYSTEM " + raw + "\n")
    except ModelfileError:
        assume(False)
    assert parse_modelfile(render_modelfile(mf)) == mf


def test_values_quoting_cannot_hold_are_refused_not_mangled():
    with pytest.raises(ModelfileError):
        quote_value('a"""\nb')
    with pytest.raises(ModelfileError):
        render_modelfile(Modelfile(from_="x", parameters={"temperature": float("nan")}))
    with pytest.raises(ModelfileError):
        render_modelfile(Modelfile(from_="x", parameters={"not_a_param": 1}))


def test_commands_of_an_ollama_show_modelfile():
    text = (
        '# Modelfile generated by "ollama show"\n# FROM rh-alpha:latest\n\n'
        "FROM /usr/share/ollama/.ollama/models/blobs/sha256-abc\n"
        'TEMPLATE """{{ .Prompt }}"""\nSYSTEM """be brief"""\nPARAMETER stop "[INST]"\nRENDERER x\n'
    )
    cmds = iter_commands(text, None, ("from", "template", "system", "parameter", "renderer"))
    assert [c.name for c in cmds] == ["from", "template", "system", "parameter", "renderer"]


# -- the shipped students ----------------------------------------------------------------------

SHIPPED = ["rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"]


def test_the_six_shipped_students_are_found_in_greek_order():
    specs = discover_students(None)
    assert [s.name for s in specs] == SHIPPED
    assert all(s.modelfile is not None and s.modelfile.parent == shipped_modelfiles_dir() for s in specs)


def test_default_settings_get_the_shipped_modelfiles():
    students = resolve_students(Settings())
    assert [s.name for s in students] == SHIPPED
    assert all(s.modelfile is not None for s in students)


def test_a_modelfiles_dir_without_configured_students_defines_them(tmp_path):
    (tmp_path / "mine.Modelfile").write_text("FROM llama3.1:8b\n")
    (tmp_path / "rh-beta.Modelfile").write_text("FROM mistral:7b\n")
    students = resolve_students(Settings(modelfiles_dir=tmp_path))
    assert [s.name for s in students] == ["rh-beta", "mine"]


@pytest.fixture(scope="module")
def shipped() -> dict[str, Modelfile]:
    return {s.name: parse_modelfile(s.modelfile.read_text(encoding="utf-8"), s.modelfile) for s in discover_students()}


def test_alpha_is_the_analytical_specialist(shipped):
    a = shipped["rh-alpha"]
    assert a.from_ == "nous-hermes:7b" and a.parameters["temperature"] == 0.5
    assert "analytical specialist" in a.system and "gap" in a.system


def test_the_bases_match_the_reference_scenario(shipped):
    import tomllib

    from rhtui.engine.modelfile import shipped_modelfiles_dir as _d

    scenario = tomllib.loads((_d().parent / "data" / "scenarios" / "rtx4070s.toml").read_text())
    assert {s["name"]: s["base"] for s in scenario["students"]} == {n: mf.from_ for n, mf in shipped.items()}


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_modelfile_round_trips_and_is_complete(shipped, name):
    mf = shipped[name]
    assert parse_modelfile(render_modelfile(mf), "x") == mf
    for heading in ("TITLE", "IDEA", "METHOD", "EXPECTED EVIDENCE", "RISKS"):
        assert heading + ":" in mf.system
    assert len(mf.system) > 1200, "a real role prompt"
    p = mf.parameters
    for key in ("num_ctx", "num_predict", "temperature", "top_p", "repeat_penalty", "stop"):
        assert key in p, key
    assert "=== END OF PROPOSAL ===" in p["stop"] and "=== END OF PROPOSAL ===" in mf.system


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_student_fits_its_context_and_the_timeout(shipped, name):
    """num_ctx holds system prompt + task + proposal, and the longest proposal (num_predict tokens)
    plus the load fits the 60 s timeout at the reference card's decode rate for that model."""
    import tomllib

    mf = shipped[name]
    scenario = tomllib.loads((shipped_modelfiles_dir().parent / "data" / "scenarios" / "rtx4070s.toml").read_text())
    st_ = next(s for s in scenario["students"] if s["name"] == name)
    gpu, disk = scenario["gpu"], scenario["disk"]
    system_tokens = math.ceil(len(mf.system) / 3.5)  # pessimistic: maths and Unicode tokenise densely
    assert system_tokens + st_["prompt_tokens"] + 64 + mf.num_predict <= mf.num_ctx
    rate = gpu["bandwidth_gbps"] * 1e9 * gpu["decode_efficiency"] / (st_["weights_mb"] * 1024 * 1024)
    load = st_["weights_mb"] / 1024 / disk["read_gbps"] + disk["load_init_s"]
    worst = load + mf.num_predict / rate + 2.0  # + prompt evaluation
    assert worst <= 0.9 * scenario["budget"]["timeout_s"], (name, worst)
    assert mf.num_predict <= 4000


def test_roles_differ(shipped):
    firsts = {n: mf.system.split(".")[0] for n, mf in shipped.items()}
    assert len(set(firsts.values())) == 6
    temps = {n: mf.parameters["temperature"] for n, mf in shipped.items()}
    assert temps["rh-zeta"] < temps["rh-epsilon"] and temps["rh-gamma"] < temps["rh-delta"]


# -- the create request and the comparison with /api/show -------------------------------------------


def test_to_create_request_has_only_what_is_set():
    mf = parse_modelfile("FROM mistral:7b\nPARAMETER stop a\nPARAMETER stop b\nPARAMETER num_ctx 4096\nSYSTEM hi\n")
    assert to_create_request(mf) == {"from_": "mistral:7b", "system": "hi", "parameters": {"stop": ["a", "b"], "num_ctx": 4096}}
    assert to_create_request(parse_modelfile("FROM x\n")) == {"from_": "x"}
    body = wire_request("rh-x", mf)
    assert body["from"] == "mistral:7b" and body["model"] == "rh-x" and body["stream"] is True and "from_" not in body


def test_an_adapter_cannot_be_sent_and_says_what_to_do():
    mf = parse_modelfile("FROM x\nADAPTER ./lora.gguf\n", "a.Modelfile")
    with pytest.raises(ModelfileError, match=r"a\.Modelfile:2: ADAPTER .*`ollama create"):
        to_create_request(mf)


SHOW_MODELFILE = '''# Modelfile generated by "ollama show"
# To build a new Modelfile based on this, replace FROM with:
# FROM rh-beta:latest

FROM /usr/share/ollama/.ollama/models/blobs/sha256-2609048d349e
TEMPLATE """[INST] {{ .Prompt }}[/INST]"""
SYSTEM """Be rigorous.
Cite carefully."""
PARAMETER num_ctx 6144
PARAMETER stop [INST]
PARAMETER stop [/INST]
PARAMETER temperature 0.6
'''


def test_a_matching_model_has_no_drift():
    mf = parse_modelfile('FROM mistral:7b\nPARAMETER temperature 0.6\nPARAMETER num_ctx 6144\n'
                         'PARAMETER stop "[INST]"\nPARAMETER stop "[/INST]"\nSYSTEM """Be rigorous.\nCite carefully."""\n')
    assert compare_with_show(mf, SHOW_MODELFILE) == []
    params = 'num_ctx                        6144\nstop                           "[/INST]"\nstop                           "[INST]"\ntemperature                    0.6000000238418579'
    assert parse_show_parameters(params) == {"num_ctx": 6144, "stop": ["[/INST]", "[INST]"], "temperature": 0.6000000238418579}
    assert compare_with_show(mf, SHOW_MODELFILE, params) == []


def test_drift_in_the_system_prompt_and_each_parameter_is_listed():
    mf = parse_modelfile('FROM mistral:7b\nPARAMETER temperature 0.9\nPARAMETER num_ctx 6144\nPARAMETER top_k 20\n'
                         'SYSTEM "Be bold."\n')
    drifts = {d.what: d for d in compare_with_show(mf, SHOW_MODELFILE)}
    assert set(drifts) == {"system", "parameter temperature", "parameter top_k"}
    assert drifts["parameter temperature"].describe() == "parameter temperature is 0.6 in Ollama, 0.9 in the Modelfile"
    assert "not set in Ollama" in drifts["parameter top_k"].describe()
    assert "system differs" in drifts["system"].describe()


def test_full_tag():
    assert full_tag("rh-alpha") == "rh-alpha:latest"
    assert full_tag("llama3.1:8b") == "llama3.1:8b"
    assert full_tag("localhost:5000/ns/m") == "localhost:5000/ns/m:latest"


def test_errors_render_without_a_path():
    e = ModelfileError(None, 3, "x")
    assert str(e) == "<Modelfile>:3: x"
    assert re.match(r"^<Modelfile>: y$", str(ModelfileError(None, None, "y")))
