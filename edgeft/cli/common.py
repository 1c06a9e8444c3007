"""What every command shares: the app, the consoles, one-line errors, and each option declared once."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from edgeft.runtime import EdgeftError

app = typer.Typer(
    help="Export keras.applications backbones to verified ONNX bundles and run them on the edge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Piped or logged, Rich would wrap every table at 80 columns (`bench --device all` became unreadable):
# without a terminal or COLUMNS, tables get room to keep one line per row.
PIPED_WIDTH = 200
stdout = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH)
err = Console(stderr=True)

MODELS_DIR = Path("models")
MODEL, EXPORT, DATA, RUN, OUTPUT, BAGS, ROS2, RAY = ("Model", "Export", "Dataset", "Run", "Outputs", "ROS bags", "ROS 2",
                                                  "Ray cluster")  # --help sections


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Expected failures become one line on stderr and exit code 1; Ctrl-C exits 130.
    The message is escaped: a path like 'runs/[test]' must reach the user as written.
    A process started with SIGINT ignored (a background job of a non-interactive shell, as CI
    runs things) still stops on it: the handler is set, not inherited."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    except EdgeftError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def log_to_stderr() -> None:
    """edgeft's own log lines (what runs, what was skipped) on stderr. Only edgeft's: the root
    logger is left alone, so libraries (botocore, Ray, the Foxglove SDK) do not print their INFO
    chatter around our one-line errors; their warnings still reach Python's last-resort handler."""
    logger = logging.getLogger("edgeft")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it per command)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def export_available() -> None:
    """Import TensorFlow with its native start-up log (CUDA probing on CPU machines) muted."""
    try:
        from edgeft.export.quiet import native_stderr_muted

        with native_stderr_muted():
            import tensorflow as tf
            import tf2onnx  # noqa: F401

            tf.config.list_physical_devices()  # cuInit happens here; its failure is not news
    except ImportError:
        raise EdgeftError("this command needs the export extra: pip install 'edgeft[export]'") from None


def names(text: str) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'): the comma-separated option values."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def say(text: str) -> None:
    """A plain line on stdout: paths and names are printed as written, never as markup."""
    stdout.print(text, markup=False, highlight=False, soft_wrap=True)


# Options used by several commands, declared once.
Model = Annotated[Optional[Path], typer.Option(help="bundle folder (default: the only one under models/)", rich_help_panel=MODEL)]
Device = Annotated[str, typer.Option(help="auto | cpu | cuda | tensorrt | openvino (auto: the fastest that runs here and passes verification)", rich_help_panel=MODEL)]
Precision = Annotated[Optional[str], typer.Option(help="fp32 | bf16 | fp16 with a named --device (default: the bundle's own)", rich_help_panel=MODEL)]
Threads = Annotated[Optional[int], typer.Option(help="onnxruntime intra-op threads", rich_help_panel=MODEL)]
IoBinding = Annotated[Optional[bool], typer.Option("--io-binding/--no-io-binding", rich_help_panel=MODEL,
                                                   help="bind frames to device buffers (default: on GPU providers)")]
ModelsDir = Annotated[Path, typer.Option(help="where bundles are written", rich_help_panel=EXPORT)]
Force = Annotated[bool, typer.Option(help="replace existing outputs (never done otherwise)", rich_help_panel=OUTPUT)]
Seed = Annotated[int, typer.Option(help="seed for random init, splits and augmentation")]
# How a backbone is built: export and finetune must build it the same way.
Weights = Annotated[str, typer.Option(help="imagenet | none | PATH to a weights file", rich_help_panel=MODEL)]
Cut = Annotated[Optional[str], typer.Option(help="cut at this layer instead of dropping only the classifier", rich_help_panel=MODEL)]
Pooling = Annotated[str, typer.Option(help="avg | max | none: pooling of a 4-D feature map", rich_help_panel=MODEL)]
InputSize = Annotated[Optional[str], typer.Option(help="N or HxW, e.g. 299 or 224x320", rich_help_panel=MODEL)]
Preprocess = Annotated[Optional[str], typer.Option(help="tf | caffe | torch | unit | none (needed for model files)",
                                                   rich_help_panel=MODEL)]
