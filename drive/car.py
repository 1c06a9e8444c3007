"""The built-in simulator's car: a kinematic bicycle model in the road's own frame.

State is arc length `s` along the centre line, lateral offset (metres, + right of it), heading
relative to the road (radians, + right) and speed. Steering -1..1 is a fraction of full lock
(25 degrees, as the Udacity car); the road bends by its curvature in the same units, so a car
steering `road.curvature(s)` on the centre line follows it exactly. Throttle follows the Udacity
car's rules, quirks included: a negative throttle brakes above 5 mph and reverses below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .road import LOOKAHEAD_M, View, curvature

WHEELBASE_M = 2.5
FULL_LOCK = math.radians(25.0)
MAX_CURVATURE = math.tan(FULL_LOCK) / WHEELBASE_M  # 1/m at full lock (a 5.4 m turning radius)
ROAD_HALF_M = 2.0  # the drawn road's half-width: a view's lateral unit
CAR_HALF_WIDTH_M = 0.9  # off the road = a wheel past the edge: |offset| + this > ROAD_HALF_M
MPH = 0.44704  # m/s per mph
ACCEL, BRAKE, REVERSE = 4.0, 8.0, 2.0  # m/s^2 at full throttle, full brake, full reverse
ROLLING, AIR = 0.15, 0.003  # drag: m/s^2, and m/s^2 per (m/s)^2
TOP_SPEED_MPH = 30.0
SUBSTEP_S = 0.01


@dataclass
class Car:
    s: float = 0.0
    offset: float = 0.0  # lateral, metres
    heading: float = 0.0
    speed: float = 0.0  # m/s, negative when reversing
    steering: float = 0.0  # the last steering applied, -1..1
    throttle: float = 0.0  # ... and the accelerator's input, 0..1

    @property
    def speed_mph(self) -> float:
        return abs(self.speed) / MPH

    @property
    def off_road(self) -> bool:
        return abs(self.offset) + CAR_HALF_WIDTH_M > ROAD_HALF_M

    def view(self) -> View:
        return View(curvature(self.s + LOOKAHEAD_M), self.offset / ROAD_HALF_M, self.heading, self.s)

    def step(self, steering: float, throttle: float, dt: float) -> None:
        """Apply a command for `dt` seconds."""
        self.steering = min(max(steering, -1.0), 1.0)
        throttle = min(max(throttle, -1.0), 1.0)
        self.throttle = max(throttle, 0.0)
        remaining = dt
        while remaining > 1e-9:
            h = min(SUBSTEP_S, remaining)
            self._advance(throttle, h)
            remaining -= h

    def _advance(self, throttle: float, h: float) -> None:
        v = self.speed
        if throttle >= 0:
            push = throttle * ACCEL
        elif abs(v) / MPH > 5.0:
            push = throttle * BRAKE * math.copysign(1.0, v)  # brakes against the motion
        else:
            push = throttle * REVERSE
        drag = math.copysign(ROLLING + AIR * v * v, v) if abs(v) > 1e-6 else 0.0
        new = v + (push - drag) * h
        if v != 0 and math.copysign(1.0, new) != math.copysign(1.0, v) and (throttle >= 0 or abs(v) / MPH > 5.0):
            new = 0.0  # braking and drag stop the car; they never reverse it
        self.speed = max(min(new, TOP_SPEED_MPH * MPH), -TOP_SPEED_MPH * MPH)
        v = (v + self.speed) / 2
        # midpoint (RK2) on the road-frame kinematics: Euler's error would make an exact driver drift
        ds, dy, dpsi = self._rates(self.s, self.offset, self.heading, v)
        ds, dy, dpsi = self._rates(self.s + ds * h / 2, self.offset + dy * h / 2, self.heading + dpsi * h / 2, v)
        self.s, self.offset, self.heading = self.s + ds * h, self.offset + dy * h, self.heading + dpsi * h

    def _rates(self, s: float, offset: float, heading: float, v: float) -> tuple[float, float, float]:
        road = curvature(s) * MAX_CURVATURE
        along = v * math.cos(heading) / max(1.0 - road * offset, 0.1)
        return along, v * math.sin(heading), v * self.steering * MAX_CURVATURE - road * along
