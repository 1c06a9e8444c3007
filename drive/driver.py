"""Telemetry in, command out: the part every dialect shares.

`Driver.decide` decodes the frame, runs the bundle, reads its steering the manifest's way,
refuses what must not steer (see `safety`), and shapes the rest with the controller; the age
check comes last, just before the command goes out. `Driver.sent` counts the answer and hands
the tick to the outputs. One Driver per car (it holds the controller's state); the engine is
shared, and Engine.predict is safe to call from several threads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from edgeft.runtime import Engine, Manifest, Result, decode, first_line
from edgeft.runtime.sources import decode_bytes, fit_for

from .controller import Controller, ControllerConfig, DriveError
from .messages import Command, Telemetry
from .outputs import Outputs, Written
from .safety import INFERENCE_FAILED, NO_STEERING, NON_FINITE, STALE, UNDECODABLE, UNREADABLE, SafetyConfig, checked, safe_stop
from .stats import DriveStats

log = logging.getLogger("edgeft")


@dataclass(frozen=True)
class DriveConfig:
    controller: ControllerConfig = ControllerConfig()
    safety: SafetyConfig = SafetyConfig()


@dataclass(frozen=True)
class Tick:
    """A decided command and what it came from."""

    command: Command
    telemetry: Telemetry
    outputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # {} when the model did not run
    image: np.ndarray | None = field(default=None, repr=False)


def check_steering_bundle(manifest: Manifest) -> None:
    """Only a regression bundle has a steering to drive with."""
    if manifest.task != "regression" or manifest.output("prediction") is None:
        raise DriveError(f"edgeft drive needs a steering bundle (a regression head fused with export --head): "
                         f"'{manifest.name}' is a {manifest.task} bundle")


class Driver:
    def __init__(self, engine: Engine, config: DriveConfig, stats: DriveStats, outputs: Outputs | None = None,
                 source: str = "center"):
        check_steering_bundle(engine.manifest)
        self.engine, self.config, self.stats, self.outputs, self.source = engine, config, stats, outputs, source
        self.controller = Controller(config.controller)
        self._frames = 0
        self._fit = fit_for(engine.manifest.input, "reduced")

    def decide(self, telemetry: Telemetry) -> Tick:
        if telemetry.problem is not None or telemetry.jpeg is None:
            return self.stop(telemetry, UNREADABLE)
        started = time.perf_counter()
        image, _ = decode_bytes(telemetry.jpeg, self._fit)  # the decode every JPEG source uses: at the model's size
        decode_ms = (time.perf_counter() - started) * 1000.0
        if image is None:
            self.stats.ran(decode_ms, None)
            return self.stop(telemetry, UNDECODABLE)
        try:
            prediction = self.engine.predict(image)
        except Exception as exc:  # noqa: BLE001 - a failing model gets a brake, never a crash mid-drive
            self.stats.ran(decode_ms, None)
            self.stats.errors.append(f"inference failed: {type(exc).__name__}: {first_line(exc)}")
            return self.stop(telemetry, INFERENCE_FAILED, image=image)
        self.stats.ran(decode_ms, prediction.latency_ms)
        steering = decode(self.engine.manifest, prediction.outputs).steering
        reason = checked(steering)
        if reason is not None:
            return self.stop(telemetry, reason, prediction.outputs, image)
        command = self.controller.step(steering, telemetry.speed, telemetry.received)
        if time.monotonic() - telemetry.received > self.config.safety.max_age_s:
            return self.stop(telemetry, STALE, prediction.outputs, image)
        return Tick(command, telemetry, prediction.outputs, image)

    def stop(self, telemetry: Telemetry, reason: str, outputs: dict | None = None, image: np.ndarray | None = None) -> Tick:
        """A safe stop for this frame; the controller shapes its next steering from a straight wheel."""
        self.controller.stopped(time.monotonic())
        return Tick(safe_stop(reason, self.config.safety), telemetry, outputs or {}, image)

    def sent(self, tick: Tick, sent_at: float, received: float | None = None, write: bool = True) -> None:
        """Count one answer (its round trip from `received`, the frame's arrival by default) and,
        with `write`, give the tick to the outputs."""
        arrived = tick.telemetry.received if received is None else received
        round_trip_ms = (sent_at - arrived) * 1000.0
        self.stats.answered(round_trip_ms, tick.command.stop)
        if write and self.outputs is not None and self.outputs.active:
            self._frames += 1
            usable = bool(tick.outputs) and tick.command.stop not in (NON_FINITE, NO_STEERING)  # outputs a reader can use
            result = Result(source=self.source, frame=self._frames, t_capture=tick.telemetry.wall, latency_ms=round_trip_ms,
                            outputs=tick.outputs, image=tick.image, valid=usable, reason=tick.command.stop, jpeg=tick.telemetry.jpeg)
            self.outputs.put(Written(result, tick.command, tick.telemetry.speed))
