"""The world's arithmetic on a ManualClock: loads, rates, VRAM, eviction, expiry, offload."""

from __future__ import annotations

import asyncio
import math

import pytest

from rhtui.engine.clock import ManualClock
from rhtui.sim.catalog import kv_cache_mb
from rhtui.sim.errors import SimError
from rhtui.sim.placement import NUM_PARALLEL_ENV, Runner, num_parallel_from_env, parse_keep_alive, unload_order
from rhtui.sim.scenario import Scenario
from rhtui.sim.text import HOSTILE_PIECES
from rhtui.sim.world import SimWorld


def manual(world: SimWorld) -> ManualClock:
    """The world's clock, a ManualClock (as the manual_world fixture makes it)."""
    assert isinstance(world.clock, ManualClock)
    return world.clock


def actions(world: SimWorld, model: str | None = None) -> list[tuple[str, str]]:
    return [(e.action, e.model) for e in world.load_log if model is None or e.model == model]


async def generate(world: SimWorld, name: str, **kw):
    async with world.generation(name, "Write a research proposal.", **kw) as g:
        text = "".join([t async for t in g.stream()])
    return g, text


def test_seeded_models_list_like_ollama(manual_world: SimWorld) -> None:
    names = [m.name for m in manual_world.models()]
    assert names[:6] == ["rh-alpha:latest", "rh-beta:latest", "rh-gamma:latest", "rh-delta:latest",
                         "rh-epsilon:latest", "rh-zeta:latest"]  # students are newer than their bases
    assert "nous-hermes:7b" in names and "llama3.1:8b" in names and len(names) == 12
    alpha = manual_world.model("rh-alpha")
    assert manual_world.model("RH-ALPHA:latest") is alpha
    assert (alpha.weights_mb, alpha.resident_mb, alpha.from_, alpha.base) == (
        3560, 3847, "nous-hermes:7b", "nous-hermes:7b")
    assert len(alpha.digest) == 64 and alpha.parameters["stop"]
    with pytest.raises(SimError) as info:
        manual_world.model("rh-omega")
    assert (info.value.status, info.value.message) == (404, "model 'rh-omega' not found")


async def test_load_time_and_vram(manual_world: SimWorld, scenario: Scenario) -> None:
    w = manual_world
    base_used = scenario.gpu.baseline_used_mb
    assert w.vram_used_mb() == base_used and w.vram_total_mb == 12282
    took = await w.load("rh-alpha")
    assert took == pytest.approx(3560 / 1000 / 3.0 + 0.8)  # weights / read rate + init
    assert w.load_time_s(w.model("rh-beta")) == pytest.approx(4110 / 3000 + 0.8)
    assert w.vram_used_mb() == pytest.approx(base_used + 3847)
    r = w.runner("rh-alpha")
    assert r is not None and (r.size_mb, r.gpu_mb, r.cpu_mb) == (3847, 3847, 0)
    assert w.expires_at(r) == pytest.approx(took + 300)  # the default keep_alive
    assert actions(w) == [("load", "rh-alpha:latest")]
    await w.load("rh-alpha")  # already loaded: no second load, no time
    assert actions(w) == [("load", "rh-alpha:latest")]


def test_decode_rate_is_bandwidth_over_weights(manual_world: SimWorld) -> None:
    assert manual_world.single_stream_rate("rh-alpha") == pytest.approx(504 * 1000 * 0.75 / 3560)
    assert 105 < manual_world.single_stream_rate("rh-alpha") < 107
    assert manual_world.single_stream_rate("rh-zeta") == pytest.approx(504 * 750 / 4700)


async def test_generation_metrics_match_the_scenario(manual_world: SimWorld) -> None:
    w = manual_world
    g, text = await generate(w, "rh-alpha")
    m = g.metrics_ns()
    assert 2000 < m["eval_count"] < 3700 and m["eval_count"] == g.n_tokens
    rate = m["eval_count"] / (m["eval_duration"] / 1e9)
    assert rate == pytest.approx(w.single_stream_rate("rh-alpha"), rel=1e-6)
    assert m["load_duration"] / 1e9 == pytest.approx(w.load_time_s(w.model("rh-alpha")))
    assert m["prompt_eval_duration"] / 1e9 == pytest.approx(m["prompt_eval_count"] / (20 * rate), abs=1e-6)
    total = m["load_duration"] + m["prompt_eval_duration"] + m["eval_duration"]
    assert m["total_duration"] == pytest.approx(total, rel=1e-6, abs=10)
    assert g.done_reason == "stop"
    assert "Riemann" in text or "zeta" in text or "zeros" in text
    assert w.is_loaded("rh-alpha")  # kept alive after the request


