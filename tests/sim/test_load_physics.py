"""Load physics on a virtual clock: one load at a time, a copy's bandwidth taken from decoding,
no load beside a busy model that leaves no room, and the counters a benchmark reads.

Ollama's scheduler (server/sched.go) is the reference: ``GetRunner`` serves a loaded model at
once, ``processPending`` takes the other requests one at a time and is held until the load it
started has ended, and waits on ``unloadedCh`` when ``findRunnerToUnload`` had to pick a busy
runner. Every figure below comes from the scenario's numbers."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Coroutine
from typing import Any

import pytest

from rhtui.sim.generation import Generation
from rhtui.sim.scenario import Scenario, ScenarioError, load_scenario
from rhtui.sim.world import SimWorld, WorldStats

EPOCH = 1_700_000_000.0


class VirtualClock:
    """Simulated time that moves only when every task waits: sleeps end in deadline order.

    `drive()` runs coroutines to the end; before each wake-up it gives every ready task a fixed
    number of loop turns (no real time passes), so a run is the same every time."""

    speed = 1.0

    def __init__(self) -> None:
        self._t = 0.0
        self._seq = 0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return EPOCH + self._t

    def monotonic(self) -> float:
        return self._t

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + max(0.0, seconds), self._seq, fut))
        self._seq += 1
        await fut

    async def drive(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        idle = 0
        try:
            while True:
                for _ in range(100):
                    await asyncio.sleep(0)
                if all(t.done() for t in tasks):
                    return [t.result() for t in tasks]
                self._sleepers = [s for s in self._sleepers if not s[2].done()]
                heapq.heapify(self._sleepers)
                if not self._sleepers:  # someone waits for an event: let its real-time poll run
                    idle += 1
                    assert idle < 100, "every task waits and nothing sleeps: a deadlock"
                    await asyncio.sleep(0.005)
                    continue
                idle = 0
                deadline, _, fut = heapq.heappop(self._sleepers)
                self._t = max(self._t, deadline)
                fut.set_result(None)
        finally:
            for task in tasks:
                task.cancel()


def make(sc: Scenario, seed: int = 5) -> tuple[SimWorld, VirtualClock]:
    clock = VirtualClock()
    return SimWorld(sc, clock, seed=seed, faults_enabled=False), clock


def variant(sc: Scenario, **tables: dict[str, Any]) -> Scenario:
    """`sc` with some fields of its tables changed: ``variant(sc, gpu={"total_mb": 24576})``."""
    return sc.model_copy(update={k: getattr(sc, k).model_copy(update=v) for k, v in tables.items()})


async def generate(w: SimWorld, name: str, n: int, *, after: float = 0.0, **kw: Any) -> Generation:
    """A generation of `n` tokens of `name`, asked for `after` simulated seconds."""
    if after:
        await w.clock.sleep(after)
    async with w.generation(name, "Write a research proposal.", options={"num_predict": n}, **kw) as g:
        async for _ in g.stream():
            pass
    assert g.eval_count == n
    return g


async def load_after(w: SimWorld, name: str, after: float, **kw: Any) -> float:
    await w.clock.sleep(after)
    return await w.load(name, **kw)


def loads(w: SimWorld) -> list[tuple[str, float]]:
    return [(e.model.split(":")[0], e.ts) for e in w.load_log if e.action == "load"]


def load_time(sc: Scenario, student: str) -> float:
    """The scenario's load time of a student fully on the GPU: init, then the copy at the
    slower of the disk and PCIe."""
    gb = sc.student(student).weights_mb / 1000.0
    return sc.disk.load_init_s + gb / min(sc.disk.read_gbps, sc.pcie.gbps)


@pytest.fixture
def sc() -> Scenario:
    return load_scenario("rtx4070s")


# -- 1. one load at a time --------------------------------------------------------------------


async def test_a_second_load_waits_until_the_first_has_ended(sc: Scenario) -> None:
    sc = variant(sc, gpu={"total_mb": 24576})  # room for both: only the scheduler orders them
    w, clock = make(sc)
    lb, lg = load_time(sc, "rh-beta"), load_time(sc, "rh-gamma")
    took_b, took_g = await clock.drive(w.load("rh-beta"), w.load("rh-gamma"))
    assert took_b == pytest.approx(lb) and lb == pytest.approx(0.8 + 4.110 / 3.0)
    assert took_g == pytest.approx(lb + lg)  # its own load starts when beta's has ended
    assert loads(w) == [("rh-beta", pytest.approx(0.0)), ("rh-gamma", pytest.approx(lb))]
    st = w.stats()
    assert (st.loads, st.loading_s, st.load_decode_overlap_s) == (2, pytest.approx(lb + lg), 0.0)


async def test_a_loaded_model_is_served_during_an_unrelated_load(sc: Scenario) -> None:
    w, clock = make(sc)
    await clock.drive(w.load("rh-alpha"))
    t0 = w.elapsed()
    lb = load_time(sc, "rh-beta")
    took, g = await clock.drive(w.load("rh-beta"), generate(w, "rh-alpha", 40, after=0.5))
    assert took == pytest.approx(lb)
    assert g.load_s == 0.0 and g.t_start == pytest.approx(t0 + 0.5)
    assert g.t_start + g.total_s < t0 + lb  # done before beta was ready: it waited for nothing


async def test_a_request_for_the_model_being_loaded_waits_for_that_load_only(sc: Scenario) -> None:
    w, clock = make(sc)
    lb = load_time(sc, "rh-beta")
    _, g = await clock.drive(w.load("rh-beta"), generate(w, "rh-beta", 40, after=0.5))
    assert g.load_s == pytest.approx(lb - 0.5)
    assert loads(w) == [("rh-beta", pytest.approx(0.0))]


async def test_a_request_waiting_for_an_unload_holds_up_the_ones_behind_it(sc: Scenario) -> None:
    # processPending serves one request at a time: while beta waits for busy zeta to go,
    # delta waits behind it, although delta would fit beside zeta.
    w, clock = make(sc)
    w.add_external(2000)  # 12282 - 900 - 2000 - 5012 (zeta) = 4370 free: delta 3821 fits, beta 4389 does not
    await clock.drive(w.load("rh-zeta", keep_alive=-1))
    t0 = w.elapsed()
    g, took_b, took_d = await clock.drive(
        generate(w, "rh-zeta", 400), load_after(w, "rh-beta", 1.0), load_after(w, "rh-delta", 2.0))
    zeta_done = g.t_start + g.total_s
    lb, ld = load_time(sc, "rh-beta"), load_time(sc, "rh-delta")
    beta_at = zeta_done + sc.disk.unload_s  # zeta is evicted at release; the scheduler waits for its memory
    assert loads(w)[1:] == [("rh-beta", pytest.approx(beta_at)), ("rh-delta", pytest.approx(beta_at + lb))]
    assert took_b == pytest.approx(beta_at + lb - (t0 + 1.0))
    assert took_d == pytest.approx(beta_at + lb + ld - (t0 + 2.0))


async def test_a_cancelled_load_is_aborted_and_the_next_one_starts(sc: Scenario) -> None:
    # Ollama waits for a load with the request's context (WaitUntilRunning(req.ctx)): a client
    # that goes away aborts it, the runner is expired, and the scheduler serves the next request.
    sc = variant(sc, gpu={"total_mb": 24576})
    w, clock = make(sc)

    async def cancel_beta(task: asyncio.Future[float]) -> None:
        await clock.sleep(1.0)
        task.cancel()

    beta = asyncio.ensure_future(w.load("rh-beta"))
    took_g, _ = await clock.drive(load_after(w, "rh-gamma", 0.2), cancel_beta(beta))
    assert beta.cancelled() and not w.is_loaded("rh-beta") and w.is_loaded("rh-gamma")
    aborted = [e for e in w.load_log if e.model == "rh-beta:latest"][-1]
    assert (aborted.action, aborted.ts) == ("unload", pytest.approx(1.0)) and "aborted" in aborted.detail
    assert loads(w) == [("rh-beta", pytest.approx(0.0)), ("rh-gamma", pytest.approx(1.0))]
    assert took_g == pytest.approx((1.0 - 0.2) + load_time(sc, "rh-gamma"))  # asked at 0.2, started at 1.0
    assert w.stats().loading_s == pytest.approx(1.0 + load_time(sc, "rh-gamma"))


# -- 2. a load's copy takes memory bandwidth from a decode --------------------------------------


@pytest.mark.parametrize(("disk", "pcie"), [
    ({}, {}),  # the reference: the disk (3 GB/s) sets the pace, PCIe (25 GB/s) waits for it
    ({"read_gbps": 12.0}, {"gbps": 6.0}),  # a fast disk behind a narrow link: PCIe sets the pace
])
async def test_a_load_overlapping_a_decode_slows_it_by_what_its_copy_writes(
        sc: Scenario, disk: dict[str, Any], pcie: dict[str, Any]) -> None:
    sc = variant(sc, disk=disk, pcie=pcie)
    copy_gbps = min(sc.disk.read_gbps, sc.pcie.gbps)
    copy_s = 3.560 / copy_gbps  # delta's weights
    bw = sc.gpu.bandwidth_gbps
    n, start = 1500, 3.0

    alone, clock = make(sc)
    await clock.drive(alone.load("rh-alpha"))
    (g0,) = await clock.drive(generate(alone, "rh-alpha", n))

    w, clock = make(sc)
    await clock.drive(w.load("rh-alpha"))
    ra = w.runner("rh-alpha")
    assert ra is not None
    solo = w.decode_rate(ra)
    rates: list[float] = []

    async def sample(at: float) -> None:
        await clock.sleep(at)
        rates.append(w.decode_rate(ra))

    t0 = w.elapsed()
    init = sc.disk.load_init_s
    g, took, *_ = await clock.drive(
        generate(w, "rh-alpha", n), load_after(w, "rh-delta", start),
        sample(start + init / 2), sample(start + init + copy_s / 2), sample(start + init + copy_s + 0.5))
    assert took == pytest.approx(init + copy_s)
    assert g.t_start + g.total_s > t0 + start + took  # the whole load ran during the decode
    # the runner's start takes no bandwidth; the copy takes what it writes; then it is over
    assert rates == [pytest.approx(solo), pytest.approx(solo * (bw - copy_gbps) / bw), pytest.approx(solo)]
    # n tokens took copy_s x copy_gbps / bw longer: the time the card spent writing the weights.
    # The stream asks for its rate every tick: a change is seen within one tick at each end.
    tick = 0.05 * clock.speed
    extra = g.eval_s - g0.eval_s
    assert g0.eval_s == pytest.approx(n / solo)
    assert extra == pytest.approx(copy_s * copy_gbps / bw, abs=2 * tick * copy_gbps / bw)
    assert extra > 0.5 * copy_s * copy_gbps / bw
    st = w.stats()
    assert st.load_decode_overlap_s == pytest.approx(init + copy_s)
    assert st.peak_vram_mb == pytest.approx(900 + 3847 + 3821)


async def test_an_offloaded_load_copies_only_its_gpu_part(sc: Scenario) -> None:
    sc = variant(sc, disk={"read_gbps": 50.0}, pcie={"gbps": 5.0})
    w, _ = make(sc)
    m = w.model("rh-zeta")
    assert w.copy_s(m.weights_mb) == pytest.approx(4.7 / 5.0)  # all of it over PCIe
    assert w.copy_s(m.weights_mb, 0.5) == pytest.approx(4.7 * 0.5 / 5.0)  # half stays in RAM
    assert w.copy_s(m.weights_mb, 0.0) == pytest.approx(4.7 / 50.0)  # read from disk only
    assert w.load_time_s(m, 0.5) == pytest.approx(0.8 + 0.47)


# -- 3. no load beside a busy model when there is no room ----------------------------------------


@pytest.mark.parametrize(("external_mb", "max_loaded"), [
    (2000, 3),  # beta (4389) does not fit beside zeta (5012): 12282 - 900 - 2000 - 5012 = 4370
    (0, 1),  # it fits, but OLLAMA_MAX_LOADED_MODELS = 1
])
async def test_a_preload_waits_for_the_busy_model_to_finish_and_go(
        sc: Scenario, external_mb: float, max_loaded: int) -> None:
    sc = variant(sc, ollama={"max_loaded_models": max_loaded})
    w, clock = make(sc)
    if external_mb:
        w.add_external(external_mb)
    await clock.drive(w.load("rh-zeta", keep_alive=-1))
    g, took = await clock.drive(generate(w, "rh-zeta", 600), load_after(w, "rh-beta", 2.0))
    zeta_done = g.t_start + g.total_s
    evict = [e for e in w.load_log if e.action == "evict"]
    assert [(e.model, e.ts) for e in evict] == [("rh-zeta:latest", pytest.approx(zeta_done))]
    assert "busy when picked" in evict[0].detail
    rb = w.runner("rh-beta")
    assert rb is not None
    beta_start = rb.loaded_at  # never beside zeta: once zeta's memory is back (waitForVRAMRecovery)
    assert beta_start == pytest.approx(zeta_done + sc.disk.unload_s)
    assert w.loaded_names() == ["rh-beta:latest"]
    st = w.stats()
    assert st.load_decode_overlap_s == 0.0
    assert st.peak_vram_mb == pytest.approx(900 + external_mb + 5012)  # zeta alone was the most
    assert took == pytest.approx(beta_start + load_time(sc, "rh-beta") - (g.t_start + 2.0))


async def test_a_preload_that_fits_loads_while_the_other_decodes(sc: Scenario) -> None:
    w, clock = make(sc)
    await clock.drive(w.load("rh-alpha", keep_alive=-1))
    t0 = w.elapsed()
    g, took = await clock.drive(generate(w, "rh-alpha", 600), load_after(w, "rh-delta", 1.0))
    assert loads(w)[-1] == ("rh-delta", pytest.approx(t0 + 1.0)) and took == pytest.approx(load_time(sc, "rh-delta"))
    assert sorted(w.loaded_names()) == ["rh-alpha:latest", "rh-delta:latest"]
    st = w.stats()
    assert st.load_decode_overlap_s == pytest.approx(took)
    assert st.peak_vram_mb == pytest.approx(900 + 3847 + 3821)
    assert st.peak_vram_fraction == pytest.approx((900 + 3847 + 3821) / 12282) and st.peak_vram_fraction < 0.9


# -- 4. what a benchmark counts --------------------------------------------------------------


async def test_stats_count_loads_and_remember_the_peak(sc: Scenario) -> None:
    w, clock = make(sc)
    assert w.stats() == WorldStats(loads=0, loading_s=0.0, load_decode_overlap_s=0.0,
                                   peak_vram_mb=900.0, vram_total_mb=12282.0)
    await clock.drive(w.load("rh-alpha", keep_alive="10s"))
    w.add_external(4000, 5.0)  # a spike of another process, over before anyone looks again
    await clock.drive(clock.sleep(30.0))  # alpha expires meanwhile
    assert w.vram_used_mb() == 900 and not w.is_loaded("rh-alpha")
    st = w.stats()
    assert (st.loads, st.loading_s) == (1, pytest.approx(load_time(sc, "rh-alpha")))
    assert st.peak_vram_mb == pytest.approx(900 + 3847 + 4000)
    assert st.load_decode_overlap_s == 0.0
    w.add_external(2000)  # until cleared
    await clock.drive(clock.sleep(1.0))
    w.clear_external()
    w.add_external(9000, at_s=w.elapsed() + 100)  # not yet: does not count
    assert w.stats().peak_vram_mb == pytest.approx(900 + 3847 + 4000)
    w.add_external(20000)
    assert w.stats().peak_vram_mb == 12282  # what NVML shows: never more than the card
    assert sum(1 for e in w.load_log if e.action == "load") == w.stats().loads


async def test_memory_never_taken_is_not_counted_when_a_waiting_load_is_aborted(sc: Scenario) -> None:
    w, clock = make(sc)
    w.add_external(2000)
    await clock.drive(w.load("rh-zeta"))  # idle; beta (4389) must evict it and wait for its memory

    async def cancel_soon(task: asyncio.Future[float]) -> None:
        await clock.sleep(0.1)  # within zeta's 0.3 s shutdown: beta's memory is not taken yet
        task.cancel()

    beta = asyncio.ensure_future(w.load("rh-beta"))
    await clock.drive(cancel_soon(beta))
    assert beta.cancelled() and w.loaded_names() == []
    st = w.stats()
    assert st.peak_vram_mb == pytest.approx(900 + 2000 + 5012)  # beta's 4389 MB never came
    assert (st.loads, st.loading_s) == (2, pytest.approx(load_time(sc, "rh-zeta")))  # beta's: none
    assert [e.action for e in w.load_log] == ["load", "evict", "load", "unload"]


def test_a_link_without_a_rate_is_refused(tmp_path) -> None:
    base = load_scenario("rtx4070s")
    (tmp_path / "zero.toml").write_text(
        '[gpu]\nname = "G"\ntotal_mb = 8000\nbandwidth_gbps = 400\n[pcie]\ngbps = 0\n'
        '[[students]]\nname = "s"\nbase = "llama2:7b"\nweights_mb = 3000\nresident_mb = 3200\n'
        'tokens_mean = 500\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "zero.toml")
    assert "pcie.gbps" in str(info.value)
    assert base.pcie.gbps == 25  # a load copies over it; 0 would never end
