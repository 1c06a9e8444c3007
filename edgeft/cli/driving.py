"""Closed-loop commands: `drive` steers a simulator with a bundle, `sim` is the built-in simulator."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgeft.runtime import EdgeftError, SinkOptions

from .common import OUTPUT, Device, Force, Model, Threads, app, err, stdout, user_errors
from .display import LiveLine, drive_table, sim_table
from .running import load_engine

SIM, CONTROL, SAFETY, BUILTIN = "Simulator", "Controller", "Safety", "Built-in simulator"
DEFAULTS = {"udacity": (4567, 9.0, 30.0), "donkey": (9091, 3.0, 10.0)}  # port, --speed, --max-speed in the sim's unit


@app.command("drive", rich_help_panel="Closed loop")
def drive_command(
    model: Model = None,
    device: Device = "auto",
    threads: Threads = None,
    sim: Annotated[str, typer.Option(help="udacity (serve its simulator, or `edgeft sim`) | donkey (connect to its simulator)", rich_help_panel=SIM)] = "udacity",
    host: Annotated[str, typer.Option(help="address to serve on (udacity) or connect to (donkey)", rich_help_panel=SIM)] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(help="default 4567 (udacity), 9091 (donkey)", rich_help_panel=SIM)] = None,
    scene: Annotated[str, typer.Option(help="donkey: the scene to load", rich_help_panel=SIM)] = "generated_road",
    once: Annotated[bool, typer.Option(help="udacity: end when the first simulator disconnects", rich_help_panel=SIM)] = False,
    speed: Annotated[Optional[float], typer.Option(help="target speed, the simulator's unit: mph (udacity, default 9), m/s (donkey, default 3)", rich_help_panel=CONTROL)] = None,
    max_speed: Annotated[Optional[float], typer.Option(help="no throttle at or above this speed (default 30 mph / 10 m/s)", rich_help_panel=CONTROL)] = None,
    throttle: Annotated[Optional[float], typer.Option(help="a fixed throttle instead of the PI speed controller", rich_help_panel=CONTROL)] = None,
    kp: Annotated[float, typer.Option(help="speed controller: proportional gain (drive.py's)", rich_help_panel=CONTROL)] = 0.1,
    ki: Annotated[float, typer.Option(help="speed controller: integral gain per tick (drive.py's)", rich_help_panel=CONTROL)] = 0.002,
    max_steering: Annotated[float, typer.Option(help="clamp |steering| to this (1 = full lock)", rich_help_panel=CONTROL)] = 1.0,
    steering_rate: Annotated[Optional[float], typer.Option(help="most steering change per second (full lock = 1)", rich_help_panel=CONTROL)] = None,
    smoothing: Annotated[float, typer.Option(help="exponential steering smoothing in [0, 1) (0: none)", rich_help_panel=CONTROL)] = 0.0,
    slow_on_steering: Annotated[float, typer.Option(help="target speed x (1 - this x |steering|)", rich_help_panel=CONTROL)] = 0.5,
    max_age_ms: Annotated[float, typer.Option(help="a frame older than this when its command would go out gets a brake", rich_help_panel=SAFETY)] = 250.0,
    brake: Annotated[float, typer.Option(help="brake strength of a safe stop, 0..1", rich_help_panel=SAFETY)] = 1.0,
    record_log: Annotated[Optional[Path], typer.Option(help="record the drive as a Udacity driving_log.csv + IMG/ in DIR", rich_help_panel=OUTPUT)] = None,
    output: Annotated[Optional[Path], typer.Option(help="predictions and commands' reasons to FILE.jsonl or FILE.csv", rich_help_panel=OUTPUT)] = None,
    save_video: Annotated[Optional[Path], typer.Option(help="annotated video of what the car saw (.mp4)", rich_help_panel=OUTPUT)] = None,
    record: Annotated[Optional[Path], typer.Option(help="record frames, annotations, predictions and telemetry to FILE.mcap", rich_help_panel=OUTPUT)] = None,
    foxglove: Annotated[Optional[str], typer.Option(help="serve the same channels live to Foxglove at [HOST:]PORT", rich_help_panel=OUTPUT)] = None,
    force: Force = False,
    max_ticks: Annotated[Optional[int], typer.Option(help="stop after this many commands", rich_help_panel="Run")] = None,
    quiet: Annotated[bool, typer.Option(help="no live line, only the summary", rich_help_panel="Run")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON", rich_help_panel="Run")] = False,
) -> None:
    """Steer a simulator with a steering bundle (no TensorFlow): Udacity's (a server) or DonkeyCar's (a client)."""
    with user_errors():
        from edgeft.drive import ControllerConfig, DriveConfig, DriveLog, DriveStats, Outputs, SafetyConfig, check_steering_bundle
        from edgeft.drive import drive
        from edgeft.runtime import check_sinks
        from edgeft.runtime.sinks import open_checked

        if sim not in DEFAULTS:
            raise EdgeftError(f"--sim must be udacity or donkey, got '{sim}'")
        if max_ticks is not None and max_ticks < 1:
            raise EdgeftError(f"--max-ticks must be at least 1, got {max_ticks}")
        default_port, default_speed, default_max = DEFAULTS[sim]
        config = DriveConfig(
            ControllerConfig(speed=default_speed if speed is None else speed, max_speed=default_max if max_speed is None else max_speed,
                             throttle=throttle, kp=kp, ki=ki, max_steering=max_steering, steering_rate=steering_rate,
                             smoothing=smoothing, slow_on_steering=slow_on_steering),
            SafetyConfig(max_age_ms=max_age_ms, brake=brake))
        specs = [f"{kind}:{path}" for kind, path in (("predictions", output), ("video", save_video), ("mcap", record),
                                                     ("foxglove", foxglove)) if path]
        options = SinkOptions(force=force, fps=20.0)
        checked = check_sinks(specs, options)  # every output is checked before anything opens
        if record_log is not None:
            DriveLog.check(record_log, force)
        engine = load_engine(model, device, threads)
        check_steering_bundle(engine.manifest)
        sinks = open_checked(checked, engine.manifest, options)
        stats = DriveStats()
        outputs = Outputs(sinks, DriveLog(record_log, force) if record_log is not None else None, stats)
        link = _link(sim, engine, config, stats, outputs, host, port or default_port, scene, once)
        with LiveLine(err, lambda: _live(stats), enabled=not quiet) as live:
            outcome = drive(link, outputs, stats, max_ticks, on_wait=live.update, started=lambda: _started(sim, stats, quiet))
        if json_out:
            print(json.dumps(outcome.stats.as_dict()))
        else:
            stdout.print(drive_table(outcome.stats, engine.manifest.name, outcome.signal))
        if outcome.error:
            raise EdgeftError(outcome.error)
        if outcome.signal:
            raise typer.Exit(outcome.exit_code)


def _link(sim: str, engine, config, stats, outputs, host: str, port: int, scene: str, once: bool):
    from edgeft.drive import DonkeyClient, DonkeyConfig, UdacityConfig, UdacityServer

    if sim == "udacity":
        return UdacityServer(engine, config, stats, outputs, UdacityConfig(host=host, port=port, once=once))
    return DonkeyClient(engine, config, stats, outputs, DonkeyConfig(host=host, port=port, scene=scene))


def _started(sim: str, stats, quiet: bool) -> None:
    if not quiet:
        what = "serving the Udacity simulator" if sim == "udacity" else "driving the Donkey simulator"
        err.print(f"edgeft drive: {what} ({stats.simulator.split(' at ')[1]}); Ctrl-C to stop", highlight=False)


def _live(stats) -> str:
    recent = stats.recent()
    trip = f"p50 {recent['p50']:.1f} ms, p99 {recent['p99']:.1f} ms" if recent else "-"
    return (f"[bold]{stats.ticks}[/] commands  {stats.rate:.1f}/s  round trip {trip}  safe stops {stats.stopped}  "
            f"drops {stats.drops}  simulators {stats.sessions}")


@app.command("sim", rich_help_panel="Closed loop")
def sim_command(
    host: Annotated[str, typer.Option(help="where edgeft drive listens", rich_help_panel=BUILTIN)] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="edgeft drive's port", rich_help_panel=BUILTIN)] = 4567,
    distance: Annotated[float, typer.Option(help="metres to drive", rich_help_panel=BUILTIN)] = 200.0,
    fps: Annotated[float, typer.Option(help="simulated ticks per second: each command moves the car 1/FPS s", rich_help_panel=BUILTIN)] = 20.0,
    realtime: Annotated[bool, typer.Option(help="move the car by the wall time between commands instead (latency counts)", rich_help_panel=BUILTIN)] = False,
    max_off_road: Annotated[float, typer.Option(help="end the run after this many seconds off the road in one go", rich_help_panel=BUILTIN)] = 3.0,
    connect_timeout: Annotated[float, typer.Option(help="seconds to keep trying to reach edgeft drive", rich_help_panel=BUILTIN)] = 30.0,
    decimal_comma: Annotated[bool, typer.Option(help="write numbers with a comma decimal, as Unity does under such a locale", rich_help_panel=BUILTIN)] = False,
    seed: Annotated[int, typer.Option(help="image noise seed", rich_help_panel=BUILTIN)] = 0,
    strict: Annotated[bool, typer.Option(help="exit 1 unless the distance was driven without leaving the road", rich_help_panel=BUILTIN)] = False,
    quiet: Annotated[bool, typer.Option(help="no live line, only the summary")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """The built-in simulator: the sample's road, driven by `edgeft drive` over the Udacity simulator's own dialect."""
    with user_errors():
        from edgeft.drive import SimConfig, Simulator

        simulator = Simulator(SimConfig(host=host, port=port, distance_m=distance, fps=fps, realtime=realtime,
                                        max_off_road_s=max_off_road, connect_timeout_s=connect_timeout,
                                        decimal_comma=decimal_comma, seed=seed))
        received: list[int] = []

        def request_stop(signum: int, frame: object) -> None:  # noqa: ARG001
            received.append(signum)
            simulator.stop()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with LiveLine(err, lambda: _sim_live(simulator), enabled=not quiet) as live:
                metrics = simulator.run(on_tick=lambda car, track: live.update())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if json_out:
            print(json.dumps(metrics.as_dict()))
        else:
            stdout.print(sim_table(metrics, received[0] if received else None))
        if received:
            raise typer.Exit(128 + received[0])
        if strict and not metrics.completed:
            raise EdgeftError(f"the run did not complete: {metrics.ended}, {metrics.off_road_s:.1f} s off the road, "
                              f"{metrics.distance_m:.0f} of {distance:g} m")


def _sim_live(simulator) -> str:
    car, track = simulator.car, simulator.track
    return (f"[bold]{car.s:.0f}[/] m  {car.speed_mph:.1f} mph  cte {car.offset:+.2f} m  off road {track.off:.1f} s  "
            f"ticks {track.ticks}")