async def test_same_seed_same_proposals_and_num_predict(scenario: Scenario) -> None:
    a, b = SimWorld(scenario, ManualClock(), seed=11), SimWorld(scenario, ManualClock(), seed=11)
    (ga, ta), (gb, tb) = await generate(a, "rh-beta"), await generate(b, "rh-beta")
    assert ta == tb and ga.n_tokens == gb.n_tokens
    (gc, tc) = await generate(SimWorld(scenario, ManualClock(), seed=12), "rh-beta")
    assert tc != ta
    g, _ = await generate(a, "rh-beta", options={"num_predict": 100})
    assert (g.n_tokens, g.done_reason, g.metrics_ns()["eval_count"]) == (100, "length", 100)


async def test_hostile_text_mixes_in_escapes_and_markup(scenario: Scenario) -> None:
    w = SimWorld(scenario, ManualClock(), seed=1, hostile_text=True)
    _, text = await generate(w, "rh-gamma")
    found = [p for p in HOSTILE_PIECES if p in text]
    assert len(found) >= 3 and any("\x1b" in p for p in found) and any(p.startswith("[") for p in found)
    _, plain = await generate(SimWorld(scenario, ManualClock(), seed=1), "rh-gamma")
    assert "\x1b" not in plain and "[bold" not in plain


def big_card(scenario: Scenario) -> Scenario:
    """A 24 GB card: only the model count (max_loaded_models = 3) limits there."""
    return scenario.model_copy(update={"gpu": scenario.gpu.model_copy(update={"total_mb": 24576})})


async def test_eviction_at_max_loaded_models_picks_the_shortest_keep_alive(scenario: Scenario) -> None:
    # Ollama's findRunnerToUnload (server/sched.go): shortest session duration first, not LRU.
    w = SimWorld(big_card(scenario), ManualClock())
    for name, ka in (("rh-alpha", "10m"), ("rh-beta", "1m"), ("rh-delta", -1)):
        await w.load(name, keep_alive=ka)
        manual(w).advance(1)
    await w.load("rh-beta", keep_alive="1m")  # beta is now the most recently used
    assert len(w.runners()) == 3
    await w.load("rh-gamma", keep_alive=-1)
    assert sorted(w.loaded_names()) == ["rh-alpha:latest", "rh-delta:latest", "rh-gamma:latest"]
    ev = [e for e in w.load_log if e.action == "evict"]
    assert [e.model for e in ev] == ["rh-beta:latest"]
    assert "rh-gamma" in ev[0].detail and "findRunnerToUnload" in ev[0].detail
    await w.load("rh-epsilon", keep_alive=-1)  # next: alpha (10 min) before the two kept forever
    assert [e.model for e in w.load_log if e.action == "evict"] == ["rh-beta:latest", "rh-alpha:latest"]


async def test_equal_keep_alive_is_broken_by_model_path_not_recency(scenario: Scenario) -> None:
    w = SimWorld(big_card(scenario), ManualClock())
    for name in ("rh-delta", "rh-alpha", "rh-gamma"):
        await w.load(name, keep_alive=-1)
        manual(w).advance(1)
    await w.load("rh-alpha", keep_alive=-1)  # alpha is now the most recently used
    paths = {r.name: r.model_path for r in w.runners()}
    assert all(p.startswith("/usr/share/ollama/.ollama/models/blobs/sha256-") for p in paths.values())
    first = min(paths, key=paths.__getitem__)  # ByDurationAndName: the lowest model path
    assert first == "rh-alpha:latest"  # the reference blobs sort alpha < beta < zeta < epsilon < delta < gamma
    await w.load("rh-beta", keep_alive=-1)
    assert [e.model for e in w.load_log if e.action == "evict"] == [first]
    assert sorted(w.loaded_names()) == ["rh-beta:latest", "rh-delta:latest", "rh-gamma:latest"]


