"""``bench datasets``: inspect datasets and fetch official SVHN splits."""
from __future__ import annotations

import argparse


def handle_info(args: argparse.Namespace) -> int:
    from bench.dataset import load_dataset

    dataset = load_dataset(args.dataset)
    digits = sum(len(p.truth) for p in dataset.photos)
    print(f"{dataset.name}: {dataset.description}")
    print(f"photos {len(dataset.photos)}, digits {digits}, fingerprint {dataset.fingerprint}")
    for problem in dataset.problems + [p.problem for p in dataset.photos if p.problem]:
        print(f"problem: {problem}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("datasets", help="inspect or fetch datasets")
    sub = parser.add_subparsers(dest="datasets_command", metavar="ACTION")
    info = sub.add_parser("info", help="count photos and list annotation problems")
    info.add_argument("dataset", nargs="?", default=None, help="folder, file or name (default: synthetic)")
    info.set_defaults(handler=handle_info)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
