"""Hardware probes. No GPU exists here: NVML is exercised through a stand-in `pynvml`
module with the real one's names, and for real on a machine that has a card."""

from __future__ import annotations

import types

import pytest

from rhtui.engine import hardware
from rhtui.engine.hardware import HardwareSnapshot, NoGpuProbe, NvmlProbe, NvmlUnavailable, open_best_probe

MB = 1024 * 1024


class _NVMLError(Exception):
    pass


class _NotSupported(_NVMLError):
    pass


class _LibraryNotFound(_NVMLError):
    pass


def fake_pynvml(*, power_supported=True, procs_supported=True, present=True):
    m = types.SimpleNamespace()
    m.NVMLError = _NVMLError
    m.NVMLError_NotSupported = _NotSupported
    m.NVMLError_LibraryNotFound = _LibraryNotFound
    m.NVML_TEMPERATURE_GPU = 0
    m.calls = []

    def init():
        if not present:
            raise _LibraryNotFound("NVML Shared Library Not Found")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: m.calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    m.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 4070 SUPER"
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=12282 * MB, used=4747 * MB, free=7535 * MB)
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    m.nvmlDeviceGetTemperature = lambda h, kind: 64

    def power(h):
        if not power_supported:
            raise _NotSupported()
        return 182_500

    def procs(h):
        if not procs_supported:
            raise _NotSupported()
        return [types.SimpleNamespace(pid=4242, usedGpuMemory=3847 * MB), types.SimpleNamespace(pid=7, usedGpuMemory=None)]

    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetComputeRunningProcesses = procs
    return m


async def test_nvml_probe_reads_the_card(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake_pynvml())
    probe = await NvmlProbe.open(clock=lambda: 100.0)
    snap = await probe.sample()
    assert probe.gpu_name == "NVIDIA GeForce RTX 4070 SUPER" and "4070" in probe.name
    assert snap.source == "nvml" and snap.ts == 100.0
    assert snap.vram_total_mb == 12282 and snap.vram_used_mb == 4747 and snap.vram_free_mb == 7535
    assert snap.gpu_util_pct == 87 and snap.temp_c == 64 and snap.power_w == pytest.approx(182.5)
    assert snap.process_vram_mb == ((4242, 3847.0), (7, None))
    assert snap.ram_total_mb and snap.cpu_pct is not None
    await probe.close()


async def test_what_the_card_does_not_report_is_none_not_zero(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake_pynvml(power_supported=False, procs_supported=False))
    probe = await NvmlProbe.open()
    snap = await probe.sample()
    assert snap.power_w is None and snap.process_vram_mb is None
    assert snap.vram_used_mb == 4747


async def test_no_driver_falls_back_to_no_gpu_probe_that_says_why(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake_pynvml(present=False))
    with pytest.raises(NvmlUnavailable, match="no NVIDIA driver"):
        await NvmlProbe.open()
    probe = await open_best_probe()
    assert isinstance(probe, NoGpuProbe) and not probe.has_vram
    assert "driver" in probe.reason and "/api/ps" in probe.name
    snap = await probe.sample()
    assert snap.source == "none" and snap.vram_used_mb is None and snap.ram_total_mb > 0


async def test_real_nvml_on_this_machine_is_absent_or_works():
    """With the real nvidia-ml-py: no GPU here means NvmlUnavailable; on a GPU box, a real snapshot."""
    try:
        probe = await NvmlProbe.open()
    except NvmlUnavailable as exc:
        assert str(exc)
        return
    snap = await probe.sample()
    assert snap.vram_total_mb and snap.vram_total_mb > 0
    await probe.close()


def test_snapshot_derived_values():
    s = HardwareSnapshot(ts=0, source="sim", vram_total_mb=1000, vram_used_mb=950)
    assert s.vram_free_mb == 50 and s.vram_fraction == pytest.approx(0.95)
    assert HardwareSnapshot(ts=0, source="none").vram_fraction is None
    t = HardwareSnapshot(ts=0, source="none").with_vram(10, 100)
    assert t.vram_fraction == pytest.approx(0.1)