def test_unload_order_is_sched_go_by_duration_and_name(manual_world: SimWorld) -> None:
    w = manual_world
    now = w.elapsed()

    def runner(name: str, keep_alive: float, path: str, active: int = 0) -> Runner:
        return Runner(name=name, digest="d", num_ctx=4096, weights_mb=1, size_mb=1, gpu_mb=1, pid=1,
                      loaded_at=now, ready_at=now, last_used=now, keep_alive=keep_alive, active=active,
                      model_path=path)

    forever, long_, short_, zero = (runner("forever", math.inf, "/a"), runner("long", 600, "/a"),
                                    runner("short", 60, "/z"), runner("zero", 0, "/m"))
    tie_b, tie_a = runner("tie-b", 60, "/b"), runner("tie-a", 60, "/a")
    busy_short, busy_long = runner("busy-short", 1, "/a", active=1), runner("busy-long", 900, "/a", active=1)
    loading = runner("loading", 0, "/a")
    loading.ready_at = now + 5  # a runner still loading holds its request: never idle
    order = unload_order([forever, busy_long, long_, short_, tie_b, busy_short, zero, tie_a, loading], now)
    assert [r.name for r in order] == ["zero", "tie-a", "tie-b", "short", "long", "forever",  # idle first
                                       "loading", "busy-short", "busy-long"]  # then busy, same order


async def test_vram_pressure_evicts_only_what_is_needed(manual_world: SimWorld) -> None:
    w = manual_world
    await w.load("rh-alpha", keep_alive=-1)  # 3847
    manual(w).advance(1)
    await w.load("rh-zeta", keep_alive=-1)  # 5012 -> 900 + 8859 used
    manual(w).advance(1)
    await w.load("rh-gamma", keep_alive=-1)  # 4401 does not fit in 3423 free: evict alpha (path tie-break)
    assert sorted(w.loaded_names()) == ["rh-gamma:latest", "rh-zeta:latest"]
    assert w.vram_used_mb() <= w.vram_total_mb
    assert [a for a, _ in actions(w)] == ["load", "load", "evict", "load"]


async def test_keep_alive_expiry_and_zero(manual_world: SimWorld) -> None:
    w = manual_world
    await w.load("rh-alpha", keep_alive="30s")
    manual(w).advance(29)
    assert w.is_loaded("rh-alpha")
    manual(w).advance(2)
    assert not w.is_loaded("rh-alpha")
    exp = [e for e in w.load_log if e.action == "expire"]
    assert len(exp) == 1 and exp[0].ts == pytest.approx(w.load_time_s(w.model("rh-alpha")) + 30)
    g, _ = await generate(w, "rh-beta", keep_alive=0)
    assert not w.is_loaded("rh-beta") and actions(w, "rh-beta:latest")[-1] == ("unload", "rh-beta:latest")
    await w.load("rh-delta", keep_alive=-1)
    manual(w).advance(10 * 86400)
    assert w.is_loaded("rh-delta")
    await w.unload("rh-delta")
    assert not w.is_loaded("rh-delta")
    # memory of an unloading runner is held for disk.unload_s
    assert w.models_vram_mb() == pytest.approx(3821)
    manual(w).advance(0.31)
    assert w.models_vram_mb() == 0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 300), (0, 0), (-1, math.inf), ("-1", math.inf), (42, 42), ("5m", 300), ("30s", 30),
     ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), ("10", 10), ("-5m", math.inf)],
)
def test_parse_keep_alive(value, seconds) -> None:
    assert parse_keep_alive(value, 300) == seconds


def test_parse_keep_alive_rejects_garbage() -> None:
    with pytest.raises(SimError, match='invalid duration "5 minutes"'):
        parse_keep_alive("5 minutes", 300)


async def test_external_vram_windows_from_the_scenario(hostile: Scenario) -> None:
    w = SimWorld(hostile, ManualClock(), seed=0, faults_enabled=False)
    assert w.external_mb() == 0
    manual(w).advance(600)
    assert w.external_mb() == 3000 and w.vram_used_mb() == 900 + 3000
    manual(w).advance(300)
    assert w.external_mb() == 0
    manual(w).advance(3000 - 900)
    assert w.external_mb() == 11000 and w.vram_used_mb() == 11900
    w.add_external(500, for_s=10)
    assert w.vram_used_mb() == w.vram_total_mb  # never more than the card has
    w.clear_external()
    assert w.external_mb() == 11000
    w.clear_external(include_scenario=True)
    assert w.external_mb() == 0


