"""What the Engine asks of a backend: run a prepared uint8 batch, and say what it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Port:
    """A graph input as the backend sees it, in onnxruntime's terms (`tensor(uint8)`, None = dynamic)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class Target:
    """Where to run: a device, and a precision (None: the bundle's own, as stored)."""

    device: str
    precision: str | None = None

    def __str__(self) -> str:
        return self.device + (f" {self.precision}" if self.precision else "")


class Backend(Protocol):
    label: str  # what runs, as logs and summaries name it: "CPUExecutionProvider", "OpenVINO CPU bf16"
    precision: str  # the arithmetic actually used: fp32 | bf16 | fp16 | int8
    io_binding: bool
    cpu_threads: int  # CPU threads its inference keeps busy (0 on a GPU): the cores left are the decoders'
    inputs: list[Port]
    outputs: set[str]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Outputs in the manifest's order for a uint8 N x H x W x 3 batch."""
        ...