TrustH5 = Annotated[bool, typer.Option(help="allow a legacy .h5 model file (no safe mode)", rich_help_panel=MODEL)]
# How a labelled dataset is planned: extract and finetune must plan it the same way.
Val = Annotated[float, typer.Option(help="validation fraction", rich_help_panel=DATA)]
Test = Annotated[float, typer.Option(help="test fraction", rich_help_panel=DATA)]
Augment = Annotated[str, typer.Option(help="training-split augmentation: flip, brightness (comma separated)", rich_help_panel=DATA)]
Cameras = Annotated[str, typer.Option(help="driving log cameras, comma separated", rich_help_panel=DATA)]
Correction = Annotated[float, typer.Option(help="driving log: steering added for left, subtracted for right", rich_help_panel=DATA)]
# How frames are decoded: run and extract decode them the same way.
Decode = Annotated[str, typer.Option(help="auto | reduced | full: JPEG frames decoded at the model's size (DCT scaling) or whole, "
                                          "then resized (auto: reduced, full when --save-video/--show draw the frames)",
                                     rich_help_panel="Source")]
DecodeWorkers = Annotated[Optional[int], typer.Option(help="threads decoding the cameras of one tick side by side (default: the cores inference leaves free, at least 1: serial)",
                                                      rich_help_panel="Source")]
Split = Annotated[str, typer.Option(help="driving logs and bags: random (rows shuffled) | time (contiguous blocks: train, val, "
                                         "test; neighbouring frames are near-duplicates)", rich_help_panel=DATA)]
# How a ROS bag is read: run and extract read them the same way.
TruthTopic = Annotated[Optional[str], typer.Option(help="topic holding ground truth (default for Udacity bags: /vehicle/steering_report)", rich_help_panel=BAGS)]
TruthField = Annotated[Optional[str], typer.Option(help="field of the truth message, dotted (default: steering_wheel_angle)", rich_help_panel=BAGS)]
SyncTolerance = Annotated[Optional[float], typer.Option(help="seconds within which cameras' stamps pair, in bags and ROS 2 rigs (default: half the frame period)", rich_help_panel=BAGS)]
Incomplete = Annotated[str, typer.Option(help="a tick missing a camera (bags, ROS 2 rigs): run (the cameras present) | skip", rich_help_panel=BAGS)]
Start = Annotated[Optional[float], typer.Option(help="start this many seconds into the bag", rich_help_panel=BAGS)]
End = Annotated[Optional[float], typer.Option(help="stop this many seconds into the bag", rich_help_panel=BAGS)]

# How edgeft meets a live ROS 2 graph: run and topics meet it the same way.
RosDomain = Annotated[Optional[int], typer.Option(help="ROS_DOMAIN_ID to use (default: the environment's, else 0)", rich_help_panel=ROS2)]


def decode_mode(choice: str, draws_frames: bool = False) -> str:
    """--decode's value as the pipeline takes it: auto is reduced, unless an output draws the
    frames (an annotated video, a window), which then get them at full size."""
    if choice not in ("auto", "reduced", "full"):
        raise EdgeftError(f"--decode must be auto, reduced or full, got '{choice}'")
    return ("full" if draws_frames else "reduced") if choice == "auto" else choice

# How a dataset is extracted on a Ray cluster: extract and compare take the same options.
RayAddress = Annotated[Optional[str], typer.Option("--ray", help="extract on a Ray cluster: auto | local | HOST:PORT", rich_help_panel=RAY)]
RayActors = Annotated[Optional[int], typer.Option(help="actors (default: the cluster's CPUs / --ray-cpus-per-actor)", rich_help_panel=RAY)]
RayCpusPerActor = Annotated[int, typer.Option(help="CPUs (onnxruntime threads) per actor", rich_help_panel=RAY)]


def by_time(split: str) -> bool:
    if split not in ("random", "time"):
        raise EdgeftError(f"--split must be random or time, got '{split}'")
    return split == "time"


def bag_options(truth_topic: str | None, truth_field: str | None, tolerance: float | None, incomplete: str,
                start: float | None, end: float | None):
    from edgeft.runtime.sources import BagOptions

    if incomplete not in ("run", "skip"):
        raise EdgeftError(f"--incomplete must be run or skip, got '{incomplete}'")
    return BagOptions(tolerance, incomplete == "skip", truth_topic, truth_field, start, end)
