"""A stand-in for the DonkeyCar simulator's TCP server, written from its C# (tawnkramer/sdsandbox:
tcp/JsonTcpClient.cs, TcpMenuHandler.cs, TcpCarHandler.cs) and gym-donkeycar's client, not from
edgeft's code.

- Every message it sends is compact JSON plus "\\n" (JsonTcpClient.SendMsg).
- It parses each TCP read as ONE message (OnDataRecv -> new JSONObject(str)): a read holding two
  messages, or half of one, is a protocol violation here (the real one would drop or garble it).
- On connect the menu sends scene_selection_ready {"loaded":"1"}; get_scene_names is answered
  with scene_names; load_scene loads the scene, then the car sends car_loaded and telemetry at
  `rate` Hz: JSON numbers (Unity's float.ToString: a comma decimal under some locales, `comma`),
  a base64 JPEG, hit, pos_x/y/z, time, cte.
- control's steering, throttle and brake are parsed with the invariant culture: they must be
  JSON strings.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field

SCENES = ["generated_road", "warehouse", "sparkfun_avc", "generated_track", "mountain_track"]


@dataclass
class Control:
    steering: float
    throttle: float
    brake: float
    newest: int  # the newest telemetry sent when it arrived (-1: before any)


@dataclass
class Log:
    received: list[dict] = field(default_factory=list)  # every message, in order
    controls: list[Control] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    telemetry_sent: int = 0


class DonkeyServer:
    def __init__(self, frames: list[bytes], telemetries: int, rate: float = 20.0, comma: bool = False, ctes: list[float] | None = None,
                 hit_at: int | None = None, pause: tuple[int, float] | None = None):
        """`pause` = (n, seconds): after n telemetries the simulator goes quiet that long (a hang)."""
        self.frames, self.telemetries, self.rate, self.comma, self.pause = frames, telemetries, rate, comma, pause
        self.ctes, self.hit_at = ctes or [0.25], hit_at
        self.log = Log()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(30)
        self.port = self._listener.getsockname()[1]
        self._conn: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._loaded = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DonkeyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(60)
        self._listener.close()

    def _send(self, text: str) -> None:
        with self._send_lock:
            self._conn.sendall(text.encode() + b"\n")

    def _serve(self) -> None:
        self._conn, _ = self._listener.accept()
        self._conn.settimeout(0.05)
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        self._send('{"msg_type":"scene_selection_ready","loaded":"1"}')
        if self._loaded.wait(30):
            self._telemetry_loop()
        time.sleep(0.1)  # the last controls arrive (less than max-age: no silence brake yet)
        self._closing = True
        reader.join(10)
        self._conn.close()

    _closing = False

    def _read(self) -> None:
        while not self._closing:
            try:
                data = self._conn.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                message = json.loads(data.decode())  # one read, one message
            except ValueError:
                self.log.violations.append(f"a read that is not exactly one JSON object: {data[:120]!r}")
                continue
            self.log.received.append(message)
            self._on(message)

    def _on(self, message: dict) -> None:
        kind = message.get("msg_type")
        if kind == "get_scene_names":
            self._send(json.dumps({"scene_names": SCENES, "msg_type": "scene_names"}, separators=(",", ":")))
        elif kind == "load_scene":
            if message.get("scene_name") in SCENES:
                self._send('{"msg_type":"car_loaded"}')
                self._loaded.set()
        elif kind == "control":
            values = [message.get(k) for k in ("steering", "throttle", "brake")]
            if not all(isinstance(v, str) for v in values):
                self.log.violations.append(f"control values must be strings: {message}")
                return
            steering, throttle, brake = (float(v) for v in values)  # CultureInfo.InvariantCulture
            self.log.controls.append(Control(steering, throttle, brake, self.log.telemetry_sent - 1))

    def _number(self, value: float) -> str:
        text = repr(float(value))
        return text.replace(".", ",") if self.comma else text

    def _telemetry_loop(self) -> None:
        period = 1.0 / self.rate
        start = time.monotonic()
        for i in range(self.telemetries):
            if self.pause and i == self.pause[0]:
                time.sleep(self.pause[1])
                start += self.pause[1]
            time.sleep(max(0.0, start + i * period - time.monotonic()))
            image = base64.b64encode(self.frames[i % len(self.frames)]).decode()
            hit = "cone" if self.hit_at == i else "none"
            fields = {"steering_angle": 0.0, "throttle": 0.3, "speed": 2.5}
            numbers = ",".join(f'"{k}":{self._number(v)}' for k, v in fields.items())
            tail = ",".join(f'"{k}":{self._number(v)}' for k, v in
                            {"pos_x": 1.5, "pos_y": 0.0, "pos_z": 2.25, "time": i * period, "cte": self.ctes[i % len(self.ctes)]}.items())
            self.log.telemetry_sent = i + 1  # before the send: a control may come back before this line runs
            try:
                self._send(f'{{"msg_type":"telemetry",{numbers},"image":"{image}","hit":"{hit}",{tail}}}')
            except OSError:  # the client left
                return

