"""``tf``: any SavedModel with the TF Object Detection API signature, run by local TensorFlow.

The default model is ours (``models/digit_detector``, see ``models/README.md``); any export with
the OD API outputs ``detection_boxes`` / ``detection_scores`` / ``detection_classes`` /
``num_detections`` and one ``[batch, H, W, 3]`` image input (uint8 or float32, 0-255) runs too.

- Input mapping: a model with a fixed ``H x W`` gets the letterboxed photo of
  :mod:`bench.model.preprocess` (uint8 models get it rounded); a model whose ``H``/``W`` are
  ``None`` gets the photo as it is.
- Cold start: ``import_ms`` (importing TensorFlow) and ``load_ms`` in the details,
  ``init_ms`` = model load and signature checks; the runner measures the first inference.
- Latency: around the model call only (tensor in, numpy arrays out), one photo per call.
- Threshold: ``--tf-threshold``, else the model's own ``default_threshold`` from
  ``assets.extra/digitbench.json`` (ours: chosen on held-out TRAIN photos at export), else
  :data:`FALLBACK_THRESHOLD`.
- ``--batch-size N`` > 1: after the single-photo calls, the same photos go through one batched
  call; its time and photos/s are in the first photo's ``details["batch"]`` and the run-wide
  throughput in :meth:`TFBackend.describe` (``batch_photos_per_s``). Latency stays single-photo.
"""
from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.backend import Backend
from bench.clock import ms_since
from bench.errors import BackendUnavailable, first_line
from bench.metrics import read_number
from bench.model.preprocess import Transform, letterbox, to_uint8
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Digit, Recognition
from bench.saved_model import DEFAULT_MODEL, fingerprint, is_saved_model, read_metadata

FALLBACK_THRESHOLD = 0.5
"""Score threshold for a model that does not state its own."""
OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
CLASS_MAPS = ("zero-based", "one-based", "svhn")


@dataclass(frozen=True)
class TFOptions:
    """Which SavedModel to run and how to read its outputs."""

    model: str = option(str(DEFAULT_MODEL), "SavedModel folder with the OD API serving signature")
    threshold: float | None = option(None, "drop detections scoring below this; default: the model's own "
                                     "(assets.extra/digitbench.json, chosen on held-out train photos), else "
                                     f"{FALLBACK_THRESHOLD}", at_least=0, at_most=1)
    batch_size: int = option(1, "photos per batched model call, reported as throughput (photos/s); "
                             "latency stays single-photo", flag="--batch-size", at_least=1, at_most=1024)
    classes: str = option("zero-based", "how classes map to digits: zero-based (class = digit, ours), "
                          "one-based (class - 1, OD API label map 1..10 = '0'..'9'), svhn (10 = 0)",
                          choices=CLASS_MAPS)
    signature: str = option("serving_default", "the SavedModel signature to call")
    threads: int = option(0, "TensorFlow intra-op threads; 0 = TensorFlow's default", at_least=0, at_most=1024)


def class_to_digit(value: float, classes: str) -> int | None:
    """The digit a detection class stands for, or ``None`` when it is not a digit."""
    cls = int(round(float(value)))
    if classes == "one-based":
        cls -= 1
    elif classes == "svhn" and cls == 10:
        cls = 0
    return cls if 0 <= cls <= 9 else None


def _model_problem(path: Path) -> str | None:
    if not path.exists():
        return f"--tf-model {path}: no such folder; give a SavedModel folder (default {DEFAULT_MODEL})"
    if not is_saved_model(path):
        return f"--tf-model {path}: no saved_model.pb there; give a SavedModel folder"
    return None


