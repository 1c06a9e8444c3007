"""What crosses the loop in either dialect: a simulator's telemetry in, a command out.

Simulators built with Unity write numbers with the machine's locale, so a German Windows sends
"0,1234": `sim_number` reads a dot or a comma decimal, from a string or a JSON number, and
refuses what is not a finite number. What we send is always a dot decimal (`wire_number`).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Telemetry:
    """One frame from a simulator. `problem` says why it cannot be driven on (then `jpeg` may be None)."""

    jpeg: bytes | None
    speed: float = 0.0  # in the simulator's unit: mph (Udacity), m/s (Donkey)
    steering: float = 0.0  # the car's current steering, -1..1
    throttle: float = 0.0
    received: float = 0.0  # time.monotonic() when it was read off the socket
    wall: float = 0.0  # time.time() then
    cte: float | None = None  # cross-track error, where the simulator reports it (Donkey)
    hit: str | None = None  # what the car hit since the last frame ("none" when nothing)
    problem: str | None = None


@dataclass(frozen=True)
class Command:
    """Steering -1..1 (+ right) and throttle -1..1 (negative brakes). `stop` is the reason when this
    is a safe stop rather than the model's steering."""

    steering: float
    throttle: float
    stop: str | None = None


def sim_number(value: object, what: str) -> float:
    """A finite float from a JSON number or a string with a dot or comma decimal ("1.234,5" too)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} is {value!r}, not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if "," in text and "." in text:  # the last separator is the decimal one, the other groups digits
            grouping = "." if text.rfind(",") > text.rfind(".") else ","
            text = text.replace(grouping, "")
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise ValueError(f"{what} '{value}' is not a number") from None
    else:
        raise ValueError(f"{what} is a {type(value).__name__}, not a number")
    if not math.isfinite(number):
        raise ValueError(f"{what} '{value}' is not a finite number")
    return number


def wire_number(value: float) -> str:
    """Four decimals with a dot, as the simulators' own "N4" strings look; never "-0.0000"."""
    text = f"{value:.4f}"
    return "0.0000" if text == "-0.0000" else text


def image_bytes(value: object) -> bytes:
    """The JPEG inside a base64 string (its bytes unchanged: recordings keep them as they came)."""
    if not isinstance(value, str) or not value:
        raise ValueError("the frame has no image")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise ValueError("the frame's image is not base64") from None
