"""The controller (steering shaping, PI speed loop with anti-windup), the simulators' numbers and
the Socket.IO framing, each on its own."""

from __future__ import annotations

import math

import pytest

from edgeft.drive import Controller, ControllerConfig, DriveError, SafetyConfig
from edgeft.drive import wire
from edgeft.drive.donkey import parse_message
from edgeft.drive.messages import Command, sim_number, wire_number


def test_steering_is_clamped_rate_limited_and_smoothed() -> None:
    assert Controller(ControllerConfig(max_steering=0.5)).step(0.9, 9.0, 0.0).steering == 0.5
    limited = Controller(ControllerConfig(steering_rate=2.0))
    assert limited.step(0.0, 9.0, 0.0).steering == 0.0
    assert limited.step(1.0, 9.0, 0.1).steering == pytest.approx(0.2)  # 2 full locks per second, 0.1 s later
    assert limited.step(1.0, 9.0, 0.2).steering == pytest.approx(0.4)
    limited.stopped(0.3)  # a safe stop straightened the wheel: the next steer starts from there
    assert limited.step(1.0, 9.0, 0.4).steering == pytest.approx(0.2)
    smooth = Controller(ControllerConfig(smoothing=0.75))
    smooth.step(0.0, 9.0, 0.0)
    assert smooth.step(1.0, 9.0, 0.05).steering == pytest.approx(0.25)


def test_the_speed_loop_does_not_wind_up_while_saturated() -> None:
    """A car held at 0 mph for 20 s (stuck, or waiting): drive.py's integral would reach 9 x 400
    and keep full throttle long after the target is passed; here it stops growing at the limit."""
    controller = Controller(ControllerConfig(speed=9.0, slow_on_steering=0.0))
    throttles = [controller.step(0.0, 0.0, tick * 0.05).throttle for tick in range(400)]
    assert throttles[-1] == 1.0 and throttles[0] == pytest.approx(0.918)  # kp x 9 + ki x 9, then it saturates
    assert controller.integral <= (1.0 - 0.1 * 9) / 0.002 + 9  # stopped growing at the limit (drive.py's: 3600)
    integral = controller.integral
    controller.step(0.0, 0.0, 20.0)
    assert controller.integral == integral  # saturated, and the error pushes further: no integration
    assert controller.step(0.0, 9.5, 20.05).throttle < 0.1  # past the target: throttle comes off at once (wound up: 1.0)


def test_speed_targets_limits_and_a_fixed_throttle() -> None:
    c = Controller(ControllerConfig(speed=9.0, slow_on_steering=0.5))
    straight, sharp = c.step(0.0, 8.0, 0.0).throttle, Controller(c.config).step(1.0, 8.0, 0.0).throttle
    assert straight > 0 > sharp  # target 9 mph straight, 4.5 mph at full lock
    assert Controller(ControllerConfig(speed=50, max_speed=30)).step(0.0, 30.0, 0.0).throttle <= 0
    assert Controller(ControllerConfig(throttle=0.3)).step(0.2, 1.0, 0.0) == Command(0.2, 0.3)


@pytest.mark.parametrize("config", [dict(speed=-1), dict(max_steering=0), dict(throttle=2), dict(steering_rate=0),
                                    dict(smoothing=1.0), dict(kp=math.nan)])
def test_bad_controller_settings_are_refused(config) -> None:
    with pytest.raises(DriveError):
        ControllerConfig(**config)
    with pytest.raises(DriveError, match="--max-age-ms"):
        SafetyConfig(max_age_ms=-5)


@pytest.mark.parametrize(("text", "value"), [("0.1234", 0.1234), ("0,1234", 0.1234), ("-3,5", -3.5), ("1.234,5", 1234.5),
                                             ("1,234.5", 1234.5), (" 7 ", 7.0), (2, 2.0), (1.5, 1.5)])
def test_simulator_numbers_in_any_locale(text, value) -> None:
    assert sim_number(text, "speed") == value


@pytest.mark.parametrize("bad", ["nan", "inf", "fast", "", None, True, [1]])
def test_what_is_not_a_finite_number_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="speed"):
        sim_number(bad, "speed")


def test_what_goes_out_is_a_dot_decimal_string() -> None:
    assert wire_number(-0.00001) == "0.0000" and wire_number(0.12345) == "0.1235" and wire_number(-1) == "-1.0000"
    assert wire.steer(Command(0.25, -1.0), 12.0) == '42["steer",{"steering_angle":"0.2500","throttle":"-1.0000"}]'
    assert wire.steer(Command(0.0, -1.0), 4.0) == '42["steer",{"steering_angle":"0.0000","throttle":"0.0000"}]'


@pytest.mark.parametrize(("text", "kind", "name"), [
    ("2", "ping", None), ("3", "pong", None), ("2probe", "ping", None), ("1", "close", None), ("40", "connect", None),
    ('40{"token":"x"}', "connect", None), ("41", "disconnect", None), ('42["telemetry",null]', "event", "telemetry"),
    ('42["telemetry"]', "event", "telemetry"), ('421["telemetry",{}]', "event", "telemetry"),
    ('42/other,["telemetry",{}]', "other", "/other"), ("42[1,2]", "other", None), ("42{", "other", None), ("", "other", None),
    ("6", "other", None)])
def test_socketio_framing(text, kind, name) -> None:
    packet = wire.parse(text)
    assert (packet.kind, packet.name) == (kind, name)


def test_telemetry_fields_and_manual_mode() -> None:
    assert wire.telemetry(None) is None and wire.telemetry({}) is None  # drive.py's `if data:`: manual
    t = wire.telemetry({"steering_angle": "-12,5000", "throttle": "0,3000", "speed": "8,0000", "image": "/9j/"})
    assert (t.steering, t.throttle, t.speed, t.jpeg, t.problem) == (-0.5, 0.3, 8.0, b"\xff\xd8\xff", None)  # degrees / 25
    assert wire.telemetry([1]).problem == "the telemetry is not an object"
    assert "no image" in wire.telemetry({"speed": "1"}).problem


def test_donkey_messages_with_a_comma_decimal() -> None:
    assert parse_message('{"msg_type":"telemetry","cte":0,25,"speed":1,5E-05,"pos":[1,5,2]}')["cte"] == 0.25
    assert parse_message('{"msg_type":"telemetry","speed":-1,5}')["speed"] == -1.5
    assert parse_message('{"no_type":1}') is None and parse_message("not json") is None
