"""The controller between the model and the car: steering shaped, throttle from a speed loop.

Steering is the bundle's regression output, clamped to `max_steering`, optionally smoothed
(exponentially) and rate limited (full lock per second). Throttle comes from a PI speed
controller with the gains of Udacity's drive.py (Kp 0.1, Ki 0.002 per tick, at 9 mph), with
anti-windup by conditional integration: the integral stops growing while the output is pinned
at a limit in the direction of the error, so a long climb or a stop does not leave a huge
integral that overshoots afterwards (drive.py's did). The target drops on sharp steering, and
nothing above `max_speed` gets throttle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeft.runtime import EdgeftError

from .messages import Command


class DriveError(EdgeftError):
    """A drive cannot start or go on: a bad setting, a simulator that cannot be reached."""


@dataclass(frozen=True)
class ControllerConfig:
    speed: float = 9.0  # target speed, in the simulator's unit (mph for Udacity, m/s for Donkey)
    max_speed: float = 30.0  # no throttle at or above it
    throttle: float | None = None  # a fixed throttle instead of the speed loop
    kp: float = 0.1
    ki: float = 0.002  # per tick, as drive.py's SimplePIController
    max_throttle: float = 1.0
    max_steering: float = 1.0  # |steering| is clamped to this
    steering_rate: float | None = None  # most steering change per second (None: unlimited)
    smoothing: float = 0.0  # 0: none; a: steering = a x previous + (1 - a) x new
    slow_on_steering: float = 0.5  # target x (1 - this x |steering|): slower into sharp bends

    def __post_init__(self) -> None:
        for name in ("speed", "max_speed", "kp", "ki"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise DriveError(f"--{name.replace('_', '-')} must be a number, 0 or more, got {value}")
        if not 0 < self.max_steering <= 1:
            raise DriveError(f"--max-steering must be in (0, 1], got {self.max_steering}")
        if not 0 < self.max_throttle <= 1:
            raise DriveError(f"max_throttle must be in (0, 1], got {self.max_throttle}")
        if self.throttle is not None and not -1 <= self.throttle <= 1:
            raise DriveError(f"--throttle must be in [-1, 1], got {self.throttle}")
        if self.steering_rate is not None and not (math.isfinite(self.steering_rate) and self.steering_rate > 0):
            raise DriveError(f"--steering-rate must be a positive number (full lock per second), got {self.steering_rate}")
        if not 0 <= self.smoothing < 1:
            raise DriveError(f"--smoothing must be in [0, 1), got {self.smoothing}")
        if not 0 <= self.slow_on_steering < 1:
            raise DriveError(f"--slow-on-steering must be in [0, 1), got {self.slow_on_steering}")


class Controller:
    """One car's controller (it keeps the integral and the last steering sent)."""

    def __init__(self, config: ControllerConfig = ControllerConfig()):
        self.config = config
        self.integral = 0.0
        self._last: float | None = None  # the steering last sent, and when
        self._when = 0.0

    def step(self, steering: float, speed: float, now: float) -> Command:
        """The command for a model steering and the car's speed at time `now` (monotonic seconds)."""
        c = self.config
        value = min(max(steering, -c.max_steering), c.max_steering)
        if self._last is not None:
            if c.smoothing:
                value = c.smoothing * self._last + (1 - c.smoothing) * value
            if c.steering_rate is not None:
                step = c.steering_rate * max(0.0, now - self._when)
                value = min(max(value, self._last - step), self._last + step)
        self._last, self._when = value, now
        return Command(value, self._throttle(speed, abs(value)))

    def stopped(self, now: float) -> None:
        """A safe stop went out instead (wheel straight): shape the next steering from there."""
        self._last, self._when = 0.0, now

    def _throttle(self, speed: float, steering: float) -> float:
        c = self.config
        if c.throttle is not None:
            throttle = c.throttle
        else:
            target = min(c.speed, c.max_speed) * (1 - c.slow_on_steering * steering)
            error = target - speed
            integral = self.integral + error
            throttle = c.kp * error + c.ki * integral
            if throttle > c.max_throttle:
                throttle = c.max_throttle
                integral = self.integral if error > 0 else integral
            elif throttle < -1.0:
                throttle = -1.0
                integral = self.integral if error < 0 else integral
            self.integral = integral
        return min(throttle, 0.0) if speed >= c.max_speed else throttle
