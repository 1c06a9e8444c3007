"""edgeft.drive: the closed loop. A bundle steers a simulator, safely, and every drive can be recorded.

Vehicle software uses the pieces without the command line:

    from edgeft.runtime import Engine
    from edgeft.drive import DriveConfig, DriveStats, Outputs, UdacityServer, drive

    engine = Engine.load("models/steer")
    stats = DriveStats()
    outputs = Outputs([], None, stats)
    outcome = drive(UdacityServer(engine, DriveConfig(), stats, outputs), outputs, stats)

The dialects (`udacity` server, `donkey` client) share one `Driver` (decode, infer, refuse,
control) and one safety policy (`safety`); `sim` is the built-in simulator on the built-in
`road`, which the driving sample is drawn from too. Only edgeft.runtime's public names are used.
"""

from .car import Car
from .controller import Controller, ControllerConfig, DriveError
from .donkey import DonkeyClient, DonkeyConfig
from .driver import DriveConfig, Driver, Tick, check_steering_bundle
from .loop import DriveOutcome, Link, drive
from .messages import Command, Telemetry
from .outputs import Outputs
from .record import DriveLog
from .road import View, curvature, expert_steering, render
from .safety import REASONS, SafetyConfig, final_stop, safe_stop
from .sim import SimConfig, SimMetrics, Simulator
from .stats import DriveStats
from .udacity import UdacityConfig, UdacityServer

__all__ = [
    "Car", "Command", "Controller", "ControllerConfig", "DonkeyClient", "DonkeyConfig", "DriveConfig", "DriveError", "DriveLog",
    "DriveOutcome", "DriveStats", "Driver", "Link", "Outputs", "REASONS", "SafetyConfig", "SimConfig", "SimMetrics", "Simulator",
    "Telemetry", "Tick", "UdacityConfig", "UdacityServer", "View", "check_steering_bundle", "curvature", "drive",
    "expert_steering", "final_stop", "render", "safe_stop",
]
