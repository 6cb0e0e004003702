"""Wall time of a tfjs accuracy run through a local Selenium Grid with 1, 2, ... sessions (issue 17).

Starts a grid on 127.0.0.1 (backends/tfjs/grid.py), runs the same photos with each session count,
checks that every count gives the same predictions, and prints the wall times and the time the whole
official SVHN test split (13,068 photos) would take at each measured rate::

    .venv/bin/python scripts/grid_speed.py --dataset ../shared/datasets/svhn/train --limit 1000 --sessions 1,2
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.tfjs.grid import LocalGrid  # noqa: E402
from bench.results.folder import read_jsonl  # noqa: E402

TEST_SPLIT = 13_068


def readings(folder: Path) -> list[tuple]:
    return [(r["image"], r["text"], json.dumps(r["digits"]), r["error"]) for r in read_jsonl(folder / "predictions.jsonl")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "svhn" / "train"))
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--sessions", default="1,2", help="comma-separated session counts")
    parser.add_argument("--batch-size", default="8", help="--tfjs-batch-size")
    args = parser.parse_args()
    counts = [int(c) for c in args.sessions.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalGrid("standalone", max_sessions=max(counts)) as grid:
        for count in counts:
            out = Path(tmp) / f"s{count}"
            start = time.monotonic()
            code = subprocess.call([str(ROOT / ".venv" / "bin" / "bench"), "run", "--backends", "tfjs", "--dataset",
                                    args.dataset, "--limit", str(args.limit), "--warmup", "1", "--no-store", "--out",
                                    str(out), "--webdriver-url", grid.url, "--sessions", str(count),
                                    "--tfjs-batch-size", args.batch_size], stdout=subprocess.DEVNULL)
            wall = time.monotonic() - start
            photos = len(read_jsonl(out / "predictions.jsonl"))
            rows.append((count, code, photos, wall, readings(out)))
    same = all(r[4] == rows[0][4] for r in rows)
    print(f"{rows[0][2]} photos of {args.dataset}, tfjs wasm float32 through a local Selenium Grid; "
          f"predictions identical across session counts: {'yes' if same else 'NO'}")
    print("| sessions | exit | wall | photos/s | whole test split (13,068 photos), extrapolated |")
    print("| --- | --- | --- | --- | --- |")
    for count, code, photos, wall, _ in rows:
        rate = photos / wall
        print(f"| {count} | {code} | {wall:.1f} s | {rate:.1f} | {TEST_SPLIT / rate / 60:.1f} min |")
    return 0 if same and all(r[1] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
