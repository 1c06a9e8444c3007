"""The safety policy: when the model's steering must not go out, a braking command goes instead.

A frame is answered with a safe stop (wheel straight, brake) rather than a stale or made-up
steer when: its telemetry cannot be read, its JPEG cannot be decoded, inference fails, the
output is NaN or infinite (refused, never clamped into range), or the answer would leave more
than `max_age_ms` after the frame arrived (the command would steer for a road that is gone). A
watchdog also answers a frame whose inference is still running at `max_age_ms` with a brake,
so a stalled model cannot leave the car on its last command. Reasons are a fixed set, so
counting them costs the same for a minute or a day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .controller import DriveError
from .messages import Command

UNREADABLE = "unreadable telemetry"
UNDECODABLE = "undecodable frame"
INFERENCE_FAILED = "inference failed"
NO_STEERING = "no steering output"
NON_FINITE = "non-finite output"
STALE = "stale frame"
LATE = "no result within max-age"
SILENCE = "telemetry stopped"
REASONS = (UNREADABLE, UNDECODABLE, INFERENCE_FAILED, NO_STEERING, NON_FINITE, STALE, LATE, SILENCE)


@dataclass(frozen=True)
class SafetyConfig:
    max_age_ms: float = 250.0  # frame arrival to command out; older, and the command is a brake
    brake: float = 1.0  # brake strength of a safe stop, 0..1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_age_ms) and self.max_age_ms > 0):
            raise DriveError(f"--max-age-ms must be a positive number of milliseconds, got {self.max_age_ms}")
        if not 0 <= self.brake <= 1:
            raise DriveError(f"--brake must be in [0, 1], got {self.brake}")

    @property
    def max_age_s(self) -> float:
        return self.max_age_ms / 1000.0


def safe_stop(reason: str, config: SafetyConfig) -> Command:
    """Wheel straight and brake: the command that never depends on the frame it answers."""
    return Command(0.0, -config.brake, reason)


def final_stop() -> Command:
    """The last command before closing. Simulators hold their last command for ever, so it must be
    safe to hold: wheel straight, no throttle (the dialects add their own brake where they have one)."""
    return Command(0.0, 0.0, "end of drive")


def checked(steering: float | None) -> str | None:
    """Why a model's steering must not be used, or None when it may."""
    if steering is None:
        return NO_STEERING
    if not math.isfinite(steering):
        return NON_FINITE
    return None
