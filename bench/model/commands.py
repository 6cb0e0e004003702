"""``bench model train`` and ``bench model export``: the CLI over :mod:`bench.model.train` and
:mod:`bench.model.export`."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UsageError
from bench.saved_model import DEFAULT_MODEL
from bench.validation import number_argument

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "svhn" / "train"


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HEIGHTxWIDTH, e.g. 80x160") from None
    return height, width


def _stages(text: str) -> tuple[tuple[int, int], ...]:
    try:
        stages = tuple(tuple(int(v) for v in part.lower().split("x")) for part in text.split(","))
    except ValueError:
        stages = ()
    if not stages or any(len(s) != 2 or s[0] <= 0 or s[1] < 0 for s in stages):
        raise argparse.ArgumentTypeError(f"{text!r}: expected CHANNELSxBLOCKS per stage, e.g. 32x1,64x2,128x3")
    return stages


def register(subparsers) -> None:
    """Add ``bench model`` with its ``train``, ``export``, ``convert`` and ``onnx`` subcommands."""
    model = subparsers.add_parser("model", help="train and export our own digit detector")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    model.set_defaults(handler=lambda args: model.print_help() or 2)

    train = sub.add_parser("train", help="train the detector on CPU (seeded, resumable)")
    train.add_argument("--data", default=str(DEFAULT_DATA), help="annotations.jsonl + images/ folder "
                       "(default: %(default)s); never a test split")
    train.add_argument("--out", required=True, help="folder for checkpoints, logs and final weights")
    train.add_argument("--epochs", type=number_argument(int, at_least=1), default=80)
    train.add_argument("--steps-per-epoch", type=number_argument(int, at_least=1), default=80)
    train.add_argument("--batch-size", type=number_argument(int, at_least=1, at_most=4096), default=32)
    train.add_argument("--lr", type=number_argument(float, more_than=0, at_most=10),
                       default=2e-3, help="peak learning rate (cosine decay)")
    train.add_argument("--seed", type=number_argument(int, at_least=0), default=0)
    train.add_argument("--holdout", type=number_argument(float, at_least=0, at_most=0.9),
                       default=0.1, help="share of --data held out to pick the threshold")
    train.add_argument("--synthetic", type=number_argument(int, at_least=0),
                       default=3000, help="synthetic photos to render and mix in")
    train.add_argument("--synthetic-share", type=number_argument(float, at_least=0, at_most=1),
                       default=0.2, help="share of each batch that is synthetic")
    train.add_argument("--limit", type=number_argument(int, at_least=1),
                       default=None, help="use only the first N photos of --data")
    train.add_argument("--threads", type=number_argument(int, at_least=0, at_most=1024),
                       default=2, help="TensorFlow intra-op threads (0 = all cores)")
    train.add_argument("--eval-every", type=number_argument(int, at_least=1),
                       default=5, help="evaluate on the held-out photos every N epochs")
    train.add_argument("--input-size", type=_size, default=None, help="model input HEIGHTxWIDTH (default 96x192)")
    train.add_argument("--stages", type=_stages, default=None,
                       help="backbone stages CHANNELSxBLOCKS,... from stride 4 down (default 40x1,80x2,160x3,192x1)")
    train.add_argument("--neck", type=number_argument(int, at_least=1, at_most=4096),
                       default=None, help="channels of the neck and heads (default 48)")
    train.add_argument("--swap-digits", type=number_argument(float, at_least=0, at_most=1), default=0.0,
                       help="share of real photos given a new number of real digits cut from other train photos")
    train.add_argument("--min-zoom", type=number_argument(float, more_than=0, at_most=1.3), default=0.35,
                       help="smallest zoom relative to the letterbox scale (smaller digits in wider context)")
    train.add_argument("--reader-crops", action="store_true",
                       help="train the reader of a two-stage graph on number crops (input default 64x128); "
                            "export it with `bench model export --locator`")
    train.add_argument("--loose-windows", type=number_argument(float, at_least=0, at_most=1), default=0.0,
                       metavar="P", help="with --reader-crops: the share of crops cut from a grown number box "
                                         "(too-tall locator boxes, a mark joined to the number)")
    train.add_argument("--init", default=None, metavar="RUN|MODEL",
                       help="start from the final weights of an earlier run of the same network, or from an "
                            "exported model holding it (e.g. the shipped reader); a warm restart: fresh "
                            "optimizer and schedule")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.set_defaults(handler=handle_train)

    export = sub.add_parser("export", help="export a training run as an OD API-style SavedModel")
    export.add_argument("--run", required=True, help="the --out folder of a `bench model train` run")
    export.add_argument("--weights", default=None, help="weights file (default: RUN/final.weights.h5)")
    export.add_argument("--locator", default=None,
                        help="with a --reader-crops run: the SavedModel that finds the number (e.g. the shipped one); "
                             "writes one two-stage SavedModel")
    export.add_argument("--locator-threshold", type=number_argument(float, at_least=0, at_most=1), default=None,
                        help="with --locator: the locator's score that makes the number box (default: the run's)")
    export.add_argument("--row-reach", type=number_argument(float, at_least=0), default=None,
                        help="with --locator: only locator detections in the best one's row, within this many of "
                             "its heights left or right, make the number box (0: all; default: the run's)")
    export.add_argument("--out", required=True, help=f"SavedModel folder to write (a new one, or an earlier export it "
                        f"replaces; the shipped model is {DEFAULT_MODEL.relative_to(REPO)})")
    export.set_defaults(handler=handle_export)

    from bench.commands.convert import register as register_convert
    from bench.commands.onnx import register as register_onnx

    register_convert(sub)
    register_onnx(sub)


def handle_train(args: argparse.Namespace) -> int:
    from bench.model.architecture import ModelConfig
    from bench.model.data import Augmentation
    from bench.model.train import TrainConfig, train
    from bench.model.two_stage import CropConfig

    if not (Path(args.data) / "annotations.jsonl").is_file():
        raise UsageError(f"--data {args.data}: no annotations.jsonl there; give an SVHN JSONL folder")
    if Path(args.data).resolve().name.startswith("test"):
        raise UsageError(f"--data {args.data}: looks like a test split; train on train data only")
    if args.loose_windows and not args.reader_crops:
        raise UsageError("--loose-windows: only for a reader; add --reader-crops or drop it")
    shape = {"input_height": 64, "input_width": 128} if args.reader_crops else {}
    if args.input_size is not None:
        shape.update(input_height=args.input_size[0], input_width=args.input_size[1])
    if args.stages is not None:
        shape["stages"] = args.stages
    if args.neck is not None:
        shape["neck"] = args.neck
    try:
        model = ModelConfig(**shape)
    except ValueError as exc:
        raise UsageError(f"--input-size/--stages: {exc}") from None
    config = TrainConfig(data=str(args.data), out=str(args.out), epochs=args.epochs,
                         steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                         learning_rate=args.lr, seed=args.seed, holdout=args.holdout,
                         synthetic=args.synthetic, synthetic_share=args.synthetic_share, limit=args.limit,
                         threads=args.threads, eval_every=args.eval_every, model=model,
                         augmentation=Augmentation(zoom=(args.min_zoom, Augmentation.zoom[1]),
                                                   swap_probability=args.swap_digits),
                         crop=CropConfig(loose_probability=args.loose_windows) if args.reader_crops else None,
                         init=args.init)
    train(config, resume=args.resume)
    return 0


def handle_export(args: argparse.Namespace) -> int:
    from bench.model.export import export_run

    if args.locator is not None:
        from bench.model.two_stage import export_two_stage

        out = export_two_stage(args.locator, args.run, args.out, args.weights, args.locator_threshold,
                               args.row_reach)
        print(f"exported {out}: two-stage graph (locator {args.locator}, reader of {args.run})")
        return 0
    info = export_run(args.run, args.out, args.weights)
    print(f"exported {info.path}: {info.params} parameters, {info.flops / 1e6:.1f} MFLOPs, "
          f"{info.weights_bytes} weight bytes (float32)")
    return 0
