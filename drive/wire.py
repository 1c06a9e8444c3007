"""The released Udacity simulator's wire dialect, read from its source (udacity/self-driving-car-sim).

Its Unity Socket.IO asset (SocketIOComponent.cs, Encoder.cs, Decoder.cs) opens a raw WebSocket to
`/socket.io/?EIO=4&transport=websocket` and frames Engine.IO packets as text: `0{json}` open,
`1` close, `2` ping, `3` pong, `4` message; a message `42["event",{...}]` is a Socket.IO event
on the default namespace. It never sends the CONNECT packet `40`: it fires "open" once when the
socket opens and again on the server's `0{...}` open packet, and CommandServer.cs answers each
with a telemetry, so two telemetry chains run from the start. It pings with `2` itself and
expects `3`; it answers the server's `2` with `3`. Every value is a string: it reads
`steering_angle` and `throttle` with `float.Parse(field.str)`, which throws (silently, and the
car stalls) on a JSON number. Telemetry is `{"steering_angle","throttle","speed","image"}`
(degrees, 0..1, mph, base64 JPEG), or `null` while the user drives by hand, which drive.py
answers with `42["manual",{}]`.

A modern Socket.IO client (python-socketio 5) does send `40` and waits for `40{"sid":...}`; the
server here answers it, and speaks WebSocket only (a polling request is refused with a line
saying so).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .messages import Command, Telemetry, image_bytes, sim_number, wire_number

PATH = "/socket.io/"
OPEN, CLOSE, PING, PONG, MESSAGE = "0", "1", "2", "3", "4"
CONNECT, DISCONNECT, EVENT = "0", "1", "2"  # Socket.IO packet types, after the Engine.IO "4"
MANUAL = '42["manual",{}]'
FULL_LOCK_DEG = 25.0  # CarController's m_MaximumSteerAngle: telemetry steering_angle = steering x 25
REVERSE_BELOW_MPH = 5.0  # below this, CarController reads a negative throttle as reverse, not brake


@dataclass(frozen=True)
class Packet:
    """One text frame: kind is open | close | ping | pong | connect | disconnect | event | other."""

    kind: str
    name: str | None = None  # the event's name
    data: object = None  # the event's argument, or the open packet's JSON; None when absent or null
    probe: bool = False  # a "2probe" / "3probe" upgrade check


def parse(text: str | bytes) -> Packet:
    if isinstance(text, bytes) or not text:
        return Packet("other")
    head, rest = text[0], text[1:]
    if head in (PING, PONG):
        return Packet("ping" if head == PING else "pong", probe=rest == "probe")
    if head == CLOSE:
        return Packet("close")
    if head == OPEN:
        return Packet("open", data=_json(rest))
    if head != MESSAGE or not rest:
        return Packet("other")
    kind, body = rest[0], rest[1:]
    if body.startswith("/"):  # a namespace: "/name,"
        nsp, _, body = body.partition(",")
        if nsp != "/":
            return Packet("other", name=nsp)
    body = body.lstrip("0123456789")  # an ack id, which this dialect never needs
    if kind == CONNECT:
        return Packet("connect")
    if kind == DISCONNECT:
        return Packet("disconnect")
    if kind != EVENT:
        return Packet("other")
    payload = _json(body)
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
        return Packet("other")
    return Packet("event", payload[0], payload[1] if len(payload) > 1 else None)


def _json(text: str) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def event(name: str, data: object) -> str:
    """`42["name",{...}]`, compact, as the Unity encoder writes it."""
    return "42" + json.dumps([name, data], separators=(",", ":"))


def open_packet(sid: str, ping_interval_s: float, ping_timeout_s: float, max_payload: int) -> str:
    info = {"sid": sid, "upgrades": [], "pingInterval": int(ping_interval_s * 1000), "pingTimeout": int(ping_timeout_s * 1000),
            "maxPayload": max_payload}
    return OPEN + json.dumps(info, separators=(",", ":"))


def connect_reply(sid: str) -> str:
    return "40" + json.dumps({"sid": sid}, separators=(",", ":"))


def steer(command: Command, speed_mph: float) -> str:
    """The reply to a telemetry. Values are strings with a dot decimal. A negative throttle is sent
    only above REVERSE_BELOW_MPH: below it the car would reverse, so braking there is a zero throttle."""
    throttle = command.throttle if command.throttle >= 0 or speed_mph > REVERSE_BELOW_MPH else 0.0
    return event("steer", {"steering_angle": wire_number(command.steering), "throttle": wire_number(throttle)})


def telemetry(data: object, received: float | None = None, wall: float | None = None) -> Telemetry | None:
    """The telemetry event's argument as a Telemetry; None for the null telemetry of manual driving.
    A frame that cannot be driven on comes back with its `problem` set, so it is still answered."""
    received = time.monotonic() if received is None else received
    wall = time.time() if wall is None else wall
    if data is None or data == {}:
        return None
    if not isinstance(data, dict):
        return Telemetry(None, received=received, wall=wall, problem="the telemetry is not an object")
    try:
        speed = sim_number(data.get("speed"), "speed")
    except ValueError as exc:  # speed unknown: the safe stop then sends no negative throttle (it might reverse)
        return Telemetry(None, received=received, wall=wall, problem=str(exc))
    try:
        steering = sim_number(data.get("steering_angle", 0.0), "steering_angle") / FULL_LOCK_DEG
        throttle = sim_number(data.get("throttle", 0.0), "throttle")
        jpeg = image_bytes(data.get("image"))
    except ValueError as exc:
        return Telemetry(None, speed, received=received, wall=wall, problem=str(exc))
    return Telemetry(jpeg, speed, steering, throttle, received, wall)
