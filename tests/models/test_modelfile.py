"""The Modelfile parser: Ollama's syntax, every malformed case named by file and line, round trips."""

from __future__ import annotations

import hashlib
import math
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rhtui.engine.config import Settings
from rhtui.engine.modelfile import (
    DEPRECATED_PARAMETERS,
    PARAMETERS,
    Drift,
    Modelfile,
    ModelfileError,
    compare_with_show,
    discover_students,
    float32_value,
    full_tag,
    iter_commands,
    load_modelfile,
    modelfile_warnings,
    parse_modelfile,
    parse_show_parameters,
    quote_value,
    read_show,
    render_modelfile,
    resolve_students,
    shipped_modelfiles_dir,
    to_create_request,
    wire_request,
)

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
    assert mf.messages == [
        {"role": "user", "content": "What is RH?"},
        {"role": "assistant", "content": "A conjecture."},
    ]
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
        ("FROM x\n# c\n\n\n\n\n\n\n\n\n\nPARAMETER temperature hot\n", 12,
         ["PARAMETER temperature expects a number, got 'hot'"]),
        ("FROM x\nPARAMETER num_ctx 4096.5\n", 2, ["PARAMETER num_ctx expects a whole number, got '4096.5'"]),
        ("FROM x\nPARAMETER temperature nan\n", 2, ["expects a finite number"]),
        ("FROM x\nPARAMETER temperature 1e39\n", 2, ["within float32's range"]),
        ("FROM x\nPARAMETER num_ctx 9223372036854775808\n", 2, ["fits in 64 bits"]),
        ("FROM x\nPARAMETER num_ctx 1_024\n", 2, ["expects a whole number"]),
        ("FROM x\nPARAMETER num_ctx \uff14\n", 2, ["expects a whole number"]),
        ("FROM x\nPARAMETER use_mmap maybe\n", 2, ["PARAMETER use_mmap expects true or false"]),
        ("FROM x\n\nPARAMETER tempurature 0.5\n", 3,
         ["PARAMETER tempurature is not an Ollama parameter", "did you mean temperature?"]),
        ("FROM x\nPARAMETER temperature\n", 2, ["PARAMETER temperature needs a value"]),
        ("FROM x\nPARAMETER temperature \n", 2, ["PARAMETER temperature expects a number, got ''"]),
        ("FROM x\nPARAMETER  temperature 0.5\n", 2, ["PARAMETER expects a parameter name after exactly one space"]),
        ("FROM x\nSYSTEM\n", 2, ["SYSTEM needs a value"]),
        ("FROM x\nSYSTEM", 2, ["SYSTEM needs a value"]),
        ("FROM x\nMESSAGE robot hi\n", 2, ["MESSAGE role must be system, user or assistant"]),
        ("FROM x\nMESSAGE User hi\n", 2, ["MESSAGE role must be system, user or assistant"]),
        # parameter names are case-sensitive in Ollama (api.FormatParams looks up JSON names)
        ("FROM x\nPARAMETER Temperature 0.5\n", 2, ["not an Ollama parameter", "case-sensitive: temperature"]),
        ("FROM x\nPARAMETER Mirostat 1\n", 2, ["not an Ollama parameter", "case-sensitive: mirostat"]),
        # no longer in api.Options / api.Runner
        ("FROM x\nPARAMETER numa true\n", 2, ["PARAMETER numa is not an Ollama parameter"]),
        ("FROM x\nPARAMETER tfs_z 1.0\n", 2, ["PARAMETER tfs_z is not an Ollama parameter"]),
        ("FROM x\nPARAMETER embedding_only true\n", 2, ["PARAMETER embedding_only is not an Ollama parameter"]),
        ("FROM x\nREQUIRES 0.14.x\n", 2, ["REQUIRES must be a valid semver (e.g. 0.14.0)"]),
        ("FROM x\nREQUIRES 1.2-beta\n", 2, ["REQUIRES must be a valid semver"]),
        ("FROM x\n\u00a0SYSTEM: hi\n", 2, ["expected a space after SYSTEM"]),
        ("FROM x\n{{ .Prompt }}\n", 2, ["unknown instruction '{{'"]),
        ('FROM x\nSYSTEM """You are\na student.\nPARAMETER temperature 0.5\n', 2,
         ['SYSTEM opens a """ block here that is never closed', 'ending with """']),
        ('FROM x\nTEMPLATE "{{ .Prompt }}\n', 2, ['TEMPLATE opens a " block here that is never closed']),
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
    assert PARAMETERS["draft_num_predict"] == "int"
    text = "FROM x\n" + "".join(f"PARAMETER {n} {sample[k]}\n" for n, k in PARAMETERS.items())
    mf = parse_modelfile(text)
    assert set(mf.parameters) == set(PARAMETERS)


