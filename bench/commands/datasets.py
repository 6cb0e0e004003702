"""``bench datasets``: inspect datasets and fetch official SVHN splits."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.validation import printable


def handle_info(args: argparse.Namespace) -> int:
    """Print a dataset's photo and digit counts, fingerprint and annotation problems."""
    from bench.dataset import load_dataset

    dataset = load_dataset(args.dataset)
    digits = sum(len(p.truth) for p in dataset.photos)
    print(printable(f"{dataset.name}: {dataset.description}"))
    print(f"photos {len(dataset.photos)}, digits {digits}, fingerprint {dataset.fingerprint}")
    for problem in dataset.problems + [p.problem for p in dataset.photos if p.problem]:
        print(printable(f"problem: {problem}"))
    return 0


def handle_fetch(args: argparse.Namespace) -> int:
    """Download, check and convert an official split, with a progress bar."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from bench.fetch import fetch_split, split_source

    source = split_source(args.name, args.split, args.base_url, args.sha256)
    with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn()) as progress:
        task = progress.add_task(f"{source.dataset} {source.split}", total=None)

        def report(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        folder = fetch_split(source, Path(args.dest) if args.dest else None, report, args.keep_archive)
    print(f"{source.dataset} {source.split}: ready in {folder}; use --dataset {folder} "
          f"(or --dataset {source.dataset}-{source.split})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench datasets info`` and ``bench datasets fetch``."""
    parser = subparsers.add_parser("datasets", help="inspect or fetch datasets")
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION")
    info = sub.add_parser("info", help="count photos and list annotation problems")
    info.add_argument("dataset", nargs="?", default=None, help="folder, file or name (default: synthetic)")
    info.set_defaults(handler=handle_info)
    fetch = sub.add_parser("fetch", help="download an official split (needs internet)")
    fetch.add_argument("name", help="dataset descriptor in datasets/, e.g. svhn")
    fetch.add_argument("--split", required=True, help="e.g. test, train, extra")
    fetch.add_argument("--dest", help="where to put it (default ~/.cache/digitbench/datasets or $DIGITBENCH_DATA)")
    fetch.add_argument("--base-url", help="a mirror holding the same archive names")
    fetch.add_argument("--sha256", help="the archive's expected sha256")
    fetch.add_argument("--keep-archive", action="store_true", help="keep the .tar.gz after extracting")
    fetch.set_defaults(handler=handle_fetch)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
