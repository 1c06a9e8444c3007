"""`edgeft extract --ray ADDRESS`: the same extraction on a Ray cluster (the `ray` extra).

The plan, the shards and the index are exactly single-process extract's: the driver plans (a
dataset's items, or a recorded source's listing of frame references), Ray Data maps them over an
actor pool (`map_batches`), and the driver writes the rows as they come back, in order. Each
actor materialises the bundle once from the object store, verifies it against the manifest's
sha256 (`load_bundle`), loads one Engine on the backend and precision the driver chose (and
deletes the copy), with its intra-op threads set to the CPUs Ray gave the actor (onnxruntime ignores OMP_NUM_THREADS, so without this several actors would
oversubscribe a node). Frames are read and decoded on the workers, from paths every node sees (a
shared file system) or from object storage (URIs, each node with its own credentials). A worker process or node that dies is replaced: Ray Data's actor pools
restart actors and retry their tasks.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeft.runtime import EdgeftError, Engine, EngineConfig, FeatureSink, SinkOptions, SourceOptions, load_bundle
from edgeft.runtime.sources import FrameReader, Listed, SourceError, fit_for, is_live, is_uri, open_source, ref_file

from .datasets import Item, Plan
from .extract import ExtractConfig, Featurize, Shard, item_features, write_features
from .ray_cluster import RayConfig, RayError, RayReport, cluster_session

Progress = Callable[[int, int], None]


class _Featurizer:
    """A Ray Data actor: one verified Engine, fed batches of planned items. It runs exactly the
    backend and precision the driver chose (`target`), proved on this node like any named one,
    so that features never depend on which node computed them."""

    def __init__(self, bundle_files: list, threads: int | None, target: tuple[str, str | None], provider: str,
                 decode: str = "reduced"):
        import ray

        context = ray.get_runtime_context()
        self.node = f"{context.get_node_id()[:8]} ({socket.gethostname()})"
        cpus = threads or max(1, int(context.get_assigned_resources().get("CPU", 1)))
        config = EngineConfig(device=target[0], precision=target[1], threads=cpus, strict=True)
        # The copy lives only while the engine loads (verified there, on this node): sessions hold what they
        # need, so a long-lived cluster never fills its disk with bundle copies, however its actors end.
        with tempfile.TemporaryDirectory(prefix="edgeft-bundle-") as folder:
            for name, data in ray.get(bundle_files[0]).items():
                (Path(folder) / name).write_bytes(data)
            try:
                self.engine = Engine(load_bundle(folder), config)
            except EdgeftError as exc:
                raise RayError(f"node {self.node} cannot run the driver's choice, {provider}: {exc}") from None
        if self.engine.provider != provider:
            raise RayError(f"node {self.node} runs {self.engine.provider}, the driver {provider}: their features would differ; "
                           "pick --device and --precision every node has")
        self.frames = FrameReader(fit_for(self.engine.manifest.input, decode))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [Item(p, "", "", flip=bool(f), brightness=float(b)) for p, f, b in zip(batch["path"], batch["flip"], batch["brightness"])]
        for item, seen in zip(items, batch["seen_by_driver"]):
            if seen and not os.path.exists(ref_file(item.path)):
                raise RayError(f"node {self.node} cannot read '{ref_file(item.path)}', which the driver can: give the workers a "
                               "path every node sees (a shared file system)")
        shape = self.engine.manifest.output("features").shape[1:]
        t_capture = time.time()
        try:
            rows, _ = item_features(self.engine, items, len(items), shape, self.frames)
        except SourceError as exc:  # object storage this node cannot read (credentials, access)
            raise RayError(f"node {self.node}: {exc}") from None
        return {"features": rows, "node": np.array([self.node] * len(items)), "t_capture": np.full(len(items), t_capture)}


def _on_actors(refs: list[tuple[str, bool, float]], engine: Engine, config: RayConfig, batch: int,
               report: RayReport) -> Iterator[dict[str, np.ndarray]]:
    """Batches of features for (reference, flip, brightness) items, in their order, from an actor pool."""
    import logging

    import ray
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in plan order: shards fill one by one
    context.print_on_execution_start = False
    context.enable_progress_bars = False  # ours says it; Ray Data's would redraw from the driver, on the workers' cores
    context.wait_for_min_actors_s = 120  # a pool the cluster can never place is an error, not a hang
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # our progress bar and summary say it; a failure leaves as one line
    files = {p.name: p.read_bytes() for p in engine.bundle.path.iterdir() if p.is_file()}
    target = (engine.target.device, engine.target.precision)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    report.actors = config.actors or max(1, cpus // config.cpus_per_actor)
    rows = [{"path": _absolute(ref), "flip": flip, "brightness": brightness, "seen_by_driver": os.path.exists(ref_file(ref))}
            for ref, flip, brightness in refs]
    dataset = ray.data.from_items(rows).map_batches(
        # the bundle goes to the object store once and reaches each node once; passed inside a list, so that the
        # actor fetches it (a bare ObjectRef argument makes Ray warn about restarts for nothing: we hold the ref)
        _Featurizer, fn_constructor_kwargs={"bundle_files": [ray.put(files)], "threads": config.cpus_per_actor,
                                            "target": target, "provider": engine.provider, "decode": config.decode},
        batch_size=config.batch or batch, batch_format="numpy",
        compute=ActorPoolStrategy(size=report.actors),  # actors on a node that dies are restarted, their tasks retried
        num_cpus=config.cpus_per_actor)
    for out in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for node in out["node"]:
            report.rows_per_node[str(node)] += 1
        yield out


def _absolute(ref: str) -> str:
    """What a worker, whose working folder is not the driver's, must be told."""
    file = ref_file(ref)
    return ref if is_uri(file) else str(Path(file).resolve()) + ref[len(file) :]