@pytest.mark.parametrize("name", ["num_ctx", "num_predict", "temperature", "top_k", "top_p", "min_p",
                                  "repeat_penalty", "repeat_last_n", "seed", "stop", "num_gpu", "num_thread",
                                  "num_batch", "typical_p", "presence_penalty", "frequency_penalty", "num_keep",
                                  "main_gpu", "use_mmap", "draft_num_predict"])
def test_ollamas_documented_parameters_are_known(name):
    assert name in PARAMETERS


def test_the_parameters_are_exactly_those_of_ollamas_api_types():
    """api/types.go Options and Runner (JSON names), and parser.go's deprecatedParameters."""
    assert set(PARAMETERS) == {
        "num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict",
        "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
        "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty", "stop",
    }
    assert {"penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only",
            "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta"} == DEPRECATED_PARAMETERS
    assert not {"numa", "tfs_z", "embedding_only"} & (set(PARAMETERS) | DEPRECATED_PARAMETERS)


# -- round trips -----------------------------------------------------------------------------

# Any text Ollama's parser keeps (Go's strconv.IsPrint: letters, marks, numbers, punctuation,
# symbols, the ASCII space; tabs and line ends), with the characters that matter to the quoting
# rules made frequent.
_piece = st.text(st.characters(categories=("L", "M", "N", "P", "S")) | st.just(" "), max_size=8) | st.sampled_from(
    ['"', '"""', "\n", "\r\n", "\r", "\t", " ", "#", "PARAMETER x 1"]
)
_text = st.lists(_piece, max_size=6).map("".join)


def _value(kind: str):
    if kind == "int":
        return st.integers(min_value=0, max_value=2**31)
    if kind == "float":  # Ollama keeps float32 values (api.FormatParams), written as Go writes them
        return st.floats(min_value=0, max_value=1, allow_nan=False, allow_infinity=False).map(float32_value)
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
        draft=draw(st.none() | _text.filter(lambda s: s.strip())),
        renderer=draw(st.none() | _text),
        parser=draw(st.none() | _text),
        requires=draw(st.none() | st.sampled_from(["0.14.0", "0.12", "1", "1.2.3-rc.1+build.5"])),
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
@given(st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs")) | st.sampled_from("\n\r\t\"#\x07"),
               max_size=80))
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
    assert to_create_request(mf) == {
        "from_": "mistral:7b", "system": "hi", "parameters": {"stop": ["a", "b"], "num_ctx": 4096},
    }
    assert to_create_request(parse_modelfile("FROM x\n")) == {"from_": "x"}
    # an empty SYSTEM or TEMPLATE is not sent (Go's omitempty: Ollama keeps the base model's)
    assert to_create_request(parse_modelfile('FROM x\nSYSTEM ""\nTEMPLATE    \n')) == {"from_": "x"}
    # licenses go as a list, as `ollama create` sends them; RENDERER, PARSER, REQUIRES as given
    full = parse_modelfile("FROM x\nLICENSE MIT\nRENDERER qwen3\nPARSER qwen3\nREQUIRES v0.14\n")
    assert to_create_request(full) == {"from_": "x", "license": ["MIT"], "renderer": "qwen3", "parser": "qwen3",
                                       "requires": "0.14"}
    assert wire_request("m", full)["requires"] == "0.14" and wire_request("m", full)["renderer"] == "qwen3"
    body = wire_request("rh-x", mf)
    assert body["from"] == "mistral:7b" and body["model"] == "rh-x" and body["stream"] is True and "from_" not in body


