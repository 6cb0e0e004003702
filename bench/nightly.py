"""``bench nightly``: run a configured suite (:mod:`bench.suites`), compare it with its baseline,
write a static report.

The baseline is the last *accepted* complete run of the same suite on the same machine. A run is
accepted when it has no regression against its baseline (the first run of a suite is accepted;
"unstable" figures do not block it, the latency floor having found no change);
``bench accept RUN`` accepts one by hand. Use ``repeats = 3`` or more: the per-photo latency
floor over the passes is what keeps other work on the machine from reading as a regression.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date as Date
from pathlib import Path

from bench.compare import NotComparable, Thresholds, compare_runs, history_values, like_with_like
from bench.dataset import load_dataset
from bench.errors import RunInterrupted
from bench.history import HistoryStore, resolve_store_path
from bench.nightly_report import NightlyResult, PastRun, write_nightly_report
from bench.results.run import Run
from bench.runner import Observer, default_out, run_benchmark
from bench.suites import Config, Suite, load_config, parse_config
from bench.validation import report_date

__all__ = ["Config", "NightlyResult", "PastRun", "Suite", "load_config", "parse_config", "past_runs",
           "report_folder", "run_nightly"]

TREND_RUNS = 30


def report_folder(reports_dir: Path, day: str, suite: Suite, config: Config) -> Path:
    """``reports/nightly/<date>/`` for the default suite, ``.../<date>/<suite>/`` for the others."""
    folder = Path(reports_dir) / "nightly" / day
    return folder if suite.name == config.default_name else folder / suite.name


def past_runs(store: HistoryStore, suite: str, machine_id: str | None, current: Run,
              count: int = TREND_RUNS) -> list[PastRun]:
    """The last ``count`` complete runs of ``suite`` on this machine up to ``current``, oldest first;
    ``current`` is the object given, not a second read from the store."""
    upto = current.history_id
    found = [r for r in store.runs(suite=suite, machine=machine_id, status="complete", limit=count + 50)
             if upto is None or r.id <= upto][:count]
    return [PastRun(current if r.id == upto else store.load(r.id), r.accepted) for r in reversed(found)]


def run_nightly(config: Config, suite_name: str | None = None, *, store_path: str | Path | None = None,
                reports_dir: Path = Path("reports"), day: str | None = None, thresholds: Thresholds | None = None,
                observer: Observer | None = None) -> NightlyResult:
    """Run the suite, record it, compare with the baseline, accept it if clean, write the report."""
    suite = config.suite(suite_name)
    thresholds = thresholds or Thresholds.from_mapping(config.compare)
    day = report_date(day) if day is not None else Date.today().isoformat()
    folder = report_folder(reports_dir, day, suite, config)
    dataset = load_dataset(suite.dataset)
    try:
        run = run_benchmark(suite.run_config(default_out(folder / "runs")), observer, dataset=dataset)
    except RunInterrupted as interrupted:
        with HistoryStore(resolve_store_path(store_path)) as store:
            store.append(interrupted.run, suite=suite.name)
        raise
    machine = run.environment.machine_id
    with HistoryStore(resolve_store_path(store_path)) as store:
        run = run.stored_as(store.append(run, suite=suite.name))
        baseline_id = store.baseline(suite.name, machine, before=run.history_id)
        comparison, refused, base = None, None, None
        history = past_runs(store, suite.name, machine, run)
        if baseline_id is not None:
            loaded = {p.run.history_id: p.run for p in history}
            base = loaded[baseline_id] if baseline_id in loaded else store.load(baseline_id)
            baselines = [p.run for p in history if p.accepted and p.run is not run
                         and not like_with_like(p.run, run, run.row_names)[0]]
            try:
                comparison = compare_runs(base, run, thresholds, history=history_values(baselines, run.row_names))
            except NotComparable as exc:
                refused = str(exc)
        accepted = run.complete and refused is None and (comparison is None or not comparison.regressions)
        if accepted:
            store.set_accepted(run.history_id)
    history = [replace(p, accepted=accepted) if p.run is run else p for p in history]
    nightly = NightlyResult(suite, run, folder, baseline_id, comparison, refused, accepted)
    photos = {photo.image: photo for photo in dataset.photos}
    write_nightly_report(nightly, base, history, day, photos)
    return nightly
