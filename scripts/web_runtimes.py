"""ONNX Runtime Web against TF.js on the same detector: bytes, first visit, warm latency. Prints a table.

    .venv/bin/python scripts/web_runtimes.py --dataset ../shared/datasets/svhn/test-dev --limit 200 [--model DIR]

One `bench run` of `tfjs` (wasm, webgl, cpu; float32) and `ortweb` (wasm) into a temporary
folder (or --out), then one row per runtime x backend:

- model: the bytes the page downloads for the model (TF.js model.json, gzip, + shard; model.onnx);
- library: what the page loads before the model: TF.js's tf.min.js (+ tf-backend-wasm.min.js and
  the wasm binary it fetched, for wasm), ONNX Runtime Web's bundle (+ its wasm runtime) — as the
  page server sent them (JavaScript gzip-compressed, wasm as it is; ONNX Runtime Web's .mjs loader
  as is), by Resource Timing in the page (for tfjs: the body bytes of the row's ``/tfjs/`` files);
- first visit: page load + library + model download + init + first inference, in the page;
- warm p50 / p90 of the run's photos (the page's performance.now(), after the runner's warm-up).

For tfjs the library's time is the page load (its scripts are in the HTML) plus the TF.js
backend's set-up (fetching and compiling the wasm); for ortweb it is the bundle and runtime
fetch (compiling the runtime is in its init).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from backends.tfjs.site import LIBRARY_PREFIX
from bench.saved_model import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]


def library(row: str, details: dict, summary: dict) -> tuple[int, float | None]:
    """(bytes, ms) of the row's library."""
    if row.startswith("ortweb"):
        return int(summary.get("library_bytes") or 0), summary["cold_start_ms"].get("library")
    entries = details.get("library_entries") or []
    size = sum(e["bodyBytes"] for e in entries if e["name"].startswith(LIBRARY_PREFIX))
    return size, (details.get("page_load_ms") or 0) + (details.get("tfjs_backend_init_ms") or 0)


def table(run: dict) -> list[str]:
    lines = ["| runtime | backend | model as served | library as served | library ms | download ms | init ms | "
             "first inference ms | first visit ms | warm p50 ms | warm p90 ms | whole number |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row, summary in run["backends"].items():
        if not row.startswith(("tfjs", "ortweb")):
            continue
        if summary.get("status") != "complete":
            lines.append(f"| {row} | failed: {summary.get('error')} |" + " |" * 10)
            continue
        facts, details = summary.get("describe") or {}, summary.get("cold_start_details") or {}
        cold = summary["cold_start_ms"]
        lib_bytes, lib_ms = library(row, details, summary)
        page_ms = details.get("page_load_ms") if row.startswith("ortweb") else 0
        first_visit = (page_ms or 0) + (lib_ms or 0) + cold["download"] + cold["init"] + (cold["first_inference"] or 0)
        runtime = "ONNX Runtime Web" if row.startswith("ortweb") else "TF.js"
        engine = facts.get("execution_provider") or facts.get("tfjs_backend")
        latency = summary.get("latency_ms") or {}
        lines.append(f"| {runtime} {facts.get('onnxruntime_web') or facts.get('tfjs_version') or ''} | {engine} | "
                     f"{int(summary.get('download_bytes') or 0) / 1e3:,.0f} KB | {lib_bytes / 1e6:.2f} MB | "
                     f"{lib_ms or 0:.0f} | "
                     f"{cold['download']:.0f} | {cold['init']:.0f} | {cold['first_inference'] or 0:.1f} | "
                     f"{first_visit:.0f} | {latency.get('p50', 0):.2f} | {latency.get('p90', 0):.2f} | "
                     f"{summary.get('sequence_accuracy', 0):.1%} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "svhn" / "test-dev"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the SavedModel both runtimes run (default: ours)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", help="run folder to keep (default: a temporary one)")
    parser.add_argument("--run-json", help="print the table of an existing run.json instead of running")
    args = parser.parse_args()
    if args.run_json:
        print("\n".join(table(json.loads(Path(args.run_json).read_text()))))
        return
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or Path(scratch) / "run")
        command = [sys.executable, "-m", "bench.cli", "run", "--backends", "tfjs,ortweb", "--tfjs-backend",
                   "wasm,webgl,cpu", "--ortweb-ep", "wasm", "--tfjs-model", args.model, "--ortweb-model", args.model,
                   "--dataset", args.dataset, "--limit", str(args.limit), "--repeats", str(args.repeats), "--out", str(out)]
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        print("\n".join(table(json.loads((out / "run.json").read_text()))))


if __name__ == "__main__":
    main()
