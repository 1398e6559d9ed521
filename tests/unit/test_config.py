import pytest

from rhtui.engine.config import ConfigError, Settings, load_settings, normalize_host, value_sources


def test_defaults_match_the_original_budget_rules():
    s = load_settings()
    assert s.budget.reserve_mb == 1024
    assert s.budget.max_fraction == 0.90
    assert s.budget.emergency_fraction == 0.95
    assert s.budget.timeout_s == 60
    assert s.ollama_host == "http://127.0.0.1:11434"
    assert [st.name for st in s.students][:1] == ["rh-alpha"]


def test_order_file_then_env_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text('[budget]\nreserve_mb = 2048\ntimeout_s = 90\n[session]\nname = "from_file"\n')
    assert load_settings(cfg).budget.reserve_mb == 2048
    monkeypatch.setenv("RHTUI_BUDGET__RESERVE_MB", "512")
    s = load_settings(cfg)
    assert s.budget.reserve_mb == 512 and s.budget.timeout_s == 90
    s = load_settings(cfg, {"budget": {"reserve_mb": 256}, "session": {"name": None}})
    assert s.budget.reserve_mb == 256
    assert s.session.name == "from_file"  # a flag left unset does not hide the file


def test_xdg_config_file_is_found(tmp_path, monkeypatch):
    d = tmp_path / "xdg-config" / "rhtui"
    d.mkdir(parents=True)
    (d / "rhtui.toml").write_text('[session]\npolicy = "efficiency"\n')
    assert load_settings().session.policy == "efficiency"


def test_ollama_host_is_honoured_below_rhtui_env(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    assert load_settings().ollama_host == "http://127.0.0.1:11500"
    monkeypatch.setenv("RHTUI_OLLAMA_HOST", "gpu-box:11434")
    assert load_settings().ollama_host == "http://gpu-box:11434"


@pytest.mark.parametrize(
    "raw,url",
    [("", "http://127.0.0.1:11434"), ("box", "http://box:11434"), (":9", "http://127.0.0.1:9"),
     ("https://x.org", "https://x.org:443"), ("http://h:1/", "http://h:1")],
)
def test_normalize_host(raw, url):
    assert normalize_host(raw) == url


def test_bad_file_value_names_key_source_and_allowed(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[budget]\nreserve_mb = -5\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    msg = str(e.value)
    assert "budget.reserve_mb" in msg and str(cfg) in msg and "greater than or equal to 0" in msg


def test_bad_env_and_flag_values_name_their_source(monkeypatch):
    monkeypatch.setenv("RHTUI_BUDGET__TIMEOUT_S", "soon")
    with pytest.raises(ConfigError) as e:
        load_settings(None, {"session": {"policy": "random"}})
    msg = str(e.value)
    assert "environment variable RHTUI_BUDGET__TIMEOUT_S" in msg
    assert "session.policy" in msg and "command-line flag --policy" in msg and "'fair' or 'efficiency'" in msg


def test_unknown_key_and_cross_field_rule(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[budget]\nmax_fraction = 0.97\n[sesion]\nname='x'\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "sesion: unknown key" in str(e.value)
    cfg.write_text("[budget]\nmax_fraction = 0.97\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "emergency_fraction (0.95) must be above max_fraction (0.97)" in str(e.value)


def test_invalid_toml_and_missing_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[budget\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_duplicate_students_rejected():
    with pytest.raises(ConfigError, match="declared twice"):
        load_settings(None, {"students": [{"name": "a"}, {"name": "a"}]})


def test_value_sources(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[budget]\nreserve_mb = 2000\n")
    monkeypatch.setenv("RHTUI_SAMPLE_INTERVAL_S", "2")
    s = load_settings(cfg)
    src = value_sources(s, cfg, {})
    assert src["budget.reserve_mb"] == f"config file {cfg}"
    assert src["sample_interval_s"] == "environment variable RHTUI_SAMPLE_INTERVAL_S"
    assert src["budget.timeout_s"] == "default"


def test_db_path_under_data_dir(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert s.db_path == tmp_path / "rhtui.db"
