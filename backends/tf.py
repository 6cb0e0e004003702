"""``tf``: any SavedModel with the TF Object Detection API signature, run by local TensorFlow.

The default model is ours (``models/digit_reader_two_stage``, see ``models/README.md``); any OD API export
runs too, unchanged: the four outputs ``detection_boxes`` / ``detection_scores`` /
``detection_classes`` / ``num_detections`` or the two-output form (``detection_boxes`` +
``detection_multiclass_scores``), and one ``[batch, H, W, 3]`` image input (uint8, int32 or
float32, 0-255). See :mod:`bench.od_api` for classes, label maps and thresholds.

- Input mapping: a model with a fixed ``H x W`` gets the letterboxed photo of
  :mod:`bench.model.preprocess` (uint8/int32 models get it rounded); a model whose ``H``/``W``
  are ``None`` gets the photo as it is (it resizes inside its graph).
- Cold start: ``library`` = importing TensorFlow (0 when an earlier row of this process already
  did: the row notes it), ``init`` = model load and signature checks; the runner measures the
  first inference (end to end: preprocessing, model call, decoding).
- Latency: around the model call only (tensor in, numpy arrays out), one photo per call;
  ``end_to_end_ms`` adds the preprocessing and the decoding into digits.
- ``--batch-size N`` > 1: after the single-photo calls, the same photos go through one batched
  call; its time and photos/s are in the first photo's ``details["batch"]`` and the run-wide
  throughput in :meth:`TFBackend.describe` (``batch_photos_per_s``). Latency stays single-photo.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.backend import Backend
from bench.clock import ms_since
from bench.errors import BackendUnavailable, ModelError, first_line
from bench.metrics import read_number
from bench.model.preprocess import Transform, letterbox, to_uint8
from bench.od_api import (
    BOXES,
    CONVENTIONS,
    FALLBACK_THRESHOLD,
    MULTICLASS,
    STANDARD_OUTPUTS,
    ClassFit,
    ClassMap,
    Decoder,
    above,
    decode,
    resolve_classes,
    threshold_of,
)
from bench.options import option
from bench.photos import LoadedPhoto
from bench.results.records import ColdStart, Recognition
from bench.saved_model import DEFAULT_MODEL, fingerprint, is_saved_model, read_metadata

INPUT_DTYPES = ("uint8", "int32", "float32")


@dataclass(frozen=True)
class TFOptions:
    """Which SavedModel to run and how to read its outputs."""

    model: str = option(str(DEFAULT_MODEL), "SavedModel folder with the OD API serving signature")
    threshold: float | None = option(None, "drop detections scoring below this; default: the model's own "
                                     "(assets.extra/digitbench.json, chosen on held-out train photos), else "
                                     f"{FALLBACK_THRESHOLD}", at_least=0, at_most=1)
    batch_size: int = option(1, "photos per batched model call, reported as throughput (photos/s); "
                             "latency stays single-photo", flag="--batch-size", at_least=1, at_most=1024)
    classes: str | None = option(None, "how classes map to digits: zero-based (class = digit, ours), "
                                 "one-based (class - 1), svhn (10 = 0); default: the label_map.pbtxt in the "
                                 "model folder or its two parents, else the model's digitbench.json, else "
                                 "zero-based", choices=CONVENTIONS)
    signature: str = option("serving_default", "the SavedModel signature to call")
    threads: int = option(0, "TensorFlow intra-op threads; 0 = TensorFlow's default", at_least=0, at_most=1024)


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
        self._notes: list[str] = []
        self._fit = ClassFit()
        self.threshold = self.options.threshold
        self.classes: ClassMap | None = None
        self._outputs: tuple[str, ...] = STANDARD_OUTPUTS

    @classmethod
    def unavailable_reason(cls, options: TFOptions) -> str | None:
        if importlib.util.find_spec("tensorflow") is None:
            return "tensorflow not installed: pip install 'digitbench[tf]'"
        return _model_problem(Path(options.model))

    def open(self) -> ColdStart:
        problem = self.unavailable_reason(self.options)
        if problem:
            raise BackendUnavailable(problem)
        path = Path(self.options.model)
        self._metadata = read_metadata(path)
        try:
            self.classes = resolve_classes(self.options.classes, path, self._metadata, "--tf-classes")
        except ModelError as exc:
            raise BackendUnavailable(str(exc)) from None
        self.threshold, note = threshold_of(self.options.threshold, self._metadata, "--tf-threshold")
        self._notes = [note] if note else []
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        already = "tensorflow" in sys.modules
        start = time.perf_counter_ns()
        import tensorflow as tf

        if self.options.threads > 0:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(self.options.threads)
            except RuntimeError:
                self._load_facts["threads_note"] = "TensorFlow was already initialised; --tf-threads ignored"
        imported = time.perf_counter_ns()
        if already:
            self._notes.append("TensorFlow was already imported in this process (library 0 ms); a first row "
                               "pays its import")
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
        load_ms = ms_since(imported)
        self._tf_version = tf.__version__
        import_ms = (imported - start) / 1e6
        return ColdStart(init_ms=load_ms, library_ms=import_ms,
                         details={"import_ms": import_ms, "load_ms": load_ms, "tensorflow_already_imported": already})

    def _check_signature(self, loaded, path: Path):
        name = self.options.signature
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if name not in signatures:
            have = ", ".join(sorted(signatures)) or "none"
            raise BackendUnavailable(f"--tf-model {path}: no signature {name!r} (it has: {have}); "
                                     "export it with the OD API serving signature or pass --tf-signature")
        fn = signatures[name]
        keys = set(fn.structured_outputs)
        if all(key in keys for key in STANDARD_OUTPUTS):
            self._outputs = STANDARD_OUTPUTS
        elif {BOXES, MULTICLASS} <= keys:
            self._outputs = (BOXES, MULTICLASS)
        else:
            missing = ", ".join(key for key in STANDARD_OUTPUTS if key not in keys)
            raise BackendUnavailable(f"--tf-model {path}: signature {name!r} lacks {missing} (and has no "
                                     f"{BOXES} + {MULTICLASS} pair); the tf backend needs the TF Object "
                                     "Detection API outputs")
        inputs = fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise BackendUnavailable(f"--tf-model {path}: signature {name!r} takes {len(inputs)} inputs; "
                                     "expected one [batch, H, W, 3] image")
        input_name, spec = next(iter(inputs.items()))
        if spec.shape.rank != 4 or spec.shape[3] not in (3, None) or spec.dtype.name not in INPUT_DTYPES:
            raise BackendUnavailable(f"--tf-model {path}: input {input_name!r} is {spec.dtype.name} "
                                     f"{spec.shape}; expected uint8, int32 or float32 [batch, H, W, 3]")
        return fn, input_name, spec

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, Transform]:
        """The model input for one photo (batch of one) and its transform back to the photo."""
        if self._height is None or self._width is None:
            h, w = rgb.shape[:2]
            image = rgb
            transform = Transform(1.0, 0.0, 0.0, w, h, w, h)
        else:
            image, transform = letterbox(rgb, self._height, self._width)
            if self._dtype != "float32":
                image = to_uint8(image)
        return image.astype(self._dtype, copy=False)[None], transform

    def _call(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
        import tensorflow as tf

        tensor = tf.constant(batch)
        start = time.perf_counter_ns()
        outputs = self._fn(**{self._input_name: tensor})
        arrays = {key: outputs[key].numpy() for key in self._outputs}
        return arrays, time.perf_counter_ns() - start

    def candidates(self, arrays: dict[str, np.ndarray], index: int, transform: Transform) -> list:
        """Every detection of photo ``index`` of a batch whose class is a digit, in photo pixels, best first."""
        decoder = Decoder(self.classes)
        return decode({key: value[index] for key, value in arrays.items()}, decoder, transform.to_photo, self._fit)

    def recognize(self, photos: Sequence[LoadedPhoto]) -> list[Recognition]:
        if self._fn is None:
            raise RuntimeError("call open() first")
        prepared, results = [], []
        for photo in photos:
            start = time.perf_counter_ns()
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
            candidates = self.candidates(arrays, 0, transform)
            found = above(candidates, self.threshold)
            results.append(Recognition(digits=found, text=read_number(found), latency_ms=elapsed / 1e6,
                                       candidates=candidates, end_to_end_ms=ms_since(start)))
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
                                 "threshold": self.threshold,
                                 "classes": self.classes.describe() if self.classes else self.options.classes,
                                 **self._load_facts}
        if self._fn is not None:
            facts.update({"tensorflow": self._tf_version, "outputs": list(self._outputs),
                          "input": {"name": self._input_name, "dtype": self._dtype,
                                    "height": self._height, "width": self._width}})
        facts.update({k: self._metadata[k] for k in ("params", "flops", "weights_bytes_float32") if k in self._metadata})
        if self._batch_photos:
            facts["batch_size"] = self.batch_size
            facts["batch_photos_per_s"] = self._batch_photos / (self._batch_ns / 1e9)
        facts["notes"] = self._notes + (self._fit.notes(self.classes, "--tf-classes") if self.classes else [])
        return facts

    def close(self) -> None:
        self._fn = None
        self._loaded = None
