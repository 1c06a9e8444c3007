"""Pipeline throughput with N Foxglove viewers that subscribe to every channel and never read.

    .venv/bin/python benchmarks/foxglove_viewers.py [--viewers 0,1,10,50] [--frames 3000] [--rounds 3]

MobileNetV2 (random weights, 96 x 96, exported once into benchmarks/.work) over 32 real video
frames as 320x240 JPEGs, looped, with `--foxglove` on. The viewers live in another process; the
counts are measured alternately, `--rounds` times each, and the best of each is compared with
no viewer in the same run: the ratio is what the live sink's bounded per-viewer work buys.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import clip_frames, cpu_line, ensure_bundle  # noqa: E402

VIEWERS = textwrap.dedent("""
    import asyncio, json, sys
    from websockets.asyncio.client import connect

    async def main(port, count):
        viewers = []
        for _ in range(count):
            ws = await connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"], max_size=None, max_queue=1)
            while (data := json.loads(await ws.recv()))["op"] != "advertise":
                pass
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": c["id"], "channelId": c["id"]}
                                                                          for c in data["channels"]]}))
            viewers.append(ws)
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throughput(bundle: Path, images: Path, viewers: int, frames: int) -> float:
    from edgeft.runtime import Engine, Pipeline, PipelineConfig, open_sink, open_source, run
    from edgeft.runtime.sources import SourceOptions

    engine = Engine.load(bundle, device="cpu")
    sink = open_sink(f"foxglove:{free_port()}", engine.manifest)
    crowd = None
    try:
        sink.write(next(iter(Pipeline(open_source(str(images)), engine, PipelineConfig(max_ticks=1)))))  # channels advertised
        time.sleep(0.3)
        if viewers:
            crowd = subprocess.Popen([sys.executable, "-c", VIEWERS, str(sink.port), str(viewers)], stdout=subprocess.PIPE, text=True)
            if crowd.stdout.readline().strip() != "ready":
                raise SystemExit("the viewers could not connect")
            time.sleep(0.5)
        pipeline = Pipeline(open_source(str(images), SourceOptions(loop=True)), engine, PipelineConfig(max_ticks=frames))
        return run(pipeline, [sink], handle_signals=False).stats.fps
    finally:
        if crowd is not None:
            crowd.kill()
            crowd.wait()
        sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", default="0,1,10,50")
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.viewers.split(",")]
    bundle = ensure_bundle("MobileNetV2", 96)
    with tempfile.TemporaryDirectory() as folder:
        images = Path(folder)
        for i, frame in zip(range(32), clip_frames()):
            cv2.imwrite(str(images / f"{i:02d}.jpg"), cv2.resize(frame, (320, 240)))
        best = {n: 0.0 for n in counts}
        for _ in range(args.rounds):
            for n in counts:
                best[n] = max(best[n], throughput(bundle, images, n, args.frames))
    print(cpu_line())
    print(f"MobileNetV2 96x96, {args.frames} frames, --foxglove, best of {args.rounds} alternating rounds")
    print(f"{'viewers':>8} {'frames/s':>10} {'vs none':>8}")
    for n in counts:
        print(f"{n:>8} {best[n]:>10.1f} {best[n] / best[counts[0]]:>8.2f}")


if __name__ == "__main__":
    main()
