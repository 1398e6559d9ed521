"""Hardware probes: one immutable `HardwareSnapshot` per sample.

`NvmlProbe` reads the card through nvidia-ml-py (the `pynvml` module); every
NVML call runs in a worker thread so the event loop never blocks. What the card
does not report is `None` (shown as N/A), never a made-up number.
`NoGpuProbe` reads RAM and CPU only: VRAM is then judged from Ollama's /api/ps.
The simulator's probe lives in `rhtui.sim.probe`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import psutil

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HardwareSnapshot:
    ts: float
    source: str
    """'nvml', 'none' (no GPU visible) or 'sim'."""
    gpu_name: str | None = None
    vram_total_mb: float | None = None
    vram_used_mb: float | None = None
    gpu_util_pct: float | None = None
    temp_c: float | None = None
    power_w: float | None = None
    process_vram_mb: tuple[tuple[int, float | None], ...] | None = None
    """(pid, MB) per process on the GPU; MB is None where the driver hides it; None = not reported."""
    ram_used_mb: float | None = None
    ram_total_mb: float | None = None
    cpu_pct: float | None = None

    @property
    def vram_free_mb(self) -> float | None:
        if self.vram_total_mb is None or self.vram_used_mb is None:
            return None
        return max(0.0, self.vram_total_mb - self.vram_used_mb)

    @property
    def vram_fraction(self) -> float | None:
        if not self.vram_total_mb or self.vram_used_mb is None:
            return None
        return self.vram_used_mb / self.vram_total_mb

    def with_vram(self, used_mb: float | None, total_mb: float | None) -> "HardwareSnapshot":
        """A copy with VRAM filled in (used when VRAM is judged from Ollama's /api/ps)."""
        from dataclasses import replace

        return replace(self, vram_used_mb=used_mb, vram_total_mb=total_mb)


class HardwareProbe(Protocol):
    name: str
    has_vram: bool
    """True when the probe measures the card's VRAM itself."""

    async def sample(self) -> HardwareSnapshot: ...

    async def close(self) -> None: ...


class HostStats:
    """RAM and CPU from psutil. The first cpu_percent(None) of a process is 0.0, so prime it."""

    def __init__(self) -> None:
        psutil.cpu_percent(None)

    def read(self) -> dict[str, float]:
        vm = psutil.virtual_memory()
        return {
            "ram_used_mb": (vm.total - vm.available) / MB,
            "ram_total_mb": vm.total / MB,
            "cpu_pct": psutil.cpu_percent(None),
        }


class NoGpuProbe:
    """No NVML: RAM and CPU only. VRAM is judged from Ollama's /api/ps instead."""

    name = "no GPU (VRAM judged from Ollama's /api/ps)"
    has_vram = False

    def __init__(self, reason: str = "NVML not available", clock: Callable[[], float] = time.time):
        self.reason = reason
        self._clock = clock
        self._host = HostStats()

    async def sample(self) -> HardwareSnapshot:
        return HardwareSnapshot(ts=self._clock(), source="none", **self._host.read())

    async def close(self) -> None:
        return None


class NvmlUnavailable(RuntimeError):
    """NVML could not be initialised; the message says why."""


def _nvml_call(fn, *args):
    """Call an NVML function; None where the card does not support it."""
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError_NotSupported:
        return None
    except pynvml.NVMLError:
        return None


@dataclass
class NvmlProbe:
    """One GPU through nvidia-ml-py. Every NVML call runs off the event loop."""

    index: int = 0
    clock: Callable[[], float] = time.time
    name: str = "NVML"
    has_vram: bool = True
    gpu_name: str | None = None
    _handle: object = field(default=None, repr=False)
    _host: HostStats | None = field(default=None, repr=False)
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, index: int = 0, clock: Callable[[], float] = time.time) -> "NvmlProbe":
        probe = cls(index=index, clock=clock)
        await asyncio.to_thread(probe._init)
        return probe

    def _init(self) -> None:
        try:
            import pynvml
        except ImportError as exc:  # pragma: no cover - a dependency
            raise NvmlUnavailable(f"nvidia-ml-py is not installed ({exc})") from exc
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError_LibraryNotFound as exc:
            raise NvmlUnavailable(
                "the NVIDIA driver library (libnvidia-ml) was not found: no NVIDIA driver on this machine"
            ) from exc
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML failed to start: {exc}") from exc
        try:
            count = pynvml.nvmlDeviceGetCount()
            if self.index >= count:
                raise NvmlUnavailable(f"GPU index {self.index} asked for, but NVML sees {count} GPU(s)")
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            name = pynvml.nvmlDeviceGetName(self._handle)
            self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise NvmlUnavailable(f"NVML could not open GPU {self.index}: {exc}") from exc
        self.name = f"NVML: {self.gpu_name}"
        self._host = HostStats()

    def _read(self) -> HardwareSnapshot:
        import pynvml

        h = self._handle
        mem = _nvml_call(pynvml.nvmlDeviceGetMemoryInfo, h)
        util = _nvml_call(pynvml.nvmlDeviceGetUtilizationRates, h)
        temp = _nvml_call(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
        power_mw = _nvml_call(pynvml.nvmlDeviceGetPowerUsage, h)
        procs = _nvml_call(pynvml.nvmlDeviceGetComputeRunningProcesses, h)
        per_proc = None
        if procs is not None:
            per_proc = tuple(
                (int(p.pid), (p.usedGpuMemory / MB) if getattr(p, "usedGpuMemory", None) else None)
                for p in procs
            )
        host = self._host.read() if self._host else {}
        return HardwareSnapshot(
            ts=self.clock(),
            source="nvml",
            gpu_name=self.gpu_name,
            vram_total_mb=mem.total / MB if mem is not None else None,
            vram_used_mb=mem.used / MB if mem is not None else None,
            gpu_util_pct=float(util.gpu) if util is not None else None,
            temp_c=float(temp) if temp is not None else None,
            power_w=power_mw / 1000.0 if power_mw is not None else None,
            process_vram_mb=per_proc,
            **host,
        )

    async def sample(self) -> HardwareSnapshot:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # samples never overlap
            return await asyncio.to_thread(self._read)

    async def close(self) -> None:
        import pynvml

        if self._handle is not None:
            self._handle = None
            await asyncio.to_thread(pynvml.nvmlShutdown)


async def open_best_probe(clock: Callable[[], float] = time.time, index: int = 0) -> HardwareProbe:
    """NVML when a card is there; otherwise a NoGpuProbe that says why."""
    try:
        return await NvmlProbe.open(index=index, clock=clock)
    except NvmlUnavailable as exc:
        return NoGpuProbe(reason=str(exc), clock=clock)