async def test_offload_when_it_does_not_fit(manual_world: SimWorld) -> None:
    w = manual_world
    w.add_external(9000)  # 12282 - 900 - 9000 = 2382 MB left for models
    took = await w.load("rh-alpha")
    r = w.runner("rh-alpha")
    assert r is not None and 0 < r.gpu_mb < 2382 and r.cpu_mb > 1500
    assert took == pytest.approx(w.load_time_s(w.model("rh-alpha")))
    assert [a for a, _ in actions(w)] == ["load", "offload"]
    slow = w.decode_rate(r)
    assert slow < w.single_stream_rate("rh-alpha") / 2.5  # much slower with layers on the CPU
    g, _ = await generate(w, "rh-alpha")
    assert g.eval_count / g.eval_s == pytest.approx(slow, rel=1e-6)
    assert w.ram_used_mb() > w.scenario.host.os_used_mb + r.cpu_mb


async def test_nothing_fits_means_cpu_only_and_ram_oom(manual_world: SimWorld) -> None:
    w = manual_world
    w.add_external(11300)
    await w.load("rh-zeta")
    r = w.runner("rh-zeta")
    assert r is not None and r.gpu_mb == 0 and r.cpu_mb == r.size_mb
    w.scenario = w.scenario.model_copy(update={"host": w.scenario.host.model_copy(update={"ram_total_mb": 9000})})
    with pytest.raises(SimError) as info:
        await w.load("rh-beta")
    assert info.value.status == 500
    assert "model requires more system memory" in info.value.message
    assert actions(w, "rh-beta:latest") == [("oom", "rh-beta:latest")]
    assert not w.is_loaded("rh-beta")


async def test_busy_models_are_waited_for_not_evicted(manual_world: SimWorld) -> None:
    w = manual_world
    w.add_external(3000)  # 12282 - 900 - 3000 = 8382: alpha + beta fit (8236), a third does not
    ga = w.generation("rh-alpha", "p", keep_alive=-1)
    gb = w.generation("rh-beta", "p", keep_alive=-1)
    await ga.__aenter__()
    await gb.__aenter__()
    task = asyncio.ensure_future(w.load("rh-delta"))
    try:
        await asyncio.sleep(0.05)
        assert not task.done() and not w.is_loaded("rh-delta")  # both busy: the request waits
        await ga.__aexit__(None, None, None)  # alpha idle: evicted for delta (3821 fits in 3993)
        await asyncio.wait_for(task, 2)
        assert sorted(w.loaded_names()) == ["rh-beta:latest", "rh-delta:latest"]
        assert [a for a, _ in actions(w)] == ["load", "load", "evict", "load"]
    finally:
        task.cancel()
        await gb.__aexit__(None, None, None)


async def test_an_idle_runner_goes_before_a_busy_one_with_a_shorter_keep_alive(manual_world: SimWorld) -> None:
    w = manual_world
    w.add_external(3000)  # 8382 MB for models: alpha + beta fit (8236), a third does not
    await w.load("rh-beta", keep_alive=-1)  # idle, kept forever
    ga = w.generation("rh-alpha", "p", keep_alive="1m")  # busy, the shortest keep_alive
    await ga.__aenter__()
    try:
        await asyncio.wait_for(w.load("rh-delta", keep_alive="1m"), 2)
        assert [(e.action, e.model) for e in w.load_log if e.action == "evict"] == [("evict", "rh-beta:latest")]
        assert sorted(w.loaded_names()) == ["rh-alpha:latest", "rh-delta:latest"]
    finally:
        await ga.__aexit__(None, None, None)


