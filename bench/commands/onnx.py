"""``bench model onnx [MODEL]``: SavedModel -> ONNX (tf2onnx), for ONNX Runtime (the ``ortweb`` backend)."""
from __future__ import annotations

import argparse

from bench.onnx_convert import OPSET
from bench.saved_model import DEFAULT_MODEL


def handle_onnx(args: argparse.Namespace) -> int:
    from bench.onnx_convert import convert_to_onnx

    converted = convert_to_onnx(args.model, force=args.force, opset=args.opset)
    state = "up to date" if converted.reused else "written"
    print(f"{converted.path} ({converted.bytes:,} bytes, {state})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("onnx", help="convert a SavedModel to ONNX with tf2onnx (<model>/onnx/model.onnx)",
                                   description="Convert a TF SavedModel's serving signature to ONNX, written to "
                                   "<model>/onnx/model.onnx with conversion.json (how it was made).")
    parser.add_argument("model", nargs="?", default=str(DEFAULT_MODEL),
                        help="the SavedModel folder (default: %(default)s)")
    parser.add_argument("--opset", type=int, default=OPSET, help="ONNX opset (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="convert again even if the ONNX model is up to date")
    parser.set_defaults(handler=handle_onnx)
