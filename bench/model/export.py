"""Export trained weights as a SavedModel with the TF Object Detection API serving signature.

Signature ``serving_default``:

- input ``input_tensor``: float32 ``[batch, H, W, 3]``, RGB, 0-255, the letterboxed photo of
  :mod:`bench.model.preprocess` (96 x 192 for the shipped model);
- ``detection_boxes`` ``[batch, N, 4]``: ymin, xmin, ymax, xmax normalised to the model input;
- ``detection_scores`` ``[batch, N]``, sorted descending;
- ``detection_classes`` ``[batch, N]``: float, 0-based, i.e. the class IS the digit (0-9);
  OD API label maps are 1-based: use the tf backend's ``--tf-classes one-based`` for those;
- ``num_detections`` ``[batch]``: float, detections with a score above 0 (peaks).

Batch normalisation is folded into the convolutions first, so the graph is convolutions,
ReLUs, adds, nearest up-sampling, sigmoid, max-pool, top-k and gathers — all tfjs ops; the
export checks the folded graph against the trained one. ``assets.extra/digitbench.json``
records the input mapping, the class convention, the default threshold and the model's size.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.model.architecture import ModelConfig
from bench.model.preprocess import FILL
from bench.saved_model import METADATA

SIGNATURE_INPUT = "input_tensor"


@dataclass(frozen=True)
class ExportInfo:
    """What an export produced."""

    path: Path
    params: int
    flops: int
    weights_bytes: int


def load_tensorflow():
    """TensorFlow, imported with its C++ logging quietened."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def serving_module(net, config: ModelConfig):
    """A ``tf.Module`` whose ``serve`` function has the OD API signature."""
    tf = load_tensorflow()
    from bench.model.architecture import decode

    class Detector(tf.Module):
        def __init__(self):
            super().__init__(name="digit_detector")
            self.net = net

        @tf.function(input_signature=[tf.TensorSpec([None, config.input_height, config.input_width, 3],
                                                    tf.float32, name=SIGNATURE_INPUT)])
        def serve(self, input_tensor):
            heat, reg = self.net(input_tensor, training=False)
            boxes, scores, classes, num = decode(heat, reg, config)
            return {"detection_boxes": boxes, "detection_scores": scores,
                    "detection_classes": classes, "num_detections": num}

    return Detector()