async def test_no_idle_runner_the_shortest_busy_one_is_told_to_unload_and_waited_for(manual_world: SimWorld) -> None:
    w = manual_world
    w.add_external(3000)  # 8382 MB for models
    ga = w.generation("rh-alpha", "p", keep_alive=-1)
    gb = w.generation("rh-beta", "p", keep_alive="10m")  # the shorter session duration
    await ga.__aenter__()
    await gb.__aenter__()
    task = asyncio.ensure_future(w.load("rh-delta", keep_alive="5m"))
    try:
        await asyncio.sleep(0.05)
        assert not task.done() and not w.is_loaded("rh-delta")
        beta = w.runner("rh-beta")
        assert beta is not None and beta.keep_alive == 0 and beta.evict_for == "rh-delta:latest"
        await ga.__aexit__(None, None, None)  # alpha goes idle, but the scheduler waits for beta's unload
        await asyncio.sleep(0.3)
        assert not task.done() and w.is_loaded("rh-alpha") and not any(e.action == "evict" for e in w.load_log)
        await gb.__aexit__(None, None, None)  # beta finishes: unloaded at once, then delta loads
        await asyncio.wait_for(task, 2)
        assert sorted(w.loaded_names()) == ["rh-alpha:latest", "rh-delta:latest"]
        assert actions(w) == [("load", "rh-alpha:latest"), ("load", "rh-beta:latest"),
                              ("evict", "rh-beta:latest"), ("load", "rh-delta:latest")]
        assert "busy when picked" in next(e for e in w.load_log if e.action == "evict").detail
    finally:
        task.cancel()


async def test_idle_runners_are_evicted_one_by_one_before_waiting_for_a_busy_one(manual_world: SimWorld) -> None:
    w = manual_world
    w.add_external(3000)  # 8382 MB for models
    await w.load("rh-alpha", keep_alive="5m")  # idle: 3847
    gb = w.generation("rh-beta", "p", keep_alive="1m")  # busy: 4389
    await gb.__aenter__()
    task = asyncio.ensure_future(w.load("rh-zeta", keep_alive="5m"))  # 5012: alpha's room is not enough
    try:
        await asyncio.sleep(0.05)
        assert not task.done() and not w.is_loaded("rh-alpha")  # the idle one went already
        assert actions(w)[-1] == ("evict", "rh-alpha:latest")
        await gb.__aexit__(None, None, None)
        await asyncio.wait_for(task, 2)
        assert [a for a in actions(w)] == [("load", "rh-alpha:latest"), ("load", "rh-beta:latest"),
                                           ("evict", "rh-alpha:latest"), ("evict", "rh-beta:latest"),
                                           ("load", "rh-zeta:latest")]
    finally:
        task.cancel()


async def test_concurrent_streams_share_bandwidth(manual_world: SimWorld) -> None:
    w = manual_world
    await w.load("rh-alpha")
    await w.load("rh-delta")
    ra, rd = w.runner("rh-alpha"), w.runner("rh-delta")
    assert ra is not None and rd is not None
    solo = w.decode_rate(ra)
    assert solo == pytest.approx(w.single_stream_rate("rh-alpha"))
    sid = w.add_stream(rd)
    w.streams[sid].phase = "decode"
    assert w.decode_rate(ra) == pytest.approx(solo * 1.10 / 2)  # two streams share 1.1x one
    w.streams.pop(sid)
    assert w.decode_rate(ra) == pytest.approx(solo)


async def test_a_load_in_progress_takes_pcie_bandwidth(make_world) -> None:
    w = make_world(20.0)  # slow enough to look inside a 2 s (simulated) load
    await w.load("rh-alpha")
    ra = w.runner("rh-alpha")
    solo = w.decode_rate(ra)
    task = asyncio.ensure_future(w.load("rh-delta"))
    await asyncio.sleep(0.02)
    assert w.runner("rh-delta") is not None and w.vram_used_mb() == pytest.approx(900 + 3847 + 3821)
    # the copy's slowdown of a decode in progress is measured in tests/sim/test_load_physics.py
    await task
    assert w.decode_rate(ra) == pytest.approx(solo)


