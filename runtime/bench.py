"""`edgeft bench`: what an edge user compares runtimes by, measured on this machine.

Latency percentiles at batch 1, throughput at several batch sizes, peak memory, cold start
(a fresh process: import, verify, session, first frame), the provider, and the model's FLOPs
counted from the ONNX graph with the GFLOP/s achieved.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .backends import installed_targets
from .bundle import load_bundle
from .engine import Engine, EngineConfig
from .errors import EdgeftError


@dataclass
class BenchResult:
    bundle: str
    provider: str
    precision: str
    io_binding: bool
    input: str
    gflops_per_frame: float | None
    latency_ms: dict[str, float]
    throughput_fps: dict[int, float]
    gflops_per_s: dict[int, float]
    peak_rss_mb: float
    cold_start_s: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)  # the on-device verification, where the bundle has probes

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def count_flops(model: Path | bytes) -> float | None:
    """2 x multiply-accumulates of Conv and Gemm/MatMul for one frame, from inferred shapes."""
    try:
        import onnx  # noqa: F401 - the export extra; without it there is no count
    except ImportError:
        return None
    graph = _shaped_graph(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
    weights = {init.name: list(init.dims) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def weight_shape(name: str) -> list[int] | None:
        """Through the DequantizeLinear / Cast / Transpose an INT8 or FP16 graph puts before a weight."""
        while name not in weights and name in producers and producers[name].op_type in _PASS_THROUGH:
            name = producers[name].input[0]
        return weights.get(name) or shapes.get(name)

    return sum(_node_flops(node, shapes, weight_shape) for node in graph.node) / 1e9


_PASS_THROUGH = ("DequantizeLinear", "Identity", "Cast", "Transpose")


def _shaped_graph(model: Path | bytes):
    """The graph with batch 1 and every intermediate shape inferred."""
    import onnx
    from onnx import shape_inference

    proto = onnx.load(str(model)) if isinstance(model, Path) else onnx.load_from_string(model)
    for tensor in list(proto.graph.input) + list(proto.graph.output):
        dims = tensor.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    return shape_inference.infer_shapes(proto).graph


def _node_flops(node, shapes: dict[str, list[int]], weight_shape) -> float:
    out = shapes.get(node.output[0])
    if not out or not all(out):
        return 0.0
    if node.op_type == "Conv":
        kernel = weight_shape(node.input[1])
        return 2.0 * np.prod(out) * np.prod(kernel[1:]) if kernel else 0.0  # out elements x (Cin/groups x kh x kw)
    if node.op_type in ("Gemm", "MatMul"):
        a = shapes.get(node.input[0]) or weight_shape(node.input[0])
        return 2.0 * np.prod(out) * a[-1] if a else 0.0
    return 0.0


def cold_start(bundle: Path, device: str = "auto", precision: str | None = None) -> dict[str, float]:
    """A fresh interpreter: import edgeft.runtime, verify + open the bundle, run one frame."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import numpy as np\nfrom edgeft.runtime import Engine\nt1 = time.perf_counter()\n"
        f"engine = Engine.load({str(bundle)!r}, device={device!r}, precision={precision!r})\nt2 = time.perf_counter()\n"
        "engine.predict(np.zeros((480, 640, 3), np.uint8))\nt3 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1, t3 - t2)\n"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    total = time.perf_counter() - start
    imp, session, first = map(float, out)
    return {"import_s": imp, "session_s": session, "first_frame_s": first, "to_first_result_s": imp + session + first,
            "process_wall_s": total}


def bench(bundle: Path, device: str = "auto", threads: int | None = None, runs: int = 30, warmup: int = 5,
          batches: tuple[int, ...] = (1, 8, 32), with_cold_start: bool = True, io_binding: bool | None = None,
          precision: str | None = None) -> BenchResult:
    loaded = load_bundle(bundle)  # hashed once; verified on this backend where the bundle carries its probes
    engine = Engine(loaded, EngineConfig(device=device, threads=threads, io_binding=io_binding, precision=precision,
                                         verify=loaded.manifest.proof is not None))
    spec = engine.manifest.input
    if spec.batch is not None:
        batches = (spec.batch,)
    rng = np.random.default_rng(0)
    latency: list[float] = []
    throughput: dict[int, float] = {}
    for size in batches:
        frames = rng.integers(0, 256, (size, spec.height, spec.width, 3), dtype=np.uint8)
        for _ in range(warmup):
            engine.run(frames)
        times = []
        for _ in range(max(3, runs // size) if size > 1 else runs):
            start = time.perf_counter()
            engine.run(frames)
            times.append((time.perf_counter() - start) * 1000)
        if size == 1:
            latency = times
        throughput[size] = 1000.0 * size / float(np.median(times))
    flops = count_flops(engine.bundle.model)
    p = np.percentile(latency, [50, 90, 99]) if latency else [float("nan")] * 3
    return BenchResult(
        bundle=str(bundle), provider=engine.provider, precision=engine.precision, io_binding=engine.io_binding,
        input=f"{spec.height}x{spec.width}", agreement=engine.verification.agreement if engine.verification else {},
        gflops_per_frame=flops, latency_ms={"p50": float(p[0]), "p90": float(p[1]), "p99": float(p[2])},
        throughput_fps=throughput, gflops_per_s={b: (flops or 0.0) * fps for b, fps in throughput.items()},
        peak_rss_mb=peak_rss_mb(),
        cold_start_s=cold_start(bundle, device, precision) if with_cold_start else {},
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, which starts afresh at exec; ru_maxrss
    would carry over the peak of a parent that forked it (a big one, say, with TensorFlow loaded)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_all(bundle: Path, threads: int | None = None, runs: int = 30, batches: tuple[int, ...] = (1, 8, 32)
              ) -> list[BenchResult | str]:
    """`bench` on every backend and precision installed here, one at a time (an idle session's
    spinning threads would steal the cores); a target that cannot run gives its error line."""
    results: list[BenchResult | str] = []
    for target in installed_targets(load_bundle(bundle).manifest):
        try:
            results.append(bench(bundle, target.device, threads, runs, batches=batches, precision=target.precision))
        except EdgeftError as exc:
            results.append(f"{target}: {exc}")
    return results
