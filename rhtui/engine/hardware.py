"""Hardware probes: one immutable `HardwareSnapshot` per sample.

`NvmlProbe` reads the card through nvidia-ml-py (the `pynvml` module); every
NVML call runs in a worker thread so the event loop never blocks. What the card
does not report is `None` (shown as N/A), never a made-up number.
`NoGpuProbe` reads RAM and CPU only: VRAM is then judged from Ollama's /api/ps.
The simulator's probe lives in `rhtui.sim.probe`.

VRAM "used" is ``total - free``: all the memory nobody else can have. NVML's
memory info v2 (``nvmlDeviceGetMemoryInfo(handle, version=nvmlMemory_v2)``,
read where the driver has it, else v1) reports the driver's and firmware's
``reserved`` memory beside ``used`` (drivers differ on whether ``used``
includes it); reserved memory is not free either, so the budget counts it:
``total - free`` is right either way, and is v1's ``used``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

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

    def with_vram(self, used_mb: float | None, total_mb: float | None) -> HardwareSnapshot:
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
        h = self._host.read()
        return HardwareSnapshot(ts=self._clock(), source="none", ram_used_mb=h["ram_used_mb"],
                                ram_total_mb=h["ram_total_mb"], cpu_pct=h["cpu_pct"])

    async def close(self) -> None:
        return None


class NvmlUnavailable(RuntimeError):
    """NVML could not be initialised; the message says why."""


class _NeverRaised(Exception):
    """Stands in for an exception class that the installed pynvml does not define."""


def _library_mismatch(pynvml) -> type[Exception]:
    """pynvml's NVMLLibraryMismatchError: raised (not an NVMLError) when the bindings call an NVML
    function that the driver's library lacks, e.g. nvmlDeviceGetComputeRunningProcesses_v3."""
    return getattr(pynvml, "NVMLLibraryMismatchError", None) or _NeverRaised


def _mismatch_text(exc: Exception) -> str:
    return (
        "nvidia-ml-py does not match the NVIDIA driver's NVML library "
        f"({exc}): install the nvidia-ml-py release that matches the driver, or update the driver"
    )


def _errors(pynvml, *names: str) -> tuple[type[Exception], ...]:
    return tuple(c for c in (getattr(pynvml, n, None) for n in names) if isinstance(c, type)) or (_NeverRaised,)


def _nvml_call(fn, *args, strict: bool = False):
    """Call an NVML function; None where the card does not support it. A bindings/driver
    mismatch is None too, or raised when `strict` (while the probe opens)."""
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:  # NotSupported, NoPermission, GpuIsLost, ...
        return None
    except _library_mismatch(pynvml):
        if strict:
            raise
        return None


@dataclass
class NvmlProbe:
    """One GPU through nvidia-ml-py. Every NVML call runs off the event loop."""

    index: int = 0
    clock: Callable[[], float] = time.time
    name: str = "NVML"
    has_vram: bool = True
    gpu_name: str | None = None
    memory_api: str = "v2"
    """NVML memory info in use: "v2" (reports reserved memory) until the driver turns it down, then "v1"."""
    _handle: object = field(default=None, repr=False)
    _host: HostStats | None = field(default=None, repr=False)
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, index: int = 0, clock: Callable[[], float] = time.time) -> NvmlProbe:
        probe = cls(index=index, clock=clock)
        await asyncio.to_thread(probe._init)
        return probe

    def _init(self) -> None:
        try:
            import pynvml
        except ImportError as exc:  # pragma: no cover - a dependency
            raise NvmlUnavailable(f"nvidia-ml-py is not installed ({exc})") from exc
        mismatch = _library_mismatch(pynvml)
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError_LibraryNotFound as exc:
            raise NvmlUnavailable(
                "the NVIDIA driver library (libnvidia-ml) was not found: no NVIDIA driver on this machine"
            ) from exc
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML failed to start: {exc}") from exc
        except mismatch as exc:  # like a missing library: no usable NVML
            raise NvmlUnavailable(_mismatch_text(exc)) from exc
        try:
            count = pynvml.nvmlDeviceGetCount()
            if self.index >= count:
                raise NvmlUnavailable(f"GPU index {self.index} asked for, but NVML sees {count} GPU(s)")
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            name = pynvml.nvmlDeviceGetName(self._handle)
            self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)
            self._read(strict=True)  # a first sample here: picks the memory API, shows a mismatch now
        except pynvml.NVMLError as exc:
            pynvml.nvmlShutdown()
            raise NvmlUnavailable(f"NVML could not open GPU {self.index}: {exc}") from exc
        except mismatch as exc:
            pynvml.nvmlShutdown()
            raise NvmlUnavailable(_mismatch_text(exc)) from exc
        except NvmlUnavailable:
            pynvml.nvmlShutdown()
            raise
        self.name = f"NVML: {self.gpu_name}"
        self._host = HostStats()

    def _memory(self, h, strict: bool = False):
        """Memory info v2 where the driver has it, else v1 (and v1 from then on)."""
        import pynvml

        version = getattr(pynvml, "nvmlMemory_v2", None)
        if self.memory_api == "v2" and version is not None:
            # An older driver lacks nvmlDeviceGetMemoryInfo_v2 (pynvml raises FunctionNotFound)
            # or turns the struct version down (NotSupported, ArgumentVersionMismatch).
            older = _errors(pynvml, "NVMLError_FunctionNotFound", "NVMLError_NotSupported",
                            "NVMLError_ArgumentVersionMismatch")
            try:
                return pynvml.nvmlDeviceGetMemoryInfo(h, version=version)
            except older:
                pass
            except TypeError:  # bindings whose nvmlDeviceGetMemoryInfo takes no version
                pass
            except pynvml.NVMLError:
                return None
        self.memory_api = "v1"
        return _nvml_call(pynvml.nvmlDeviceGetMemoryInfo, h, strict=strict)

    def _read(self, strict: bool = False) -> HardwareSnapshot:
        import pynvml

        h = self._handle
        mem = self._memory(h, strict)
        util = _nvml_call(pynvml.nvmlDeviceGetUtilizationRates, h, strict=strict)
        temp = _nvml_call(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU, strict=strict)
        power_mw = _nvml_call(pynvml.nvmlDeviceGetPowerUsage, h, strict=strict)
        procs = _nvml_call(pynvml.nvmlDeviceGetComputeRunningProcesses, h, strict=strict)
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
            vram_used_mb=(mem.total - mem.free) / MB if mem is not None else None,  # used + reserved
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
