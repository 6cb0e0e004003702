"""``bench model convert MODEL --quantization none,float16,uint8``: SavedModel -> TF.js graph models."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UsageError


def handle_convert(args: argparse.Namespace) -> int:
    """Convert the SavedModel to each quantization asked for, reusing variants that are up to date."""
    from bench.errors import ConversionError
    from bench.tfjs_convert import (
        QUANTIZATIONS,
        check_saved_model,
        convert_saved_model,
        native_logs_to,
        variants_root,
    )

    quantizations = tuple(q.strip() for q in args.quantization.split(",") if q.strip())
    if not quantizations:
        raise UsageError(f"--quantization: give one or more of {', '.join(QUANTIZATIONS)}")
    model = check_saved_model(Path(args.model))
    log = variants_root(model) / "convert.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with native_logs_to(log):
            variants = convert_saved_model(model, quantizations, force=args.force, log=print)
    except ConversionError as exc:
        raise ConversionError(f"{exc} (TensorFlow's log: {log})") from None
    log.unlink(missing_ok=True)
    for variant in variants:
        state = "up to date" if variant.reused else "written"
        print(f"{variant.quantization}: {variant.folder / 'model.json'} ({variant.weights_bytes:,} bytes of "
              f"weights, {state})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench model convert``."""
    parser = subparsers.add_parser("convert", help="convert a SavedModel to TF.js graph models (one per quantization)",
                                   description="Convert a TF SavedModel to TF.js graph models, written to "
                                   "<model>/tfjs/<quantization>/.")
    parser.add_argument("model", help="the SavedModel folder (holding saved_model.pb)")
    parser.add_argument("--quantization", default="none,float16,uint8",
                        help="comma-separated: none, float16, uint8 (default: all three)")
    parser.add_argument("--force", action="store_true", help="convert again even if the variant is up to date")
    parser.set_defaults(handler=handle_convert)