def test_a_missing_adapter_file_is_refused_with_its_path(tmp_path):
    mf = parse_modelfile("FROM x\nADAPTER ./lora.gguf\n", tmp_path / "a.Modelfile")
    with pytest.raises(ModelfileError, match=r"a\.Modelfile:2: ADAPTER \./lora\.gguf: there is no such file "):
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
                         'PARAMETER stop "[INST]"\nPARAMETER stop "[/INST]"\n'
                         'SYSTEM """Be rigorous.\nCite carefully."""\n')
    assert compare_with_show(mf, SHOW_MODELFILE) == []
    params = ('num_ctx                        6144\n'
              'stop                           "[/INST]"\n'
              'stop                           "[INST]"\n'
              'temperature                    0.6000000238418579')
    assert parse_show_parameters(params) == {
        "num_ctx": 6144, "stop": ["[/INST]", "[INST]"], "temperature": 0.6000000238418579,
    }
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


# -- parity with `ollama create -f` (parser/parser.go, api/types.go) ----------------------------


def test_requires_renderer_parser_draft_and_draft_num_predict_are_accepted(tmp_path):
    mf = parse_modelfile(
        "FROM qwen3:8b\nDRAFT ./draft.gguf\nRENDERER qwen3-coder\nPARSER qwen3-coder\nREQUIRES 0.12.3\n"
        "PARAMETER draft_num_predict 8\n", tmp_path / "m.Modelfile")
    assert (mf.draft, mf.renderer, mf.parser, mf.requires) == ("./draft.gguf", "qwen3-coder", "qwen3-coder", "0.12.3")
    assert mf.parameters == {"draft_num_predict": 8}
    # parser.go strips the "v" it adds for golang.org/x/mod/semver
    assert parse_modelfile("FROM x\nREQUIRES v0.14\n").requires == "0.14"
    assert parse_modelfile("FROM x\nrequires 1.2.3-rc.1+b5\n").requires == "1.2.3-rc.1+b5"


def test_a_repeated_instruction_or_parameter_is_accepted_and_the_last_wins():
    mf = parse_modelfile(
        "FROM llama2:7b\nFROM mistral:7b\nSYSTEM first\nSYSTEM second\nTEMPLATE a\nTEMPLATE b\n"
        "PARAMETER temperature 0.5\nPARAMETER temperature 0.6\nPARAMETER stop x\nPARAMETER stop y\n", NAME)
    assert (mf.from_, mf.system, mf.template) == ("mistral:7b", "second", "b")
    assert mf.parameters == {"temperature": 0.6, "stop": ["x", "y"]}
    assert mf.lines["system"] == 4 and mf.lines["parameter temperature"] == 8
    warnings = modelfile_warnings(mf)
    assert f"{NAME}:2: FROM is given again (also on line 1); the last one wins, as in Ollama" in warnings
    assert any(w.startswith(f"{NAME}:8: PARAMETER temperature is set again (also on line 7)") for w in warnings)
    assert not any("stop" in w for w in warnings), "stop accumulates: no warning"


def test_a_system_of_spaces_and_an_empty_stop_are_accepted():
    mf = parse_modelfile("FROM x\nSYSTEM    \n", NAME)
    assert mf.system == ""  # the value is trimmed away; Ollama then keeps the base model's system
    assert any("SYSTEM is empty: Ollama keeps the base model's system" in w for w in modelfile_warnings(mf))
    assert "system" not in to_create_request(mf)
    assert parse_modelfile('FROM x\nSYSTEM "   "\n').system == "   "
    mf = parse_modelfile('FROM x\nPARAMETER stop ""\nPARAMETER stop END\n')
    assert mf.parameters == {"stop": ["", "END"]}
    assert parse_modelfile(render_modelfile(mf)) == mf


def test_values_follow_ollamas_types_not_stricter_ranges():
    mf = parse_modelfile("FROM x\nPARAMETER top_p 1.5\nPARAMETER num_ctx -1\nPARAMETER temperature 0.123456789\n"
                         "PARAMETER seed +42\nPARAMETER top_k 007\nPARAMETER min_p 0x1p-3\nPARAMETER typical_p 1_0e-1\n"
                         "PARAMETER use_mmap F\nPARAMETER num_predict 9223372036854775807\n", NAME)
    assert mf.parameters == {"top_p": 1.5, "num_ctx": -1, "temperature": 0.12345679, "seed": 42, "top_k": 7,
                             "min_p": 0.125, "typical_p": 1.0, "use_mmap": False, "num_predict": 2**63 - 1}
    warnings = modelfile_warnings(mf)
    assert (f"{NAME}:2: PARAMETER top_p 1.5 is outside its usual range (from 0 to 1); Ollama accepts it as is"
            in warnings)
    assert any(w.startswith(f"{NAME}:3: PARAMETER num_ctx -1 is outside its usual range") for w in warnings)


