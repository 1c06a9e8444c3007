"""`edgeft drive --sim donkey`: a client of the DonkeyCar simulator (tawnkramer/sdsandbox, gym-donkeycar).

The simulator listens on TCP 9091 and ends each JSON message it sends with a newline; it reads
each TCP read as one message, so every message here is one write, and writes are spaced. On
connecting, its menu sends `scene_selection_ready`; we ask `get_scene_names`, check `--scene` is
among them, send `load_scene`, and wait for `car_loaded` (a simulator already in a scene sends
that at once), then hold the car with the brake until the first frame. Telemetry arrives at
20 Hz with JSON numbers (a comma decimal when Unity ran under such a locale), a base64 JPEG,
`cte` and `hit`. `control` carries steering, throttle and brake as strings, which the simulator
parses with the invariant culture.

The reader keeps only the newest frame (replaced ones are counted as drops), so the worker
always answers the newest and nothing queues. The reader is also the watchdog: if telemetry
stops, or the frame being run has taken longer than max-age, while the car was last told to
drive, it is told to brake.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass

from edgeft.runtime import Engine

from .controller import DriveError
from .driver import DriveConfig, Driver
from .messages import Command, Telemetry, image_bytes, sim_number, wire_number
from .outputs import Outputs
from .safety import LATE, SILENCE, final_stop, safe_stop
from .stats import DriveStats

log = logging.getLogger("edgeft")
WRITE_GAP_S = 0.005  # the simulator takes one read as one message: never two writes back to back
_COMMA_DECIMAL = re.compile(r"(?<=[:\[,\s])(-?\d+),(\d+(?:[eE][-+]?\d+)?)(?=\s*[,}\]])")


@dataclass(frozen=True)
class DonkeyConfig:
    host: str = "127.0.0.1"
    port: int = 9091
    scene: str = "generated_road"
    connect_timeout_s: float = 10.0  # keep trying to connect this long (the simulator may be starting)
    handshake_timeout_s: float = 60.0  # scene loading included


def parse_message(text: str) -> dict | None:
    """One message; a Unity comma decimal ("cte":0,25,) is read as a dot decimal."""
    for attempt in (text, _COMMA_DECIMAL.sub(r"\1.\2", text)):
        try:
            message = json.loads(attempt)
        except ValueError:
            continue
        return message if isinstance(message, dict) and "msg_type" in message else None
    return None


def telemetry(message: dict, received: float, wall: float) -> Telemetry:
    try:
        cte = sim_number(message["cte"], "cte") if "cte" in message else None
        hit = message.get("hit")
        return Telemetry(image_bytes(message.get("image")), sim_number(message.get("speed", 0.0), "speed"),
                         sim_number(message.get("steering_angle", 0.0), "steering_angle"),
                         sim_number(message.get("throttle", 0.0), "throttle"), received, wall, cte,
                         hit if isinstance(hit, str) else None)
    except ValueError as exc:
        return Telemetry(None, received=received, wall=wall, problem=str(exc))


def control(command: Command) -> bytes:
    throttle, brake = max(command.throttle, 0.0), max(-command.throttle, 0.0)
    message = {"msg_type": "control", "steering": wire_number(command.steering), "throttle": wire_number(throttle),
               "brake": wire_number(brake)}
    return json.dumps(message).encode()


class DonkeyClient:
    def __init__(self, engine: Engine, drive: DriveConfig, stats: DriveStats, outputs: Outputs | None = None,
                 config: DonkeyConfig = DonkeyConfig()):
        self.config, self.stats = config, stats
        self.driver = Driver(engine, drive, stats, outputs)
        self.finished = threading.Event()  # the drive is over: the simulator left, or the link failed
        self.error: str | None = None
        self._sock: socket.socket | None = None
        self._newest: Telemetry | None = None
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._last_write = 0.0
        self._loaded = threading.Event()
        self._closing = False
        self._ended = False  # the final command went out
        self._peer_closed = False  # the simulator closed the connection
        self._running_since: float | None = None  # arrival of the frame being run
        self._driving = False  # the last command sent told the car to drive
        self._threads: list[threading.Thread] = []
        stats.simulator = f"donkey at {config.host}:{config.port}"
        stats.provider = engine.provider

    def start(self) -> DonkeyClient:
        self._sock = self._connect()
        self.stats.count("sessions")
        self._threads = [threading.Thread(target=self._read, name="edgeft-drive-donkey-read", daemon=True),
                         threading.Thread(target=self._work, name="edgeft-drive-donkey-work", daemon=True)]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + self.config.handshake_timeout_s
        while not self._loaded.wait(0.1) and not self.finished.is_set() and time.monotonic() < deadline:
            pass
        if not self._loaded.is_set() and self.error is None and not self.finished.is_set():
            self.error = f"the Donkey simulator did not load scene '{self.config.scene}' within {self.config.handshake_timeout_s:g} s"
        return self

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self.config.connect_timeout_s
        while True:
            try:
                sock = socket.create_connection((self.config.host, self.config.port), timeout=2.0)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(0.05)
                return sock
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise DriveError(f"cannot reach the Donkey simulator at {self.config.host}:{self.config.port} "
                                     f"({exc.strerror or exc}): start it first, or give --host/--port") from None
                time.sleep(0.2)

    def _write(self, data: bytes, final: bool = False) -> bool:
        """One message, one write; nothing goes after the final command. False when nothing was sent."""
        with self._write_lock:
            if self._ended:
                return False
            self._ended = final
            wait = self._last_write + WRITE_GAP_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._sock.sendall(data)
            self._last_write = time.monotonic()
            return True

    def _send(self, message: dict) -> None:
        self._write(json.dumps(message).encode())

    def _read(self) -> None:
        buffer, last_frame = b"", time.monotonic()
        try:
            while not self._closing:
                try:
                    chunk = self._sock.recv(1 << 18)
                except socket.timeout:
                    chunk = None
                if chunk == b"":
                    self._peer_closed = True
                    break
                now = time.monotonic()
                if chunk:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    if buffer.endswith(b"}") and parse_message(buffer.decode("utf-8", "replace")) is not None:
                        lines, buffer = [*lines, buffer], b""  # a message without its newline, as older builds send
                    for line in lines:
                        if line.strip() and self._handle(line.decode("utf-8", "replace"), now):
                            last_frame = now
                self._watchdog(now, last_frame)
        except OSError as exc:
            if not self._closing:
                self.error = f"the Donkey simulator's connection failed: {exc.strerror or exc}"
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self.finished.set()

    def _handle(self, text: str, now: float) -> bool:
        """One message; True when it was a frame."""
        message = parse_message(text)
        if message is None:
            self.stats.notes.append("a message from the Donkey simulator was not JSON: ignored")
            return False
        kind = message["msg_type"]
        if kind == "scene_selection_ready":
            self._send({"msg_type": "get_scene_names"})
        elif kind == "scene_names":
            names = message.get("scene_names") or []
            if self.config.scene not in names:
                self.error = f"scene '{self.config.scene}' is not one the Donkey simulator offers: {', '.join(map(str, names))}"
                self._closing = True
            else:
                self._send({"msg_type": "load_scene", "scene_name": self.config.scene})
        elif kind == "car_loaded":
            self._write(control(Command(0.0, -1.0)))  # hold the car on the brake until the first frame
            self._loaded.set()
        elif kind == "telemetry":
            self.stats.count("telemetry")
            frame = telemetry(message, now, time.time())
            self.stats.scored(frame.cte, frame.hit)
            with self._cond:
                if self._newest is not None:
                    self.stats.count("drops")
                self._newest = frame
                self._cond.notify_all()
            return True
        return False

    def _watchdog(self, now: float, last_frame: float) -> None:
        """Brake a car told to drive when frames stop coming, or when the one being run has taken
        longer than max-age (a stalled model must not leave the car on its last command)."""
        max_age = self.driver.config.safety.max_age_s
        if not (self._loaded.is_set() and self._driving):
            return
        running = self._running_since
        reason = SILENCE if now - last_frame > max_age else LATE if running is not None and now - running > max_age else None
        if reason is not None:
            self._driving = False
            if self._write(control(safe_stop(reason, self.driver.config.safety))):
                self.stats.stopped_for(reason)

    def _work(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._newest is None and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        return
                    frame, self._newest = self._newest, None
                self._running_since = frame.received
                tick = self.driver.decide(frame)
                self._running_since = None
                if self._write(control(tick.command)):
                    self._driving = tick.command.stop is None and tick.command.throttle > 0
                    self.driver.sent(tick, time.monotonic())
        except OSError as exc:
            if not self._closing:
                self.error = f"the Donkey simulator's connection failed: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - a worker bug must end the drive, not hang it
            log.exception("edgeft: the Donkey drive failed")
            self.error = f"the drive failed: {type(exc).__name__}: {exc}"
        finally:
            self.finished.set()

    def stop(self) -> None:
        """Brake and straighten (the simulator holds it), then close."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._sock is not None and not self._peer_closed:
            try:
                if self._write(control(Command(final_stop().steering, -1.0)), final=True):
                    self.stats.notes.append("a final command (wheel straight, full brake) went to the Donkey simulator")
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10.0)
        if self._sock is not None:
            self._sock.close()
