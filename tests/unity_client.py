"""A client that talks to a server exactly as the released Udacity simulator does, written from its
C# (udacity/self-driving-car-sim: SocketIOComponent.cs, Encoder.cs, Decoder.cs, Parser.cs,
CommandServer.cs, JSONObject.cs) and not from edgeft's code, so the tests hold edgeft to the
simulator's dialect rather than to itself.

- A raw WebSocket to /socket.io/?EIO=4&transport=websocket; websocket-sharp offers no compression
  and sends no WebSocket-level pings. No Socket.IO CONNECT packet (`40`) is ever sent.
- "open" fires when the socket opens and again on the server's `0{...}` packet (HandleOpen reads
  its "sid"); CommandServer answers each with a telemetry: two chains from the start.
- Its ping thread sends `2` and waits for `3`; a server `2` is answered with `3`.
- Events are `42["name",{...}]`, compact (JSONObject.Stringify); a telemetry's values are
  strings ("N4": four decimals, the locale's separator), a manual-mode telemetry is `null`.
- `steer`: float.Parse(field.str) on steering_angle and throttle: a field that is not a JSON
  string throws inside a try/catch, no telemetry follows, and that chain stalls. Each steer or
  manual reply is answered with the next telemetry.
"""

from __future__ import annotations

import base64
import json
import time
from collections import deque
from dataclasses import dataclass, field

from websockets.sync.client import connect


@dataclass
class Reply:
    kind: str  # steer | manual
    raw: str
    steering: float | None = None
    throttle: float | None = None
    answers: int | None = None  # the index of the oldest unanswered telemetry of its kind, which it answers
    newest: int | None = None  # the newest telemetry sent when it arrived


@dataclass
class Transcript:
    sent: list[str] = field(default_factory=list)  # every text frame the client sent
    received: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)  # steer events the real simulator would have dropped
    open_packet: dict | None = None
    closed_by_server: bool = False


class UnityClient:
    def __init__(self, port: int, frames: list[bytes], speed: str = "10.0000", null_every: int | None = None,
                 comma: bool = False):
        self.url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        self.frames, self.speed, self.null_every, self.comma = frames, speed, null_every, comma
        self.transcript = Transcript()
        self._count = 0  # telemetries sent
        self._outstanding = {"steer": deque(), "manual": deque()}

    def _n4(self, value: float) -> str:
        text = f"{value:.4f}"
        return text.replace(".", ",") if self.comma else text

    def _telemetry(self, ws) -> None:
        index = self._count
        self._count += 1
        if self.null_every and index % self.null_every == self.null_every - 1:
            text = '42["telemetry",null]'  # Emit("telemetry", new JSONObject()): a NULL object prints "null"
            self._outstanding["manual"].append(index)
        else:
            image = base64.b64encode(self.frames[index % len(self.frames)]).decode()
            text = ('42["telemetry",{"steering_angle":"%s","throttle":"%s","speed":"%s","image":"%s"}]'
                    % (self._n4(0.0), self._n4(0.3), self.speed, image))
            self._outstanding["steer"].append(index)
        ws.send(text)
        self.transcript.sent.append(text)

    def run(self, replies: int, timeout_s: float = 30.0, hold: float = 0.0) -> Transcript:
        """Drive until `replies` steer/manual replies came (or the server closed); then, after
        `hold` seconds of pings only, leave as SocketIOComponent.Close does."""
        from websockets.exceptions import ConnectionClosed

        t = self.transcript
        deadline, leaving = time.monotonic() + timeout_s, False
        with connect(self.url, compression=None, ping_interval=None, open_timeout=10) as ws:
            self._telemetry(ws)  # ws.OnOpen -> "open"
            ws.send("2")
            t.sent.append("2")
            try:
                while len(t.replies) < replies:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"only {len(t.replies)} of {replies} replies in {timeout_s} s")
                    self._on(ws, ws.recv(timeout=remaining), answer=len(t.replies) < replies - 1)
                end = time.monotonic() + hold
                while time.monotonic() < end:
                    try:
                        self._on(ws, ws.recv(timeout=max(0.01, end - time.monotonic())), answer=False)
                    except TimeoutError:
                        pass
                leaving = True  # "41" is a goodbye: a server may close before "1" is sent, and that is not its doing
                ws.send("41")
                ws.send("1")
            except ConnectionClosed:
                t.closed_by_server = not leaving
                self._drain(ws)
        return t

    def _drain(self, ws) -> None:
        """Take what the server sent before it closed. A send into a closed connection raises before
        the messages already here are read; the Unity client's receiving never waits on its sending."""
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = ws.recv(timeout=0)
            except (ConnectionClosed, TimeoutError):
                return
            try:
                self._on(ws, message, answer=False)
            except ConnectionClosed:
                pass  # a ping it can no longer answer

    def _on(self, ws, message: str, answer: bool = True) -> None:
        t = self.transcript
        t.received.append(message)
        kind = int(message[0])  # Decoder: the Engine.IO packet type is the first character
        if kind == 0:
            t.open_packet = json.loads(message[1:])
            assert isinstance(t.open_packet["sid"], str)
            self._telemetry(ws)  # HandleOpen -> "open" again
        elif kind == 2:
            ws.send("3")
            t.sent.append("3")
        elif kind == 4 and message[1] == "2":
            payload = json.loads(message[2:])  # Parser: ["name"] or ["name", {object}]
            assert isinstance(payload, list) and 1 <= len(payload) <= 2 and isinstance(payload[0], str), message
            assert len(payload) == 1 or isinstance(payload[1], dict), message
            name, data = payload[0], payload[1] if len(payload) == 2 else {}
            if name == "steer":
                values = [data.get(k) for k in ("steering_angle", "throttle")]
                if not all(isinstance(v, str) for v in values):
                    t.stalled.append(message)  # float.Parse(null) throws: no telemetry, the chain stalls
                    return
                answers = self._outstanding["steer"].popleft() if self._outstanding["steer"] else None
                t.replies.append(Reply("steer", message, float(values[0]), float(values[1]), answers, self._count - 1))
            elif name == "manual":
                answers = self._outstanding["manual"].popleft() if self._outstanding["manual"] else None
                t.replies.append(Reply("manual", message, answers=answers, newest=self._count - 1))
            else:
                return
            if answer:
                self._telemetry(ws)