def test_deprecated_parameters_are_warned_about_and_not_sent():
    mf = parse_modelfile("FROM x\nPARAMETER mirostat 2\nPARAMETER penalize_newline banana\nPARAMETER use_mlock true\n"
                         "PARAMETER temperature 0.5\n", NAME)
    assert mf.parameters == {"temperature": 0.5}
    assert to_create_request(mf)["parameters"] == {"temperature": 0.5}
    warnings = modelfile_warnings(mf)
    for line, name in ((2, "mirostat"), (3, "penalize_newline"), (4, "use_mlock")):
        assert f"{NAME}:{line}: PARAMETER {name} is deprecated: Ollama ignores it, so it is not sent" in warnings


def test_characters_ollama_drops_are_dropped_with_a_warning():
    mf = parse_modelfile('FROM x\nSYSTEM bell \x07 here,\u00a0nbsp\u200b\tand a tab\nTEMPLATE """a\r\nb"""\n', NAME)
    assert mf.system == "bell  here,nbsp\tand a tab"
    assert mf.template == "a\r\nb"  # line ends inside quotes are kept, as in Ollama
    warnings = modelfile_warnings(mf)
    assert f"{NAME}:2: a U+0007 character (control) is dropped, as Ollama drops it" in warnings
    assert any("U+00A0" in w and "NO-BREAK SPACE" in w for w in warnings)
    assert any("U+200B" in w for w in warnings)