class TFBackend(Backend):
    """A SavedModel detector run in this process by TensorFlow."""

    name = "tf"
    packages = ("tensorflow",)
    Options = TFOptions
    summary = "local TensorFlow SavedModel (OD API signature; default: our digit detector)"

    def __init__(self, options: Any = None, row: str | None = None) -> None:
        super().__init__(options, row)
        self.batch_size = max(1, int(self.options.batch_size))
        self._fn = None
        self._batch_photos = 0
        self._batch_ns = 0
        self._load_facts: dict[str, Any] = {}
        self._metadata: dict[str, Any] = {}
        self.threshold = self.options.threshold

    @classmethod
    def unavailable_reason(cls, options: TFOptions) -> str | None:
        if importlib.util.find_spec("tensorflow") is None:
            return "tensorflow not installed: pip install 'digitbench[tf]'"
        return _model_problem(Path(options.model))

    def open(self) -> ColdStart:
        problem = self.unavailable_reason(self.options)
        if problem:
            raise BackendUnavailable(problem)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        start = time.perf_counter_ns()
        import tensorflow as tf

        if self.options.threads > 0:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(self.options.threads)
            except RuntimeError:
                self._load_facts["threads_note"] = "TensorFlow was already initialised; --tf-threads ignored"
        imported = time.perf_counter_ns()
        path = Path(self.options.model)
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # protobuf, IO and TF errors alike: the model is unusable
            raise BackendUnavailable(f"--tf-model {path}: not a loadable SavedModel "
                                     f"({first_line(exc, type(exc).__name__)})") from None
        self._loaded = loaded
        self._fn, self._input_name, spec = self._check_signature(loaded, path)
        self._height, self._width = spec.shape[1], spec.shape[2]
        self._dtype = spec.dtype.name
        self._fixed_batch = spec.shape[0]
        self._metadata = read_metadata(path)
        self.threshold = self._resolve_threshold()
        load_ms = ms_since(imported)
        self._tf_version = tf.__version__
        return ColdStart(init_ms=load_ms, details={"import_ms": (imported - start) / 1e6, "load_ms": load_ms})

    def _resolve_threshold(self) -> float:
        if self.options.threshold is not None:
            return float(self.options.threshold)
        stated = self._metadata.get("default_threshold")
        return float(stated) if isinstance(stated, (int, float)) else FALLBACK_THRESHOLD

    def _check_signature(self, loaded, path: Path):
        name = self.options.signature
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if name not in signatures:
            have = ", ".join(sorted(signatures)) or "none"
            raise BackendUnavailable(f"--tf-model {path}: no signature {name!r} (it has: {have}); "
                                     "export it with the OD API serving signature or pass --tf-signature")
        fn = signatures[name]
        missing = [key for key in OUTPUTS if key not in fn.structured_outputs]
        if missing:
            raise BackendUnavailable(f"--tf-model {path}: signature {name!r} lacks {', '.join(missing)}; "
                                     "the tf backend needs the TF Object Detection API outputs")
        inputs = fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise BackendUnavailable(f"--tf-model {path}: signature {name!r} takes {len(inputs)} inputs; "
                                     "expected one [batch, H, W, 3] image")
        input_name, spec = next(iter(inputs.items()))
        if spec.shape.rank != 4 or spec.shape[3] not in (3, None) or spec.dtype.name not in ("uint8", "float32"):
            raise BackendUnavailable(f"--tf-model {path}: input {input_name!r} is {spec.dtype.name} "
                                     f"{spec.shape}; expected uint8 or float32 [batch, H, W, 3]")
        return fn, input_name, spec

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, Transform]:
        """The model input for one photo (batch of one) and its transform back to the photo."""
        if self._height is None or self._width is None:
            h, w = rgb.shape[:2]
            image = rgb.astype(np.float32)
            transform = Transform(1.0, 0.0, 0.0, w, h, w, h)
        else:
            image, transform = letterbox(rgb, self._height, self._width)
        if self._dtype == "uint8":
            image = to_uint8(image)
        return image[None], transform

    def _call(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
        import tensorflow as tf

        tensor = tf.constant(batch)
        start = time.perf_counter_ns()
        outputs = self._fn(**{self._input_name: tensor})
        arrays = {key: outputs[key].numpy() for key in OUTPUTS}
        return arrays, time.perf_counter_ns() - start

    def digits(self, arrays: dict[str, np.ndarray], index: int, transform: Transform) -> list[Digit]:
        """Detections of photo ``index`` of a batch above the threshold, in photo pixels."""
        scores = arrays["detection_scores"][index]
        count = int(arrays["num_detections"][index]) if arrays["num_detections"].size else len(scores)
        found = []
        for box, score, cls in zip(arrays["detection_boxes"][index][:count], scores[:count],
                                   arrays["detection_classes"][index][:count]):
            digit = class_to_digit(cls, self.options.classes)
            if score < self.threshold or digit is None:
                continue
            left, top, width, height = transform.to_photo(box)
            found.append(Digit(digit, float(score), left, top, width, height))
        return found

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        if self._fn is None:
            raise RuntimeError("call open() first")
        prepared, results = [], []
        for photo in photos:
            try:
                prepared.append(self.prepare(photo.rgb))
            except ValueError as exc:
                prepared.append(None)
                results.append(Recognition.failed(f"tf: cannot prepare the photo ({exc})"))
                continue
            image, transform = prepared[-1]
            try:
                arrays, elapsed = self._call(image)
            except Exception as exc:  # a model failing on one photo is that photo's error
                results.append(Recognition.failed(f"tf: model call failed ({type(exc).__name__}: "
                                                  f"{first_line(exc, '')})"))
                continue
            found = self.digits(arrays, 0, transform)
            results.append(Recognition(digits=found, text=read_number(found), latency_ms=elapsed / 1e6))
        self._measure_batch(prepared, results)
        return results

    def _measure_batch(self, prepared: list, results: list[Recognition]) -> None:
        good = [p for p in prepared if p is not None]
        if self.batch_size < 2 or len(good) < 2 or self._fixed_batch not in (None, len(good)):
            return
        if self._height is None or self._width is None:
            return
        _, elapsed = self._call(np.concatenate([image for image, _ in good]))
        self._batch_photos += len(good)
        self._batch_ns += elapsed
        results[0].details["batch"] = {"size": len(good), "ms": elapsed / 1e6,
                                       "photos_per_s": len(good) / (elapsed / 1e9)}

    def describe(self) -> dict[str, Any]:
        path = Path(self.options.model)
        facts: dict[str, Any] = {"model": str(path), "model_sha256": fingerprint(path) if path.is_dir() else None,
                                 "threshold": self.threshold, "classes": self.options.classes,
                                 **self._load_facts}
        if self._fn is not None:
            facts.update({"tensorflow": self._tf_version, "input": {"name": self._input_name, "dtype": self._dtype,
                                                                   "height": self._height, "width": self._width}})
        facts.update({k: self._metadata[k] for k in ("params", "flops", "weights_bytes_float32") if k in self._metadata})
        if self._batch_photos:
            facts["batch_size"] = self.batch_size
            facts["batch_photos_per_s"] = self._batch_photos / (self._batch_ns / 1e9)
        return facts

    def close(self) -> None:
        self._fn = None
        self._loaded = None


