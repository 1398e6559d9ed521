"""Hardware probes. No GPU exists here: NVML is exercised through a stand-in `pynvml`
module with the real one's names, and for real on a machine that has a card."""

from __future__ import annotations

import types

import pytest

from rhtui.engine.hardware import HardwareSnapshot, NoGpuProbe, NvmlProbe, NvmlUnavailable, open_best_probe

MB = 1024 * 1024


class _NVMLError(Exception):
    pass


class _NotSupported(_NVMLError):
    pass


class _LibraryNotFound(_NVMLError):
    pass


class _FunctionNotFound(_NVMLError):
    pass


class _ArgumentVersionMismatch(_NVMLError):
    pass


class _LibraryMismatch(Exception):  # as in pynvml: not an NVMLError
    pass


V2 = 0x02000028  # pynvml.nvmlMemory_v2


def fake_pynvml(*, power_supported=True, procs_supported=True, present=True, memory_v2="ok",
                procs_mismatch=False, name_mismatch=False):
    """memory_v2: "ok" | "function_not_found" | "not_supported" | "version_mismatch" (how the
    driver answers nvmlDeviceGetMemoryInfo_v2) | "no_version_arg" (old bindings)."""
    m = types.SimpleNamespace()
    m.NVMLError = _NVMLError
    m.NVMLError_NotSupported = _NotSupported
    m.NVMLError_LibraryNotFound = _LibraryNotFound
    m.NVMLError_FunctionNotFound = _FunctionNotFound
    m.NVMLError_ArgumentVersionMismatch = _ArgumentVersionMismatch
    m.NVMLLibraryMismatchError = _LibraryMismatch
    m.nvmlMemory_v2 = V2
    m.NVML_TEMPERATURE_GPU = 0
    m.calls = []

    def init():
        if not present:
            raise _LibraryNotFound("NVML Shared Library Not Found")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: m.calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: 1
    m.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    def name(h):
        if name_mismatch:
            raise _LibraryMismatch("Unversioned function called and the pyNVML version does not match")
        return b"NVIDIA GeForce RTX 4070 SUPER"

    m.nvmlDeviceGetName = name
    # v2: 300 MB reserved by the driver apart from 4447 used; v1 counts it in used.
    v1 = types.SimpleNamespace(total=12282 * MB, used=4747 * MB, free=7535 * MB)
    v2 = types.SimpleNamespace(version=V2, total=12282 * MB, reserved=300 * MB, used=4447 * MB, free=7535 * MB)
    m.memory_calls = []

    def memory(h, version=None):
        m.memory_calls.append(version)
        if not version:
            return v1
        assert version == V2
        if memory_v2 == "function_not_found":
            raise _FunctionNotFound()
        if memory_v2 == "not_supported":
            raise _NotSupported()
        if memory_v2 == "version_mismatch":
            raise _ArgumentVersionMismatch()
        return v2

    if memory_v2 == "no_version_arg":
        m.nvmlDeviceGetMemoryInfo = lambda h: (m.memory_calls.append(None), v1)[1]
    else:
        m.nvmlDeviceGetMemoryInfo = memory
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    m.nvmlDeviceGetTemperature = lambda h, kind: 64

    def power(h):
        if not power_supported:
            raise _NotSupported()
        return 182_500

    def procs(h):
        if procs_mismatch:
            raise _LibraryMismatch("Unversioned function called and the pyNVML version does not match "
                                   "the NVML lib version. ... nvmlDeviceGetComputeRunningProcesses_v2")
        if not procs_supported:
            raise _NotSupported()
        return [types.SimpleNamespace(pid=4242, usedGpuMemory=3847 * MB),
                types.SimpleNamespace(pid=7, usedGpuMemory=None)]

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
    assert probe.memory_api == "v2"  # used 4447 + reserved 300: total - free
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
    assert snap.source == "none" and snap.vram_used_mb is None
    assert snap.ram_total_mb is not None and snap.ram_total_mb > 0


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


@pytest.mark.parametrize("answer", ["function_not_found", "not_supported", "version_mismatch", "no_version_arg"])
async def test_memory_info_falls_back_to_v1_where_the_driver_lacks_v2(monkeypatch, answer):
    fake = fake_pynvml(memory_v2=answer)
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    probe = await NvmlProbe.open()
    assert probe.memory_api == "v1"
    snap = await probe.sample()
    assert (snap.vram_total_mb, snap.vram_used_mb, snap.vram_free_mb) == (12282, 4747, 7535)
    tried_v2 = [v for v in fake.memory_calls if v]
    assert len(tried_v2) <= 1 and fake.memory_calls[-1] is None  # v2 asked once at most, then v1 only
    await probe.sample()
    assert len([v for v in fake.memory_calls if v]) == len(tried_v2)


async def test_used_counts_reserved_memory(monkeypatch):
    fake = fake_pynvml()
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    probe = await NvmlProbe.open()
    snap = await probe.sample()
    assert fake.memory_calls[-1] == V2
    assert snap.vram_used_mb == 4447 + 300 and snap.vram_free_mb is not None
    assert snap.vram_used_mb + snap.vram_free_mb == snap.vram_total_mb


async def test_library_mismatch_is_like_no_library(monkeypatch):
    for fake in (fake_pynvml(procs_mismatch=True), fake_pynvml(name_mismatch=True)):
        monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
        with pytest.raises(NvmlUnavailable, match="nvidia-ml-py does not match the NVIDIA driver"):
            await NvmlProbe.open()
        assert fake.calls == ["shutdown"]  # NVML closed again
        probe = await open_best_probe()
        assert isinstance(probe, NoGpuProbe) and "matches the driver" in probe.reason
        assert (await probe.sample()).source == "none"


async def test_a_mismatch_after_opening_never_breaks_sampling(monkeypatch):
    fake = fake_pynvml()
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    probe = await NvmlProbe.open()

    def mismatch(h):
        raise _LibraryMismatch("Unversioned function called")

    fake.nvmlDeviceGetComputeRunningProcesses = mismatch
    snap = await probe.sample()
    assert snap.process_vram_mb is None and snap.vram_used_mb == 4747


def test_the_installed_pynvml_has_what_the_probe_uses():
    pynvml = pytest.importorskip("pynvml")
    assert not issubclass(pynvml.NVMLLibraryMismatchError, pynvml.NVMLError)
    for name in ("NVMLError_FunctionNotFound", "NVMLError_NotSupported", "NVMLError_ArgumentVersionMismatch"):
        assert issubclass(getattr(pynvml, name), pynvml.NVMLError)
    assert pynvml.nvmlMemory_v2 == V2
    assert "version" in __import__("inspect").signature(pynvml.nvmlDeviceGetMemoryInfo).parameters
    assert [f for f, _ in pynvml.c_nvmlMemory_v2_t._fields_] == ["version", "total", "reserved", "free", "used"]