async def test_create_model_semantics(manual_world: SimWorld) -> None:
    w = manual_world
    status = w.create_model("rh-alpha", from_="nous-hermes:7b", system="You are Alpha.",
                            parameters={"temperature": 0.7, "num_ctx": 4096, "stop": ["<|end|>"]})
    assert status[-2:] == ["writing manifest", "success"]
    assert status[0].startswith("using existing layer sha256:")
    assert any(s.startswith("creating new layer sha256:") for s in status)
    assert w.create_requests[-1] == {"model": "rh-alpha", "from": "nous-hermes:7b", "system": "You are Alpha.",
                                     "parameters": {"temperature": 0.7, "num_ctx": 4096, "stop": ["<|end|>"]}}
    alpha = w.model("rh-alpha")
    assert alpha.system == "You are Alpha." and alpha.resident_mb == 3847  # measured figure kept
    assert alpha.parameters == {"temperature": 0.7, "num_ctx": 4096, "stop": ["<|end|>"]}
    w.create_model("rh-alpha-big", from_="rh-alpha", parameters={"num_ctx": 8192})
    big = w.model("rh-alpha-big:latest")
    assert big.weights_mb == 3560 and big.system == "You are Alpha."
    assert big.resident_mb == pytest.approx(3560 + kv_cache_mb(8192))
    assert big.parameters["temperature"] == 0.7  # parameters merge into the parent's
    with pytest.raises(SimError) as info:
        w.create_model("x", from_="nonexistent:7b")
    assert (info.value.status, info.value.message) == (404, "model 'nonexistent:7b' not found")
    with pytest.raises(SimError, match="unknown parameter 'tempurature'"):
        w.create_model("x", from_="rh-alpha", parameters={"tempurature": 1})
    w.delete_model("rh-alpha-big")
    assert w.find_model("rh-alpha-big") is None
    with pytest.raises(SimError):
        w.delete_model("rh-alpha-big")


async def test_recreated_model_reloads_on_next_request(manual_world: SimWorld) -> None:
    w = manual_world
    await w.load("rh-alpha")
    w.create_model("rh-alpha", from_="nous-hermes:7b", system="new role")
    await w.load("rh-alpha")
    assert [a for a, _ in actions(w)] == ["load", "unload", "load"]


async def test_injected_oom_and_load_log(manual_world: SimWorld) -> None:
    w = manual_world
    w.inject("oom", model="rh-epsilon")
    plan = w.plan_faults("rh-epsilon", load_only=True)
    with pytest.raises(SimError) as info:
        await w.load("rh-epsilon", faults=plan)
    assert info.value.status == 500 and ("out of memory" in info.value.message
                                         or "requires more system memory" in info.value.message)
    assert actions(w, "rh-epsilon:latest") == [("oom", "rh-epsilon:latest")]
    assert not any(a == "load" for a, _ in actions(w, "rh-epsilon:latest"))  # never loaded
    await w.load("rh-epsilon", faults=w.plan_faults("rh-epsilon"))  # the injection was used up
    assert w.is_loaded("rh-epsilon")
    with pytest.raises(ValueError):
        w.inject("meteor")


def test_fault_rates_are_seeded(hostile: Scenario) -> None:
    def kinds(seed: int, enabled: bool = True) -> list[str]:
        w = SimWorld(hostile, ManualClock(), seed=seed, faults_enabled=enabled)
        out = []
        for _ in range(2000):
            p = w.plan_faults("rh-alpha")
            out.append("500" if p.http_500 else "stall" if p.stall_at is not None else
                       "drop" if p.disconnect_at is not None else "bad" if p.malformed_at is not None else
                       "oom" if p.oom else "")
        return out

    a = kinds(5)
    assert a == kinds(5) and a != kinds(6)
    assert 15 < a.count("500") < 70 and a.count("stall") > 5 and a.count("drop") > 5 and a.count("bad") > 1
    assert set(kinds(5, enabled=False)) == {""}


def test_server_down_windows(hostile: Scenario) -> None:
    w = SimWorld(hostile, ManualClock(), seed=0)
    assert not w.server_down_now() and w.next_down_change() == 2400
    manual(w).advance(2400)
    assert w.server_down_now() and w.next_down_change() == 2490
    w.faults_enabled = False
    assert not w.server_down_now()
    w.set_server_down(5)
    assert w.server_down_now()
    manual(w).advance(5)
    assert not w.server_down_now()


# -- KV cache = num_ctx x OLLAMA_NUM_PARALLEL ------------------------------------------------------


def with_parallel(scenario: Scenario, n: int) -> Scenario:
    return scenario.model_copy(update={"ollama": scenario.ollama.model_copy(update={"num_parallel": n})})


