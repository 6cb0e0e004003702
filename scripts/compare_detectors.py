"""The README's "an OD API SSD MobileNet V2 against our detector" table, measured.

For each detector (ours, ``--ours``, by default the bundled default model; the OD API SSD,
``--ssd``) and each weight quantization: the TF.js weights, a first visit on ``--network`` (3g by
default: page, TF.js and model through a 1.6 Mbps link from a fresh profile, to the first digits),
digit F1 and whole-number accuracy on wasm over ``--photos`` photos; then the warm p50 on wasm, webgl and cpu
(float32; ``--slow-photos`` photos on webgl and cpu, which are slow on software WebGL). Every
row goes through the ``bench`` library exactly as ``bench run`` would.

Usage: ``python scripts/compare_detectors.py [--ours PATH] [--ssd PATH] [--dataset PATH] [--photos 500]
[--slow-photos 20] [--network 3g] [--out DIR]``. Prints the Markdown table and the machine load.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.runner import RunConfig, run_benchmark
from bench.saved_model import DEFAULT_MODEL
from bench.tfjs_convert import QUANTIZATIONS

ROOT = Path(__file__).resolve().parent.parent


def rows(model: Path, dataset: str, out: Path, limit: int, **tfjs) -> dict:
    """run.json rows of one tfjs configuration."""
    config = RunConfig(backends=("tfjs",), dataset=dataset, limit=limit, out=out, warmup=3,
                       backend_options={"tfjs": {"model": str(model), **tfjs}})
    return run_benchmark(config).to_json()["backends"]


def measure(name: str, model: Path, args: argparse.Namespace) -> list[list[str]]:
    """The table lines of one detector."""
    out = Path(args.out) / name
    quality = rows(model, args.dataset, out / "wasm", args.photos, quantization=",".join(QUANTIZATIONS))
    first = rows(model, args.dataset, out / args.network, 1, quantization=",".join(QUANTIZATIONS),
                 network=args.network)
    warm = rows(model, args.dataset, out / "backends", args.slow_photos, tfjs_backend="webgl,cpu")
    lines = []
    for quantization in QUANTIZATIONS:
        row, visit = quality[f"tfjs-wasm-{quantization}"], first[f"tfjs-wasm-{quantization}"]
        cold = visit["cold_start_ms"]
        p50 = {"wasm": row["latency_ms"]["p50"]}
        if quantization == "none":
            p50.update({b: warm[f"tfjs-{b}-none"]["latency_ms"]["p50"] for b in ("webgl", "cpu")})
        lines.append([name, quantization, f"{row['describe']['weights_bytes'] / 1e6:.2f} MB",
                      f"{cold['total'] / 1000:.1f} s ({(visit['library_bytes'] + visit['download_bytes']) / 1e6:.2f} MB)",
                      f"{p50['wasm']:.0f} ms",
                      f"{p50['webgl']:.0f} ms" if "webgl" in p50 else "same",
                      f"{p50['cpu']:.0f} ms" if "cpu" in p50 else "same",
                      f"{row['digit_f1']:.3f}", f"{row['sequence_accuracy']:.3f}", f"{row['errors']}"])
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", default=str(DEFAULT_MODEL), help="our SavedModel (default: the bundled default)")
    parser.add_argument("--ssd", default=str(ROOT.parent / "shared" / "models" / "ssd_mobilenet_v2_svhn" / "saved_model"))
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "svhn" / "test-dev"))
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--slow-photos", type=int, default=20)
    parser.add_argument("--network", default="3g")
    parser.add_argument("--out", default=str(ROOT / "reports" / "compare-detectors"))
    parser.add_argument("--detectors", default="ours,ssd", help="which of ours,ssd to measure")
    args = parser.parse_args()
    load_before = os.getloadavg()
    detectors = {"ours": ("ours", Path(args.ours)), "ssd": ("OD API SSD MobileNet V2", Path(args.ssd))}
    lines = [line for key in args.detectors.split(",") for line in measure(*detectors[key.strip()], args)]
    header = ["detector", "quantization", "TF.js weights", f"first visit ({args.network}, bytes)", "warm p50 wasm",
              "webgl", "cpu", "digit F1", "whole number", "errors"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in lines:
        print("| " + " | ".join(line) + " |")
    print(f"\nmachine load (1/5/15 min): before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
          f"after {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs; photos {args.photos} (webgl/cpu {args.slow_photos})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
