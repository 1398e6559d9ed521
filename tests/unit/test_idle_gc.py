"""Full collections wait for a pause in the input; CPython gets them back afterwards."""

from __future__ import annotations

import gc

import pytest

from rhtui.tui.idle_gc import NEVER, IdleCollector, generational_gc


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def collector():
    clock = Clock()
    woken: list[int] = []
    c = IdleCollector(lambda: woken.append(1), idle_s=0.125, max_defer_s=4.0, clock=clock)
    before = gc.get_threshold()
    assert c.install()
    yield c, clock, woken
    c.uninstall()
    assert gc.get_threshold() == before


def make_due(c: IdleCollector) -> list[list[object]]:
    """Enough young collections, and new objects reaching the oldest generation, for
    CPython to want a full collection. Keep the result alive."""
    keep: list[list[object]] = [[] for _ in range(len(gc.get_objects(2)) // 3 + 1)]
    for _ in range(c._every):
        gc.collect(1)
    return keep


def test_install_takes_over_full_collections_and_uninstall_gives_them_back():
    before = gc.get_threshold()
    c = IdleCollector(lambda: None)
    assert c.install()
    assert gc.get_threshold() == (before[0], before[1], NEVER)
    assert not IdleCollector(lambda: None).install(), "a second collector must not stack"
    c.uninstall()
    assert gc.get_threshold() == before
    assert c._on_gc not in gc.callbacks
    c.uninstall()  # twice is harmless
    assert gc.get_threshold() == before


def test_nothing_is_due_until_cpython_would_consider_a_full_collection(collector):
    c, clock, woken = collector
    gc.collect()
    for _ in range(c._every - 1):
        gc.collect(1)
    assert woken == [] and c.step() is None and c.collections == 0
    gc.collect(1)
    assert woken == [1]
    gc.collect(1)
    assert woken == [1], "woken once per due collection"


def test_a_wake_that_was_lost_is_sent_again(collector):
    c, clock, woken = collector
    keep = make_due(c)
    assert woken == [1]
    gc.collect(1)
    assert woken == [1]
    clock.t += 2 * c.max_defer_s
    gc.collect(1)
    assert woken == [1, 1]
    del keep


def test_a_due_collection_waits_for_quiet_input(collector):
    c, clock, woken = collector
    keep = make_due(c)  # noqa: F841
    c.note_input()
    clock.t += 0.03125
    delay = c.step()
    assert delay == 0.09375 and c.collections == 0
    clock.t += 0.09375
    assert c.step() is None
    assert c.collections == 1
    assert gc.get_count()[2] == 0
    assert c.step() is None and c.collections == 1, "nothing more until the next one is due"


def test_constant_input_defers_it_only_so_long(collector):
    c, clock, woken = collector
    keep = make_due(c)  # noqa: F841
    for _ in range(32):  # input every 0.125 s for 4 s
        c.note_input()
        clock.t += 0.0625
        assert c.step() == 0.0625
        clock.t += 0.0625
    c.note_input()
    assert c.step() is None and c.collections == 1, "after max_defer_s it runs anyway"


def test_not_installed_when_automatic_collection_is_off():
    gc.disable()
    try:
        assert not IdleCollector(lambda: None).install()
    finally:
        gc.enable()


def test_the_next_try_is_never_later_than_the_deferral_limit(collector):
    c, clock, woken = collector
    keep = make_due(c)  # noqa: F841
    clock.t += 3.96875
    c.note_input()
    assert c.step() == 0.03125, "the limit (4 s) is nearer than the quiet moment (0.125 s)"


def test_only_cpythons_three_generation_collector_is_taken_over(monkeypatch):
    assert generational_gc((3, 11), "cpython") and generational_gc((3, 13), "cpython")
    assert not generational_gc((3, 14), "cpython")  # the incremental collector: two generations
    assert not generational_gc((3, 11), "pypy")
    before = gc.get_threshold()
    monkeypatch.setattr("rhtui.tui.idle_gc.generational_gc", lambda: False)
    c = IdleCollector(lambda: None)
    assert not c.install()
    assert gc.get_threshold() == before and c._on_gc not in gc.callbacks
