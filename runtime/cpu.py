"""What this CPU offers, read from /proc/cpuinfo: the fast paths depend on it, never assumed."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        """BF16 arithmetic in hardware (AVX512_BF16 or AMX); elsewhere OpenVINO would emulate it, slowly."""
        return bool(self.flags & {"avx512_bf16", "amx_bf16"})

    @property
    def int8_dot(self) -> bool:
        """An INT8 dot-product instruction (VNNI or AMX): 8-bit weights cost nothing over 7-bit."""
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"})

    @property
    def amx(self) -> bool:
        return "amx_tile" in self.flags

    @property
    def isa(self) -> str:
        """The flags that decide edgeft's choices, for tables and logs."""
        wanted = sorted(f for f in self.flags if f in ("avx2", "fma") or f.startswith(("avx512", "amx")) or "vnni" in f)
        return " ".join(wanted) or "none of avx2/avx512/vnni/amx"

    def describe(self) -> str:
        return f"{self.model}, {self.cores} cores: {self.isa}"


@functools.cache
def cpu_info() -> CpuInfo:
    model, flags = platform.processor() or platform.machine(), frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return CpuInfo(model, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, flags)