async def test_default_num_parallel_keeps_the_measured_vram(scenario: Scenario, monkeypatch) -> None:
    monkeypatch.delenv(NUM_PARALLEL_ENV, raising=False)
    assert scenario.ollama.num_parallel == 1  # current Ollama's default (envconfig: Uint("OLLAMA_NUM_PARALLEL", 1))
    w = SimWorld(scenario, ManualClock())
    assert w.num_parallel == 1
    for s in scenario.students:
        await w.load(s.name, keep_alive=0)
        manual(w).advance(1)
    loads = {e.model.split(":")[0]: e.detail for e in w.load_log if e.action == "load"}
    for s in scenario.students:  # every student resident at exactly its measured figure
        assert loads[s.name].startswith(f"gpu {s.resident_mb:.0f} MB, cpu 0 MB")
        assert w.resident_mb(w.model(s.name), w.model(s.name).num_ctx) == s.resident_mb


async def test_kv_cache_grows_with_num_parallel_from_the_scenario(scenario: Scenario, monkeypatch) -> None:
    monkeypatch.delenv(NUM_PARALLEL_ENV, raising=False)
    w = SimWorld(with_parallel(scenario, 4), ManualClock())
    assert w.num_parallel == 4
    alpha = w.model("rh-alpha")
    ctx = alpha.num_ctx
    expected = 3847 + kv_cache_mb(ctx * 4) - kv_cache_mb(ctx)  # one slot measured, four allocated
    assert expected == pytest.approx(3847 + 3 * ctx * 0.0625)
    await w.load("rh-alpha")
    r = w.runner("rh-alpha")
    assert r is not None and r.size_mb == pytest.approx(expected) and r.gpu_mb == pytest.approx(expected)
    assert r.num_ctx == ctx  # per slot, as /api/ps reports context_length
    assert w.vram_used_mb() == pytest.approx(900 + expected)
    await w.load("rh-alpha", options={"num_ctx": 2048})  # a different num_ctx: reload at 2048 x 4
    r = w.runner("rh-alpha")
    assert r is not None and r.size_mb == pytest.approx(3847 + kv_cache_mb(8192) - kv_cache_mb(ctx))


async def test_ollama_num_parallel_env_overrides_the_scenario(scenario: Scenario, monkeypatch) -> None:
    monkeypatch.setenv(NUM_PARALLEL_ENV, "2")
    w = SimWorld(scenario, ManualClock())  # the scenario says 1
    assert w.num_parallel == 2
    await w.load("rh-beta")
    ctx = w.model("rh-beta").num_ctx
    r = w.runner("rh-beta")
    assert r is not None and r.size_mb == pytest.approx(4389 + kv_cache_mb(2 * ctx) - kv_cache_mb(ctx))
    assert SimWorld(scenario, ManualClock(), num_parallel=3).num_parallel == 3  # an explicit value wins


@pytest.mark.parametrize(("value", "expected"), [
    (None, 1), ("", 1), ("4", 4), (" 4 ", 4), ("'3'", 3), ('"2"', 2), ("0", 1), ("-1", 1), ("four", 1), ("2.5", 1),
])
def test_num_parallel_from_env_reads_like_ollama_envconfig(value, expected) -> None:
    env = {} if value is None else {NUM_PARALLEL_ENV: value}
    assert num_parallel_from_env(1, env) == expected
    if value in ("four", "2.5", "-1", None, ""):  # invalid or unset: the default (here the scenario's)
        assert num_parallel_from_env(3, env) == 3


async def test_num_parallel_slots_serve_requests_on_one_runner(scenario: Scenario, monkeypatch) -> None:
    monkeypatch.delenv(NUM_PARALLEL_ENV, raising=False)
    w = SimWorld(with_parallel(scenario, 2), ManualClock())
    g1, g2, g3 = (w.generation("rh-gamma", "p", keep_alive=-1) for _ in range(3))
    await g1.__aenter__()
    await asyncio.wait_for(g2.__aenter__(), 1)  # a second slot: no wait
    third = asyncio.ensure_future(g3.__aenter__())
    try:
        await asyncio.sleep(0.05)
        assert not third.done()  # both slots taken
        await g1.__aexit__(None, None, None)
        await asyncio.wait_for(third, 2)
        assert g1.runner is None and g2.runner is g3.runner
        assert [a for a, _ in actions(w)] == ["load"]
    finally:
        third.cancel()
        await g2.__aexit__(None, None, None)
        await g3.__aexit__(None, None, None)
