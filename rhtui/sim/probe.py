"""The simulator's hardware probe: what NVML and psutil would report about the simulated card."""

from __future__ import annotations

from rhtui.engine.hardware import HardwareSnapshot

from .world import SimWorld

__all__ = ["SimProbe"]

_EXTERNAL_PID0 = 90001


class SimProbe:
    """`HardwareProbe` over a `SimWorld`: VRAM, utilisation, temperature, power, per-process
    GPU memory (one fake pid per loaded runner, one per other process holding VRAM), RAM, CPU."""

    has_vram = True

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.name = f"simulator: {world.scenario.gpu.name}"
        self.closed = False

    async def sample(self) -> HardwareSnapshot:
        w = self.world
        act = w.activity()
        now = w.elapsed()
        procs: list[tuple[int, float | None]] = [(r.pid, r.gpu_mb) for r in w.runners() if r.loaded_at <= now]
        for i, (start, end, mb) in enumerate(w.external_windows()):
            if start <= now < end:
                procs.append((_EXTERNAL_PID0 + i, mb))
        return HardwareSnapshot(
            ts=w.clock.now(),
            source="sim",
            gpu_name=w.scenario.gpu.name,
            vram_total_mb=w.vram_total_mb,
            vram_used_mb=w.vram_used_mb(),
            gpu_util_pct=act["util"],
            temp_c=act["temp"],
            power_w=act["power"],
            process_vram_mb=tuple(procs),
            ram_used_mb=w.ram_used_mb(),
            ram_total_mb=w.scenario.host.ram_total_mb,
            cpu_pct=act["cpu"],
        )

    async def close(self) -> None:
        self.closed = True
