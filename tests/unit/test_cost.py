"""Energy and cost arithmetic and wording (rhtui.engine.cost), and the `[cost]` settings."""

from __future__ import annotations

import pytest

from rhtui.engine.config import ConfigError, load_settings
from rhtui.engine.cost import compare, cost_of, cost_per_mtok, energy_wh, fmt_energy, fmt_money, tokens_per_wh


def test_energy_cost_and_rates():
    assert energy_wh(7200.0) == 2.0 and energy_wh(None) is None
    assert cost_of(2000.0, 0.30) == pytest.approx(0.60)  # 2 kWh at 0.30 per kWh
    assert cost_of(2000.0, None) is None and cost_of(None, 0.3) is None
    assert tokens_per_wh(1000, 2.0) == 500.0 and tokens_per_wh(1000, 0.0) is None and tokens_per_wh(5, None) is None
    assert cost_per_mtok(0.6, 3_000_000) == pytest.approx(0.2) and cost_per_mtok(0.6, 0) is None


def test_amounts_and_energy_read_well():
    assert [fmt_money(v) for v in (0, 0.000123456, 0.0123, 0.5, 1.234, 12.5, 1234.5)] == [
        "0", "0.000123", "0.0123", "0.500", "1.23", "12.50", "1,234"]
    assert fmt_money(0.0123, "EUR") == "0.0123 EUR"
    assert [fmt_energy(v) for v in (None, 0.0, 12.34, 999.9, 4567.0)] == [
        "N/A", "0.0 Wh", "12.3 Wh", "999.9 Wh", "4.57 kWh"]


def test_the_comparison_with_an_api_says_which_is_cheaper_and_how_much():
    c = compare(0.05, 2.0, "EUR")
    assert c is not None and c.api_over_local == pytest.approx(40.0)
    assert c.summary == "local: 0.0500 EUR per Mtok vs API: 2.00 EUR per Mtok, 40× cheaper"
    c = compare(0.8, 2.0)
    assert c is not None and c.summary.endswith(", 2.5× cheaper")
    c = compare(4.0, 1.0)
    assert c is not None and c.summary.endswith(", the API is 4.0× cheaper")
    c = compare(0.0, 1.0)
    assert c is not None and c.api_over_local is None and c.summary.endswith(", free here")
    c = compare(1.0, 0.0)
    assert c is not None and c.summary.endswith(", the API is free")
    assert compare(None, 1.0) is None and compare(1.0, None) is None


def test_cost_settings_from_the_file_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    s = load_settings()
    assert (s.cost.price_per_kwh, s.cost.api_price_per_mtok, s.cost.currency) == (None, None, "")  # not set
    cfg = tmp_path / "rhtui.toml"
    cfg.write_text('[cost]\nprice_per_kwh = 0.25\napi_price_per_mtok = 3\ncurrency = "EUR"\n')
    s = load_settings(cfg)
    assert (s.cost.price_per_kwh, s.cost.api_price_per_mtok, s.cost.currency) == (0.25, 3.0, "EUR")
    monkeypatch.setenv("RHTUI_COST__PRICE_PER_KWH", "0.4")
    assert load_settings(cfg).cost.price_per_kwh == 0.4  # the environment wins over the file
    monkeypatch.setenv("RHTUI_COST__PRICE_PER_KWH", "-1")
    with pytest.raises(ConfigError, match=r"cost.price_per_kwh: .* — from environment variable "
                                          "RHTUI_COST__PRICE_PER_KWH"):
        load_settings(cfg)
    monkeypatch.delenv("RHTUI_COST__PRICE_PER_KWH")
    monkeypatch.setenv("RHTUI_COST", "not json")
    with pytest.raises(ConfigError, match=r"RHTUI_COST__KEY"):
        load_settings(cfg)
