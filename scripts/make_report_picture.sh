#!/usr/bin/env bash
# docs/report.png, the README's picture of report.html: a real run on SVHN test-dev, then the page in
# headless Chromium, cut above the failure gallery so that no SVHN photo is committed.
# Usage: scripts/make_report_picture.sh [DATASET] [LIMIT]   (default ../shared/datasets/svhn/test-dev, 60)
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-../shared/datasets/svhn/test-dev}
LIMIT=${2:-60}
OUT=$(mktemp -d)/run
export SE_OFFLINE=true NO_GCE_CHECK=true
.venv/bin/bench run --backends tf,tfjs,tesseract --quantization none,uint8 --dataset "$DATASET" --limit "$LIMIT" \
    --repeats 2 --out "$OUT" --no-store
.venv/bin/python scripts/screenshot_report.py "$OUT/report.html" docs/report.png --until "Failure gallery" --colours 128
echo "run folder: $OUT"