def ray_features(engine: Engine, config: RayConfig, batch: int, report: RayReport) -> Featurize:
    def featurize(shards: list[Shard]) -> Iterator[tuple[int, np.ndarray, int]]:
        refs = [(item.path, item.flip, item.brightness) for _, items in shards for item in items]
        if refs:
            yield from _in_shards(_on_actors(refs, engine, config, batch, report), shards)

    return featurize


def _in_shards(batches: Iterator[dict[str, np.ndarray]], shards: list[Shard]) -> Iterator[tuple[int, np.ndarray, int]]:
    """Rows arrive in plan order; each shard is yielded as soon as its last row is in."""
    pending = iter(shards)
    number, items = next(pending, (None, []))
    buffer: list[np.ndarray] = []
    held = 0
    for batch in batches:
        buffer.append(batch["features"])
        held += len(batch["features"])
        while number is not None and held >= len(items):
            rows = np.concatenate(buffer)
            shard, rest = rows[: len(items)], rows[len(items) :]
            yield number, shard, int(np.isnan(shard.reshape(len(shard), -1)).any(axis=1).sum())
            buffer, held = [rest], len(rest)
            number, items = next(pending, (None, []))


def extract_on_ray(engine: Engine, plan: Plan, out: Path, settings: dict, config: ExtractConfig, ray_config: RayConfig,
                   progress: Progress = lambda done, total: None) -> tuple[int, RayReport]:
    """`extract` with the features computed on the cluster, by the backend and precision `engine`
    (loaded and verified on the driver) runs; returns the unreadable count and the report."""
    report = RayReport()
    with cluster_session(ray_config, report):
        featurize = ray_features(engine, ray_config, config.batch, report)
        unreadable = write_features(engine.manifest, engine.computed_by, plan, out, settings, config, featurize, progress)
    return unreadable, report


def list_source(spec: str, options: SourceOptions) -> list[Listed]:
    """Every frame a recorded source gives, by reference, in the order a run reads them."""
    if is_live(spec, options):
        raise RayError(f"--ray splits a recorded source across the cluster; '{spec}' is live (a camera, a stream, or --rate): "
                       "extract it on this machine, without --ray")
    with open_source(spec, options) as source:
        return [frame for tick in source.listing() for frame in tick]


def extract_source_on_ray(engine: Engine, spec: str, options: SourceOptions, out: Path, sinks: SinkOptions, batch: int,
                          ray_config: RayConfig, progress: Progress = lambda done, total: None) -> tuple[int, int, RayReport]:
    """`extract --source` with the frames read and run on the cluster, written in order as
    `run --features` writes them (rows a resumed folder holds are not run again).
    Returns (rows written, unreadable frames, report)."""
    listed = list_source(spec, options)
    sink = FeatureSink(out, engine.manifest, replace(sinks, computed_by=engine.computed_by))
    report, written, unreadable = RayReport(), 0, 0
    try:
        done = sink.done()
        pending = [frame for frame in listed if (frame.source, frame.index) not in done]
        progress(len(listed) - len(pending), len(listed))
        if pending:
            with cluster_session(ray_config, report):
                frames = iter(pending)
                for out_batch in _on_actors([(f.ref, False, 1.0) for f in pending], engine, ray_config, batch, report):
                    for features, t_capture, frame in zip(out_batch["features"], out_batch["t_capture"], frames):
                        if np.isnan(features).any():
                            unreadable += 1
                        else:
                            sink.write_row(features, frame.index, frame.source, float(t_capture), frame.stamp)
                            written += 1
                    progress(len(listed) - len(pending) + written + unreadable, len(listed))
    except BaseException:
        sink.close() if written else sink.discard()  # a folder this job created and never wrote to is not left behind
        raise
    sink.close()
    if pending and not written:
        raise RayError(f"no frame of '{spec}' could be used: all {unreadable} were unreadable")
    return written, unreadable, report