def check_export_target(out: str | Path) -> Path:
    """``out`` if an export may write there: a new folder, or an earlier SavedModel it replaces.

    Any other existing folder or file is refused, so an export never deletes what it did not write.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and (out / "saved_model.pb").is_file()):
        raise UsageError(f"--out {out}: exists and is not a SavedModel; choose a new folder (an export only "
                         "replaces an earlier SavedModel)")
    return out


def _swap_in(staged: Path, out: Path) -> None:
    """Put the finished export ``staged`` at ``out``, replacing an earlier SavedModel there."""
    old = out.with_name(f".{out.name}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(staged, out)
    shutil.rmtree(old, ignore_errors=True)


def export_network(trained, config: ModelConfig, out: str | Path, threshold: float | None = None,
                   extra: dict | None = None) -> ExportInfo:
    """Fold, check and save ``trained`` (a :func:`build_network` model) as a SavedModel.

    The SavedModel is written beside ``out`` first and moved there only when complete, so a failed
    export leaves an earlier model at ``out`` as it was.
    """
    out = check_export_target(out)
    tf = load_tensorflow()
    from bench.model.architecture import build_network, count_flops, fold_batch_norm

    folded = build_network(config, folded=True)
    fold_batch_norm(trained, folded)
    probe = np.random.default_rng(0).uniform(0, 255, (2, config.input_height, config.input_width, 3)).astype(np.float32)
    for a, b in zip(trained(probe, training=False), folded(probe, training=False)):
        gap = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        if gap > 1e-2:
            raise RuntimeError(f"batch-norm folding changed the outputs by {gap:.3g}")
    module = serving_module(folded, config)
    params = int(folded.count_params())
    info = ExportInfo(out, params, count_flops(folded), params * 4)
    metadata = {
        "format": "TF Object Detection API serving signature (serving_default)",
        "input": {"name": SIGNATURE_INPUT, "dtype": "float32", "range": "0-255", "channels": "RGB",
                  "height": config.input_height, "width": config.input_width,
                  "mapping": "letterbox, top-left, fill 128, box prefilter + half-pixel bilinear "
                             "(bench/model/preprocess.py)", "fill": FILL},
        "classes": "zero-based: class = digit 0-9",
        "default_threshold": threshold,
        "params": params, "flops": info.flops, "weights_bytes_float32": info.weights_bytes,
        "model": config.to_dict(),
        **(extra or {}),
    }
    save_serving(module, out, metadata)
    return info


def save_serving(module, out: Path, metadata: dict) -> None:
    """Save ``module`` (its ``serve`` as ``serving_default``) with ``metadata`` at ``out``: written beside
    it first and moved there only when complete, so a failed export leaves an earlier model as it was."""
    tf = load_tensorflow()
    staged = out.with_name(f".{out.name}.export")
    shutil.rmtree(staged, ignore_errors=True)
    tf.saved_model.save(module, str(staged), signatures={"serving_default": module.serve})
    (staged / METADATA).parent.mkdir(parents=True, exist_ok=True)
    (staged / METADATA).write_text(json.dumps(metadata, indent=2))
    _swap_in(staged, out)


def record_threshold(model_dir: Path, train_config: dict) -> None:
    """Choose the exported model's ``default_threshold`` on the run's held-out train photos and record
    the sweep in its metadata; unchanged when those photos are not on this machine."""
    tuned = tune_threshold(model_dir, train_config)
    if tuned:
        metadata = json.loads((model_dir / METADATA).read_text())
        metadata["default_threshold"] = tuned[0]["threshold"]
        metadata["held_out_train"] = {"best": tuned[0], "sweep": tuned[1]}
        (model_dir / METADATA).write_text(json.dumps(metadata, indent=2))


def tune_threshold(model_dir: str | Path, train_config: dict) -> tuple[dict, list[dict]] | None:
    """Sweep the score threshold of the exported model on the run's held-out TRAIN photos.

    Returns (best, sweep) as dicts, or ``None`` when the training data is not on this machine.
    """
    tf = load_tensorflow()
    from bench.model.data import load_folder, split_holdout
    from bench.model.evaluate import best, detect_all, sweep

    data = Path(train_config["data"])
    if not (data / "annotations.jsonl").is_file() or not train_config.get("holdout"):
        return None
    _, held = split_holdout(load_folder(data, train_config.get("limit")), train_config["holdout"], train_config["seed"])
    if not held:
        return None
    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    keys = ("detection_boxes", "detection_scores", "detection_classes")

    def predict(batch: np.ndarray):
        outputs = fn(**{SIGNATURE_INPUT: tf.constant(batch)})
        return [outputs[k].numpy() for k in keys]

    config = ModelConfig.from_dict(train_config["model"])
    scores = sweep(detect_all(predict, held, config.input_height, config.input_width), held)
    chosen = best(scores)
    return {"photos": len(held), **chosen.to_dict()}, [s.to_dict() for s in scores]


def training_summary(train_config: dict) -> dict:
    """The settings of a training run that an exported model's metadata records."""
    keys = ("epochs", "steps_per_epoch", "batch_size", "seed", "synthetic", "synthetic_share", "holdout",
            "learning_rate", "init")
    return {k: train_config.get(k) for k in keys}


def read_train_config(run: str | Path) -> dict:
    """``train_config.json`` of the training run in folder ``run`` (one line when it is not one)."""
    config_file = Path(run) / "train_config.json"
    if not config_file.exists():
        raise UsageError(f"{run}: no train_config.json; give the --out folder of a `bench model train` run")
    return json.loads(config_file.read_text())


def weights_file(run: str | Path, weights: str | Path | None = None) -> Path:
    """``weights``, or the run's final weights, checked to exist."""
    weights = Path(weights) if weights else Path(run) / "final.weights.h5"
    if not weights.exists():
        raise UsageError(f"{weights}: no such weights file; finish the training run or pass --weights")
    return weights


def export_run(run: str | Path, out: str | Path, weights: str | Path | None = None) -> ExportInfo:
    """Export the final weights of the training run in folder ``run`` and choose its threshold
    on the run's held-out train photos."""
    check_export_target(out)
    train_config = read_train_config(run)
    weights = weights_file(run, weights)
    config = ModelConfig.from_dict(train_config["model"])
    load_tensorflow()
    from bench.model.architecture import build_network

    net = build_network(config)
    net.load_weights(str(weights))
    extra = {"training": training_summary(train_config)}
    info = export_network(net, config, out, extra=extra)
    record_threshold(info.path, train_config)
    return info
