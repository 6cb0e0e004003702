"""``bench model convert MODEL --quantization none,float16,uint16,uint8``: SavedModel -> TF.js graph models."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UsageError
from bench.validation import number_argument


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

    quantizations = tuple(q.strip() for q in (args.quantization or ",".join(QUANTIZATIONS)).split(",") if q.strip())
    if not quantizations:
        raise UsageError(f"--quantization: give one or more of {', '.join(QUANTIZATIONS)}")
    model = check_saved_model(Path(args.model))
    out = Path(args.out) if args.out else None
    root = variants_root(model, out)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write TF.js variants to {root} ({exc.strerror or exc}); pass --out DIR") from None
    log = root / "convert.log"
    try:
        with native_logs_to(log):
            variants = convert_saved_model(model, quantizations, force=args.force, log=print, out=out,
                                           shard_bytes=args.weight_shard_size_bytes)
    except ConversionError as exc:
        raise ConversionError(f"{exc} (TensorFlow's log: {log})") from None
    log.unlink(missing_ok=True)
    for variant in variants:
        state = "up to date" if variant.reused else "written"
        shards = len(list(variant.folder.glob("*.bin")))
        print(f"{variant.quantization}: {variant.folder / 'model.json'} ({variant.weights_bytes:,} bytes of "
              f"weights in {shards} shard{'s' if shards != 1 else ''}, {state})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench model convert``."""
    from bench.tfjs_convert import DEFAULT_SHARD_BYTES, QUANTIZATIONS

    parser = subparsers.add_parser("convert", help="convert a SavedModel to TF.js graph models (one per quantization)",
                                   description="Convert any TF SavedModel (ours, an OD API export, ...) to TF.js "
                                   "graph models with tensorflowjs_converter, written to <model>/tfjs/<quantization>/ "
                                   "(for <export>/saved_model: <export>/tfjs/<quantization>/; a read-only model's go "
                                   "under ~/.cache/digitbench/tfjs/).")
    parser.add_argument("model", help="the SavedModel folder (holding saved_model.pb)")
    parser.add_argument("--quantization", default=None,
                        help=f"comma-separated: {', '.join(QUANTIZATIONS)} (default: all)")
    parser.add_argument("--weight_shard_size_bytes", "--weight-shard-size-bytes", type=number_argument(int, at_least=1),
                        default=DEFAULT_SHARD_BYTES, dest="weight_shard_size_bytes", metavar="BYTES",
                        help=f"weight shard size, as the converter's flag (default {DEFAULT_SHARD_BYTES})")
    parser.add_argument("--out", default=None, help="write the variants into OUT/<quantization>/ instead")
    parser.add_argument("--force", action="store_true", help="convert again even if the variant is up to date")
    parser.set_defaults(handler=handle_convert)