@pytest.mark.parametrize("encoding, bom",
                         [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-8", b"\xef\xbb\xbf")])
def test_a_modelfile_with_a_byte_order_mark_is_read_as_ollama_reads_it(tmp_path, encoding, bom):
    text = "FROM mistral:7b\r\nSYSTEM \"\"\"Tu es Zêta.\r\nΣ ζ(s)\"\"\"\r\nPARAMETER temperature 0.3\r\n"
    p = tmp_path / "ps.Modelfile"
    p.write_bytes(bom + text.encode(encoding))
    mf = load_modelfile(p)
    assert mf == parse_modelfile(text)
    assert mf.system == "Tu es Zêta.\r\nΣ ζ(s)" and mf.parameters == {"temperature": 0.3}


def test_a_modelfile_that_is_not_utf8_is_refused_with_the_reason(tmp_path):
    p = tmp_path / "latin1.Modelfile"
    p.write_bytes("FROM x\nSYSTEM café\n".encode("latin-1"))
    with pytest.raises(ModelfileError, match=r"not UTF-8 text .*U\+FFFD"):
        load_modelfile(p)
    odd = tmp_path / "odd.Modelfile"
    odd.write_bytes(b"\xff\xfeF\x00R\x00O")
    with pytest.raises(ModelfileError, match="not valid UTF-16-LE"):
        load_modelfile(odd)


def test_a_from_file_is_sent_as_files_never_as_from(tmp_path):
    (tmp_path / "models").mkdir()
    gguf = tmp_path / "models" / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    mf = parse_modelfile("FROM ./models/tiny.gguf\nSYSTEM hi\n", tmp_path / "t.Modelfile")
    req = to_create_request(mf)
    assert req == {"files": {"tiny.gguf": gguf}, "system": "hi"} and "from_" not in req
    body = wire_request("tiny", mf)
    assert body["files"] == {"tiny.gguf": "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()}
    assert "from" not in body
    # a path that names no file is refused before anything is sent, not sent as a model name
    for value in ("./missing.gguf", "../x/m.gguf", "/nowhere/m.gguf", "weights.gguf"):
        with pytest.raises(ModelfileError, match=r"t\.Modelfile:1: FROM .*there is no such file"):
            to_create_request(parse_modelfile(f"FROM {value}\n", tmp_path / "t.Modelfile"))
    with pytest.raises(ModelfileError, match="is a folder"):
        to_create_request(parse_modelfile("FROM ./models\n", tmp_path / "t.Modelfile"))


SHOW_GO_QUOTED = '''# Modelfile generated by "ollama show"
# To build a new Modelfile based on this, replace FROM with:
# FROM rh-alpha:latest

FROM /usr/share/ollama/.ollama/models/blobs/sha256-6ae2800f7d6c
TEMPLATE "{{ if .System }}{{ .System }}

{{ end }}### Instruction:
{{ .Prompt }}

### Response:
"
SYSTEM You are A.
PARAMETER stop ### Response:
PARAMETER stop " padded "
PARAMETER temperature 0.5
PARAMETER num_ctx 1e+06
LICENSE """LLAMA 2 "COMMUNITY" LICENSE
AGREEMENT"""
'''


def test_a_shown_modelfile_is_read_with_gos_quoting():
    """parser.go quote(): bare unless a line end or leading/trailing spaces; then "…", or \"\"\"…\"\"\" when
    the value holds a quote; numbers as Go's %v writes a float64."""
    mf = parse_modelfile('FROM nous-hermes:7b\nSYSTEM You are A.\nPARAMETER stop ### Response:\n'
                         'PARAMETER stop " padded "\nPARAMETER temperature 0.5\nPARAMETER num_ctx 1000000\n'
                         'LICENSE """LLAMA 2 "COMMUNITY" LICENSE\nAGREEMENT"""\n')
    assert compare_with_show(mf, SHOW_GO_QUOTED) == []
    shown = read_show(SHOW_GO_QUOTED)
    assert shown.system == "You are A." and shown.parameters["stop"] == ["### Response:", " padded "]
    assert shown.parameters["num_ctx"] == 1_000_000 and shown.template.startswith("{{ if .System }}")


def test_a_line_of_a_shown_modelfile_that_does_not_parse_keeps_what_came_before():
    text = ('FROM /blobs/sha256-abc\nSYSTEM You are A.\nPARAMETER temperature 0.5\n'
            'SYSTEM "quoted" at the start, bare\nPARAMETER num_ctx 4096\n')  # Ollama writes that bare; it never closes
    with pytest.raises(ModelfileError):
        iter_commands(text)
    cmds = iter_commands(text, lenient=True)
    assert [(c.name, c.value) for c in cmds] == [("from", "/blobs/sha256-abc"), ("system", "You are A."),
                                                ("parameter", "0.5")]
    mf = parse_modelfile("FROM x\nSYSTEM You are A.\nPARAMETER temperature 0.5\n")
    # the system prompt comes from /api/show's own "system" field: no false drift
    assert compare_with_show(mf, text, system="You are A.") == []
    assert compare_with_show(mf, "FROM /b\nFUTURE thing\nSYSTEM You are A.\n", "temperature 0.5") == [
        Drift("system", "You are A.", None)]
    assert compare_with_show(mf, "FROM /b\nFUTURE thing\n", "temperature 0.5", system="You are A.") == []


def test_drift_is_judged_as_ollama_builds_a_model_on_its_base():
    base_show = ('FROM /b\nTEMPLATE "[INST] {{ .Prompt }}"\nSYSTEM Base system.\nPARAMETER stop [INST]\n'
                 'LICENSE Apache\nLICENSE MIT\n')
    # an empty SYSTEM or TEMPLATE: Ollama keeps the base model's; not drift
    assert compare_with_show(parse_modelfile('FROM mistral:7b\nSYSTEM ""\nTEMPLATE ""\n'), base_show) == []
    # licenses are appended to the base model's
    assert compare_with_show(parse_modelfile("FROM mistral:7b\nLICENSE MIT\n"), base_show) == []
    drifts = compare_with_show(parse_modelfile("FROM mistral:7b\nLICENSE GPL\nRENDERER r1\n"), base_show,
                               license="Apache\nMIT")
    assert [d.what for d in drifts] == ["license", "renderer"]
    assert "is not among the model's licenses" in drifts[0].describe()
    assert compare_with_show(parse_modelfile("FROM x\nRENDERER r1\nREQUIRES 0.14\n"), base_show,
                             renderer="r1", requires="0.14") == []


def test_go_quoted_parameter_values_are_unescaped():
    params = ('stop                           "a\\tb\\x07\\u00a0\\"q\\""\n'
              'temperature                    0.7\nuse_mmap                       false')
    assert parse_show_parameters(params) == {"stop": ['a\tb\x07\u00a0"q"'], "temperature": 0.7, "use_mmap": False}
