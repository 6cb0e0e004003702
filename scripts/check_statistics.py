"""Statistical honesty of ``bench compare``, measured with the oracle backend.

Every run makes 3 passes over the photos (``--repeats 3``, as a nightly suite should), so the
per-photo latency floor is available.

1. Same build: N runs with identical options (a deterministic recognizer; only the machine's
   noise differs) are compared with the first and with each other: no regression should be flagged
   ("unstable" verdicts, interference the floor did not confirm, are counted apart).
2. Nondeterministic recognizer: the same fault rates with a different seed each run (independent
   misses and jitter), compared with ``force`` because the seed option differs: how often does
   each test fire by chance? With alpha = 0.05 and thresholds, it should stay near or below 5%.
3. A 20% slowdown (every photo's busy time x 1.2): should be flagged as a latency regression.
4. A 2-point digit F1 drop (miss rate 5% -> 11%; with the same seed the new misses add to the
   old ones, as when one model version gets worse): should be flagged; and the same drop with
   independent misses (a different seed), a harder, unpaired case.

5. With ``--tfjs-model PATH``: the same-build and slowdown checks on the real tfjs backend
   (wasm, float32) in headless Chromium, the slowdown being ``--cpu-throttle 1.25``.

Usage: ``python scripts/check_statistics.py [--runs 10] [--photos 200] [--dataset PATH] [--keep DIR]
[--tfjs-model PATH]``.
Prints the figures; exits 1 if the false-positive rate exceeds ``--max-false-positive`` or a
detection rate falls below ``--min-detection``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.compare import (MIN_HISTORY, REGRESSION, UNSTABLE, Comparison, Thresholds,  # noqa: E402
                           compare_runs, history_values)
from bench.dataset import load_dataset  # noqa: E402
from bench.results.folder import read_run  # noqa: E402
from bench.results.run import Run  # noqa: E402
from bench.runner import RunConfig, run_benchmark  # noqa: E402

TEST_DEV = ROOT.parent / "shared" / "datasets" / "svhn" / "test-dev"
BASE = {"delay_ms": 2.0, "jitter_ms": 1.0, "miss_rate": 0.05, "seed": 0}
SLOW = {**BASE, "delay_ms": 2.4, "jitter_ms": 1.2}
DROP = {**BASE, "miss_rate": 0.11}


class Runs:
    """Runs the oracle in-process on one loaded dataset, each into its own folder."""

    def __init__(self, dataset, photos: int, folder: Path) -> None:
        self.dataset = dataset
        self.photos = photos
        self.folder = folder
        self.count = 0
        self.loads: list[float] = []

    def __call__(self, options: dict, backend: str = "oracle") -> Run:
        self.count += 1
        out = self.folder / f"run{self.count:03d}"
        if (out / "run.json").is_file():
            return read_run(out)
        self.loads.append(os.getloadavg()[0])
        config = RunConfig(backends=(backend,), limit=self.photos, out=out, warmup=5, repeats=3,
                           backend_options={backend: dict(options)})
        return run_benchmark(config, dataset=self.dataset)


def flagged(comparison: Comparison) -> set[str]:
    return {c.metric for c in comparison.changes if c.verdict == REGRESSION}


def unstable(comparison: Comparison) -> set[str]:
    return {c.metric for c in comparison.changes if c.verdict == UNSTABLE}


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100 * hits / total:.0f}%)" if total else "-"


def tfjs_check(run: Runs, model: str, count: int, thresholds: Thresholds, max_false_positive: float,
               min_detection: float) -> list[tuple[str, str, bool]]:
    """Same-build runs and ``--cpu-throttle 1.25`` runs of tfjs-wasm-none: what compare flags.

    Two-run comparisons are reported for information: between runs of a browser the floor moves
    too, which only a history shows; the nightly figures (with history) are the ones checked.
    """
    options = {"model": model, "tfjs_backend": "wasm", "quantization": "none"}
    same = [run(options, "tfjs") for _ in range(count)]
    slow = [run({**options, "cpu_throttle": 1.25}, "tfjs") for _ in range(max(2, count // 2))]
    row = same[0].row_names[0]
    pairs = [flagged(compare_runs(a, b, replace(thresholds, seed=i)))
             for i, (a, b) in enumerate(itertools.combinations(same, 2))]
    floors = [next(c.new for c in compare_runs(same[0], d, thresholds).changes if c.metric == "latency floor")
              for d in same]
    caught = [flagged(compare_runs(b, s, replace(thresholds, seed=i), force=True))
              for i, (b, s) in enumerate(zip(same, slow))]
    history = [flagged(compare_runs(same[-1], s, replace(thresholds, seed=i), force=True,
                                    history=history_values(same, [row]))) for i, s in enumerate(slow)]
    nightly = [flagged(compare_runs(same[k - 1], same[k], replace(thresholds, seed=k),
                                    history=history_values(same[:k], [row])))
               for k in range(MIN_HISTORY + 1, len(same))]
    hits = sum(bool(f) for f in pairs)
    return [
        (f"tfjs: same build, every pair of {count} runs: pairs flagged", rate(hits, len(pairs)), True),
        ("  metrics flagged", ", ".join(f"{m} {sum(m in f for f in pairs)}"
                                       for m in sorted({m for f in pairs for m in f})) or "none", True),
        ("  latency floor of each same-build run (ms)", ", ".join(f"{v:.2f}" for v in floors), True),
        ("tfjs: nightly (vs previous run + >= 5 past runs): same-build runs flagged",
         rate(sum(bool(f) for f in nightly), len(nightly)),
         not nightly or sum(bool(f) for f in nightly) / len(nightly) <= max_false_positive),
        ("tfjs: --cpu-throttle 1.25 flagged (floor), two-run compare",
         rate(sum("latency floor" in f for f in caught), len(caught)), True),
        ("tfjs: --cpu-throttle 1.25 flagged (floor), with the same-build runs as history",
         rate(sum("latency floor" in f for f in history), len(history)),
         sum("latency floor" in f for f in history) / len(history) >= min_detection),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="same-build runs (default 10)")
    parser.add_argument("--photos", type=int, default=200, help="photos per run (default 200)")
    parser.add_argument("--dataset", help=f"dataset (default {TEST_DEV} if present, else synthetic)")
    parser.add_argument("--keep", help="write the runs here and reuse the ones already there (to re-analyse)")
    parser.add_argument("--tfjs-model", help="also check the tfjs backend with this model (slow: a browser per run)")
    parser.add_argument("--max-false-positive", type=float, default=0.05)
    parser.add_argument("--min-detection", type=float, default=0.9)
    args = parser.parse_args(argv)
    spec = args.dataset or (str(TEST_DEV) if (TEST_DEV / "annotations.jsonl").is_file() else None)
    dataset = load_dataset(spec)
    thresholds = Thresholds()
    print(f"dataset {dataset.name}, {min(args.photos, len(dataset.photos))} photos per run, {args.runs} runs per "
          f"scenario; thresholds: latency {thresholds.latency:.0%}, accuracy {100 * thresholds.accuracy:g} pt, "
          f"alpha {thresholds.alpha}")
    with tempfile.TemporaryDirectory(prefix="digitbench-stats-") as tmp:
        run = Runs(dataset, args.photos, Path(args.keep or tmp))
        same = [run(BASE) for _ in range(args.runs + 1)]
        noisy = [run({**BASE, "seed": seed}) for seed in range(1, args.runs + 1)]
        slow = [run(SLOW) for _ in range(args.runs)]
        drop = [run(DROP) for _ in range(args.runs)]
        drop_independent = [run({**DROP, "seed": 100 + i}) for i in range(args.runs)]

        noise: list[set[str]] = []

        def compare(base: Run, new: Run, force: bool = False, seed: int = 0) -> set[str]:
            comparison = compare_runs(base, new, replace(thresholds, seed=seed), force=force)
            noise.append(unstable(comparison))
            return flagged(comparison)

        results: list[tuple[str, str, bool]] = []
        vs_first = [compare(same[0], r, seed=i) for i, r in enumerate(same[1:])]
        pairs = [compare(a, b, seed=i) for i, (a, b) in enumerate(itertools.combinations(same[1:], 2))]
        noisy_pairs = [compare(a, b, force=True, seed=i) for i, (a, b) in enumerate(itertools.combinations(noisy, 2))]
        same_unstable = sum(bool(u) for u in noise[:len(vs_first) + len(pairs)])
        fp_first = sum(bool(f) for f in vs_first)
        fp_pairs = sum(bool(f) for f in pairs)
        fp_noisy = sum(bool(f) for f in noisy_pairs)
        results.append(("same build, each run vs the first: runs flagged", rate(fp_first, len(vs_first)),
                        fp_first / len(vs_first) <= args.max_false_positive))
        results.append(("same build, every pair of runs: pairs flagged", rate(fp_pairs, len(pairs)),
                        fp_pairs / len(pairs) <= args.max_false_positive))
        results.append(("nondeterministic recognizer, every pair (forced: seeds differ): pairs flagged",
                        rate(fp_noisy, len(noisy_pairs)), fp_noisy / len(noisy_pairs) <= args.max_false_positive))
        results.append(("  same-build comparisons with an 'unstable' p50/p90 (floor did not confirm)",
                        rate(same_unstable, len(vs_first) + len(pairs)), True))
        for name, found in (("same build vs first", vs_first), ("same build pairs", pairs),
                            ("nondeterministic pairs", noisy_pairs)):
            metrics = sorted({m for f in found for m in f})
            detail = ", ".join(f"{m} {sum(m in f for f in found)}" for m in metrics) or "none"
            results.append((f"  metrics flagged in {name}", detail, True))
        slow_hits = [compare(b, s, force=True, seed=i) for i, (b, s) in enumerate(zip(same[1:], slow))]
        hits = sum("latency floor" in f for f in slow_hits)
        results.append(("20% slowdown flagged as a latency floor regression", rate(hits, len(slow_hits)),
                         hits / len(slow_hits) >= args.min_detection))
        hits = sum("latency p50" in f for f in slow_hits)
        results.append(("  ... and as a latency p50 regression", rate(hits, len(slow_hits)), True))
        hits90 = sum("latency p90" in f for f in slow_hits)
        results.append(("  ... and as a latency p90 regression", rate(hits90, len(slow_hits)), True))
        drop_hits = [compare(b, d, force=True, seed=i) for i, (b, d) in enumerate(zip(same[1:], drop))]
        hits = sum("digit F1" in f for f in drop_hits)
        results.append(("2-point digit F1 drop (paired: same seed) flagged", rate(hits, len(drop_hits)),
                        hits / len(drop_hits) >= args.min_detection))
        indep = [compare(b, d, force=True, seed=i) for i, (b, d) in enumerate(zip(noisy, drop_independent))]
        hits = sum("digit F1" in f for f in indep)
        results.append(("2-point digit F1 drop (independent misses) flagged", rate(hits, len(indep)), True))
        sizes = [next(c.change for c in compare_runs(b, d, thresholds, force=True).changes if c.metric == "digit F1")
                 for b, d in zip(same[1:], drop)]
        results.append(("  realised digit F1 change of the injected drop (min / mean / max)",
                         f"{100 * min(sizes):+.2f} / {100 * sum(sizes) / len(sizes):+.2f} / {100 * max(sizes):+.2f} "
                         "points", True))
        nightly = [flagged(compare_runs(same[k - 1], same[k], replace(thresholds, seed=k),
                                        history=history_values(same[:k], ["oracle"])))
                   for k in range(MIN_HISTORY + 1, len(same))]
        hits = sum(bool(f) for f in nightly)
        results.append(("nightly (vs previous run + >= 5 past runs): same-build runs flagged", rate(hits, len(nightly)),
                        not nightly or hits / len(nightly) <= args.max_false_positive))
        nightly_slow = [flagged(compare_runs(same[-1], s, replace(thresholds, seed=i), force=True,
                                             history=history_values(same, ["oracle"]))) for i, s in enumerate(slow)]
        hits = sum("latency floor" in f for f in nightly_slow)
        results.append(("nightly (with history): 20% slowdown flagged (floor)", rate(hits, len(nightly_slow)),
                        hits / len(nightly_slow) >= args.min_detection))
        loads = sorted(run.loads)
        results.append(("1-minute load average before the runs (min / median / max)",
                        f"{loads[0]:.1f} / {loads[len(loads) // 2]:.1f} / {loads[-1]:.1f} on {os.cpu_count()} cores"
                        if loads else "not measured (runs reused from --keep)", True))
        if args.tfjs_model:
            results += tfjs_check(run, args.tfjs_model, args.runs, thresholds, args.max_false_positive,
                                  args.min_detection)
    width = max(len(r[0]) for r in results)
    ok = True
    for name, figure, passed in results:
        ok &= passed
        print(f"{name:<{width}}  {figure}{'' if passed else '   <-- FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
