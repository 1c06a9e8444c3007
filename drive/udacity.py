"""`edgeft drive --sim udacity`: the server the released Udacity simulator connects to (see `wire`).

One session per connection. Its reader thread answers pings at once, answers the null telemetry
of manual driving with `manual`, and queues the rest; its worker runs the newest queued frame and
answers every queued telemetry with that command (one reply each, so neither of the simulator's
two telemetry chains stalls, and none waits for an older frame to be run). The reader is also
the watchdog: a telemetry still unanswered `max_age_ms` after it arrived, because inference is
taking too long, is answered with a brake there and then. On the way out every simulator gets a
final command that is safe to hold (the simulator keeps its last command for ever).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from edgeft.runtime import Engine

from . import wire
from .controller import DriveError
from .driver import DriveConfig, Driver
from .messages import Telemetry
from .outputs import Outputs
from .safety import LATE, final_stop
from .stats import DriveStats

log = logging.getLogger("edgeft")
_wire_log = logging.getLogger("edgeft.websockets")  # the library's per-connection INFO lines are not news
_wire_log.setLevel(logging.WARNING)
POLLING_REFUSED = "edgeft drive speaks the WebSocket transport only: connect with transports=['websocket']"


@dataclass(frozen=True)
class UdacityConfig:
    host: str = "127.0.0.1"
    port: int = 4567
    once: bool = False  # end the drive when the first simulator disconnects
    ping_interval_s: float = 25.0  # Engine.IO pings from the server (what EIO 4 clients expect)
    ping_timeout_s: float = 20.0  # ... and how long a pong may take before the connection is dropped
    max_payload: int = 8 * 2**20


@dataclass
class _Waiting:
    telemetry: Telemetry
    answered: bool = False


def _check_request(connection, request):
    """Only the Socket.IO path, and only its WebSocket transport."""
    url = urlsplit(request.path)
    if url.path.rstrip("/") != wire.PATH.rstrip("/"):
        return connection.respond(HTTPStatus.NOT_FOUND, f"edgeft drive serves the Udacity simulator at {wire.PATH}\n")
    if parse_qs(url.query).get("transport", ["websocket"])[0] != "websocket":
        return connection.respond(HTTPStatus.BAD_REQUEST, json.dumps({"code": 3, "message": POLLING_REFUSED}))
    return None


class _Session:
    def __init__(self, connection, driver: Driver, stats: DriveStats, config: UdacityConfig):
        self.connection, self.driver, self.stats, self.config = connection, driver, stats, config
        self.sid = secrets.token_urlsafe(15)
        self.max_age_s = driver.config.safety.max_age_s
        self._waiting: list[_Waiting] = []  # queued for the worker
        self._running: list[_Waiting] = []  # taken by the worker, inference under way
        self._cond = threading.Condition()
        self._closing = False
        self._worker = threading.Thread(target=self._work, name="edgeft-drive-udacity", daemon=True)

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._send(wire.open_packet(self.sid, self.config.ping_interval_s, self.config.ping_timeout_s, self.config.max_payload))
            self._worker.start()
            self._read()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            if self._worker.is_alive():
                self._worker.join(10.0)

    def _send(self, text: str) -> float:
        self.connection.send(text)
        return time.monotonic()

    def _read(self) -> None:
        watch = max(0.001, min(self.max_age_s / 4, 0.05))
        next_ping, ping_sent, pong = time.monotonic() + self.config.ping_interval_s, None, 0.0
        while not self._closing:
            try:
                message = self.connection.recv(timeout=watch)
            except TimeoutError:
                message = None
            now = time.monotonic()
            if message is not None:
                packet = wire.parse(message)
                if packet.kind == "pong":
                    pong = now
                elif not self._handle(packet, now):
                    return
            self._watchdog(now)
            if ping_sent is not None and pong < ping_sent and now - ping_sent > self.config.ping_timeout_s:
                self.stats.notes.append(f"a simulator stopped answering pings for {self.config.ping_timeout_s:g} s: dropped")
                return
            if now >= next_ping:
                with self._cond:
                    ping_sent = self._send(wire.PING)
                next_ping = now + self.config.ping_interval_s

    def _handle(self, packet: wire.Packet, now: float) -> bool:
        """Answer one packet; False when the client is leaving."""
        if packet.kind in ("close", "disconnect"):
            return False
        with self._cond:
            if packet.kind == "ping":
                self._send(wire.PONG + ("probe" if packet.probe else ""))
            elif packet.kind == "connect":  # a modern client's CONNECT; the Unity client never sends it
                self._send(wire.connect_reply(self.sid))
            elif packet.kind == "event" and packet.name == "telemetry":
                self.stats.count("telemetry")
                telemetry = wire.telemetry(packet.data, now, time.time())
                if telemetry is None:
                    self._send(wire.MANUAL)
                    self.stats.count("manual")
                else:
                    self._waiting.append(_Waiting(telemetry))
                    self._cond.notify_all()
        return True

    def _watchdog(self, now: float) -> None:
        """Brake for every telemetry the model has not answered within max-age."""
        with self._cond:
            for waiting in [*self._running, *self._waiting]:
                if not waiting.answered and now - waiting.telemetry.received > self.max_age_s and not self._closing:
                    tick = self.driver.stop(waiting.telemetry, LATE)
                    waiting.answered = True
                    self.driver.sent(tick, self._send(wire.steer(tick.command, waiting.telemetry.speed)))

    def _work(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                with self._cond:
                    while not self._waiting and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        return
                    self._running, self._waiting = [w for w in self._waiting if not w.answered], []
                    batch = self._running
                if not batch:
                    continue
                readable = [w for w in batch if w.telemetry.problem is None]
                newest = (readable or batch)[-1]
                tick = self.driver.decide(newest.telemetry)
                with self._cond:
                    for waiting in batch:
                        if not waiting.answered and not self._closing:
                            waiting.answered = True
                            sent = self._send(wire.steer(tick.command, waiting.telemetry.speed))
                            self.driver.sent(tick, sent, waiting.telemetry.received, write=waiting is newest)
                    self._running = []
        except ConnectionClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - a worker bug must end this session, not hang it
            log.exception("edgeft: a drive session failed")
            self.stats.errors.append(f"a session failed: {type(exc).__name__}: {exc}")
            self.connection.close()

    def stop(self) -> None:
        """The final command, safe to hold for ever, then close."""
        from websockets.exceptions import ConnectionClosed

        with self._cond:
            if self._closing:
                return
            self._closing = True
            for waiting in [*self._running, *self._waiting]:
                waiting.answered = True
            self._cond.notify_all()
            try:
                self._send(wire.steer(final_stop(), 0.0))
            except ConnectionClosed:
                pass
        self.connection.close()


class UdacityServer:
    """Serves every simulator that connects; `finished` is set when `once` and the first one left."""

    def __init__(self, engine: Engine, drive: DriveConfig, stats: DriveStats, outputs: Outputs | None = None,
                 config: UdacityConfig = UdacityConfig()):
        self.engine, self.drive, self.stats, self.outputs, self.config = engine, drive, stats, outputs, config
        self.finished = threading.Event()
        self.error: str | None = None
        self._sessions: set[_Session] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._server = None
        self._thread: threading.Thread | None = None
        stats.simulator = f"udacity at {config.host}:{config.port}"
        stats.provider = engine.provider

    def start(self) -> UdacityServer:
        try:
            from websockets.sync.server import serve
        except ImportError:
            raise DriveError("edgeft drive --sim udacity needs the drive extra: pip install 'edgeft[drive]'") from None
        try:
            self._server = serve(self._handle, self.config.host, self.config.port, process_request=_check_request,
                                 compression=None, ping_interval=None, max_size=self.config.max_payload, server_header=None,
                                 logger=_wire_log)
        except OSError as exc:
            raise DriveError(f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}") from None
        self.stats.simulator = f"udacity at {self.config.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgeft-drive-server", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self._server.socket.getsockname()[1] if self._server is not None else self.config.port

    def _handle(self, connection) -> None:
        session = _Session(connection, Driver(self.engine, self.drive, self.stats, self.outputs), self.stats, self.config)
        with self._lock:
            if self._stopping:
                return
            self._sessions.add(session)
        self.stats.count("sessions")
        try:
            session.run()
        finally:
            with self._lock:
                self._sessions.discard(session)
            if self.config.once:
                self.finished.set()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            sessions = list(self._sessions)
        for session in sessions:
            session.stop()
        if sessions:
            self.stats.notes.append(f"a final command (wheel straight, no throttle) went to {len(sessions)} simulator(s)")
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(10.0)
