"""`edgeft sim`: the built-in simulator, so a loop can be closed where the simulator binary is not.

It drives the built-in road (`road`, the one the driving sample is drawn from) with a kinematic
bicycle (`car`) and connects to `edgeft drive` exactly as the released Udacity simulator's Unity
client does: a raw WebSocket to /socket.io/?EIO=4&transport=websocket, no CONNECT packet, a
telemetry when the socket opens and another on the server's open packet (two chains), its own
Engine.IO ping, every value a string (`--decimal-comma` writes them as a German Windows would),
and a command it cannot parse (a number instead of a string) ends the run the way it stalls the
real car, but with a message. Each command it gets moves the car one tick (`1/fps` of simulated
time: the run does not depend on how fast the machine is), or, with `realtime`, by the wall time
since the last one, as the real simulator does.

Closed-loop metrics: mean and max |cross-track error|, time off the road (a wheel past the edge),
distance and laps (periods of the curvature profile) completed, and why the run ended.
"""

from __future__ import annotations

import base64
import math
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from . import wire
from .car import Car
from .controller import DriveError
from .road import LAP_M, render

UNITY_PING_INTERVAL_S = 25.0  # SocketIOComponent.pingInterval


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 4567
    distance_m: float = 200.0
    fps: float = 20.0  # simulated ticks per second (each command received is one tick)
    realtime: bool = False
    max_off_road_s: float = 3.0  # end the run once the car has been off the road this long in one go
    connect_timeout_s: float = 30.0  # keep trying to connect (edgeft drive may still be loading its bundle)
    reply_timeout_s: float = 10.0  # a driver that answers nothing for this long ends the run
    jpeg_quality: int = 75  # Unity's Texture2D.EncodeToJPG default
    decimal_comma: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("distance_m", "fps", "max_off_road_s", "connect_timeout_s", "reply_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise DriveError(f"--{name.removesuffix('_m').removesuffix('_s').replace('_', '-')} must be a positive number, got {value}")


@dataclass(frozen=True)
class SimMetrics:
    completed: bool  # the distance was driven without leaving the road
    ended: str  # why the run ended
    distance_m: float
    laps: float
    sim_time_s: float
    ticks: int  # commands applied
    manual: int  # `manual` replies
    mean_abs_cte_m: float
    max_abs_cte_m: float
    off_road_s: float
    off_road_events: int
    mean_speed_mph: float

    def as_dict(self) -> dict[str, object]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


class _Track:
    """Running sums of the closed loop, per tick: nothing grows with the run."""

    def __init__(self):
        self.ticks = self.manual = self.events = 0
        self.time = self.off = self.off_run = self.sum_cte = self.max_cte = self.sum_speed = 0.0
        self._was_off = False

    def add(self, car: Car, dt: float) -> None:
        self.ticks += 1
        self.time += dt
        self.sum_cte += abs(car.offset)
        self.max_cte = max(self.max_cte, abs(car.offset))
        self.sum_speed += car.speed_mph
        if car.off_road:
            self.off += dt
            self.off_run += dt
            self.events += not self._was_off
        else:
            self.off_run = 0.0
        self._was_off = car.off_road

    def metrics(self, car: Car, ended: str, completed: bool) -> SimMetrics:
        n = max(self.ticks, 1)
        return SimMetrics(completed, ended, car.s, car.s / LAP_M, self.time, self.ticks, self.manual, self.sum_cte / n,
                          self.max_cte, self.off, self.events, self.sum_speed / n)


class Simulator:
    """One run: connect, drive until the distance is done (or the car is lost), report."""

    def __init__(self, config: SimConfig = SimConfig()):
        self.config = config
        self.car = Car()
        self.track = _Track()
        self._rng = np.random.default_rng(config.seed)
        self._stop = False

    def stop(self) -> None:
        """End the run from another thread (or a signal handler) after the current tick."""
        self._stop = True

    def run(self, on_tick=None) -> SimMetrics:
        connection = self._connect()  # first: it says how to install websockets when it is missing
        from websockets.exceptions import ConnectionClosed

        try:
            ended = self._drive(connection, on_tick)
        except ConnectionClosed:
            ended = "edgeft drive closed the connection"
        finally:
            self._leave(connection)
        completed = ended == "distance reached" and self.track.off == 0.0
        return self.track.metrics(self.car, ended, completed)

    def _connect(self):
        try:
            from websockets.sync.client import connect
        except ImportError:
            raise DriveError("edgeft sim needs the drive extra: pip install 'edgeft[drive]'") from None
        url = f"ws://{self.config.host}:{self.config.port}{wire.PATH}?EIO=4&transport=websocket"
        deadline = time.monotonic() + self.config.connect_timeout_s
        while True:
            try:  # websocket-sharp offers no compression and sends no WebSocket-level pings
                return connect(url, compression=None, ping_interval=None, max_size=None, open_timeout=5,
                               user_agent_header=None, proxy=None)
            except (OSError, TimeoutError) as exc:
                if self._stop or time.monotonic() >= deadline:
                    raise DriveError(f"cannot reach edgeft drive at {url} ({exc}): start `edgeft drive` first") from None
                time.sleep(0.2)

    def _drive(self, connection, on_tick) -> str:
        connection.send(self._telemetry())  # ws.OnOpen -> "open" -> CommandServer.OnOpen
        connection.send(wire.PING)  # the ping thread starts once the socket is up
        next_ping, last_step = time.monotonic() + UNITY_PING_INTERVAL_S, time.monotonic()
        while not self._stop:
            try:
                message = connection.recv(timeout=self.config.reply_timeout_s)
            except TimeoutError:
                return f"edgeft drive answered nothing for {self.config.reply_timeout_s:g} s"
            packet = wire.parse(message)
            if packet.kind == "open":  # the server's open packet fires "open" again: the second chain
                connection.send(self._telemetry())
            elif packet.kind == "ping":
                connection.send(wire.PONG)
            elif packet.kind == "close":
                return "edgeft drive closed the connection"
            elif packet.kind == "event" and packet.name == "manual":
                self.track.manual += 1
                connection.send(self._telemetry())
            elif packet.kind == "event" and packet.name == "steer":
                steering, throttle = _command(packet.data)
                now = time.monotonic()
                dt = min(now - last_step, 0.25) if self.config.realtime else 1.0 / self.config.fps
                last_step = now
                self.car.step(steering, throttle, dt)
                self.track.add(self.car, dt)
                if on_tick is not None:
                    on_tick(self.car, self.track)
                if self.car.s >= self.config.distance_m:
                    return "distance reached"
                if self.track.off_run >= self.config.max_off_road_s:
                    return f"off the road for {self.config.max_off_road_s:g} s"
                connection.send(self._telemetry())
            if time.monotonic() >= next_ping:
                connection.send(wire.PING)
                next_ping = time.monotonic() + UNITY_PING_INTERVAL_S
        return "stopped"

    def _telemetry(self) -> str:
        """CommandServer.EmitTelemetry: every value a string, formatted "N4"."""
        ok, jpeg = cv2.imencode(".jpg", render(self.car.view(), self._rng), [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        car = self.car
        values = {"steering_angle": car.steering * wire.FULL_LOCK_DEG, "throttle": car.throttle, "speed": car.speed_mph}
        data = {k: self._number(v) for k, v in values.items()}
        data["image"] = base64.b64encode(jpeg.tobytes()).decode("ascii")
        return wire.event("telemetry", data)

    def _number(self, value: float) -> str:
        text = f"{value:.4f}"
        return text.replace(".", ",") if self.config.decimal_comma else text

    def _leave(self, connection) -> None:
        """SocketIOComponent.Close: a Socket.IO DISCONNECT, an Engine.IO CLOSE, then the socket."""
        from websockets.exceptions import ConnectionClosed

        try:
            connection.send("41")
            connection.send(wire.CLOSE)
        except ConnectionClosed:  # the server may be gone already
            pass
        connection.close()


def _command(data: object) -> tuple[float, float]:
    """CommandServer.OnSteer: float.Parse(field.str). A field that is not a string would throw there
    (and the real car would stall for ever); here it ends the run with a message."""
    if not isinstance(data, dict):
        raise DriveError("edgeft drive sent a steer event without an object")
    values = []
    for name in ("steering_angle", "throttle"):
        value = data.get(name)
        if not isinstance(value, str):
            raise DriveError(f"the steer event's {name} is {value!r}, not a string: the released simulator would ignore it and stall")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DriveError(f"the steer event's {name} '{value}' is not a finite number")
        values.append(number)
    return values[0], values[1]

