"""``bench model train --init MODEL``: training goes on from an exported (batch-norm folded) network."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.errors import UsageError
from bench.model.architecture import ModelConfig

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn.t accept a copy keyword:DeprecationWarning")

TINY = ModelConfig(input_height=32, input_width=64, stem=4, stages=((8, 0), (8, 1), (8, 0)), neck=8,
                   max_detections=5)
REPO = Path(__file__).resolve().parents[1]


def _photos(count: int, config: ModelConfig, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, config.input_height, config.input_width, 3)
                                              ).astype(np.float32)


def test_an_exported_detector_unfolds_into_a_trainable_network_with_its_detections(tiny_dataset: Path,
                                                                                   tmp_path: Path):
    from bench.model.architecture import build_network, decode
    from bench.model.export import export_run
    from bench.model.train import TrainConfig, train
    from bench.model.warm_start import load_start, start_point

    config = TrainConfig(data=str(tiny_dataset), out=str(tmp_path / "run"), epochs=3, steps_per_epoch=1,
                         batch_size=4, holdout=0.34, synthetic=3, synthetic_share=0.25, warmup_epochs=1, model=TINY)
    train(config, log=lambda _: None)
    exported = export_run(tmp_path / "run", tmp_path / "exported").path

    net = build_network(TINY)
    sample = _photos(16, TINY)
    load_start(net, start_point(exported, TINY, reader=False), TINY, sample)
    probe = _photos(3, TINY, seed=1)
    served = tf.saved_model.load(str(exported)).signatures["serving_default"](input_tensor=tf.constant(probe))
    boxes, scores, classes, _ = decode(*net(probe, training=False), TINY)
    assert np.allclose(scores.numpy(), served["detection_scores"].numpy(), atol=1e-4)
    assert np.allclose(boxes.numpy(), served["detection_boxes"].numpy(), atol=1e-4)
    assert np.array_equal(classes.numpy(), served["detection_classes"].numpy())
    # in training mode a batch norm uses the batch's own statistics: on the batch the statistics came
    # from, the network must still compute the exported function
    for trained, inferred in zip(net(sample, training=True), net(sample, training=False)):
        assert np.allclose(trained.numpy(), inferred.numpy(), atol=1e-3)

    lines: list[str] = []
    train(TrainConfig(**{**config.__dict__, "out": str(tmp_path / "warm"), "epochs": 1, "init": str(exported)}),
          log=lines.append)
    assert any(line.startswith("started from") and "exported" in line for line in lines)
    with pytest.raises(UsageError, match="--init .*two-stage model"):
        start_point(exported, TINY, reader=True)
    with pytest.raises(UsageError, match="--init .*another network"):
        start_point(exported, ModelConfig(input_height=32, input_width=64, stem=4, stages=((8, 0), (8, 1)), neck=8),
                    reader=False)


def test_the_shipped_reader_read_back_from_its_savedmodel_serves_the_same_detections():
    """The reader's variables, found by their tracked names in models/digit_reader_two_stage and put
    back into the two-stage graph with the shipped locator, give the committed model's outputs."""
    from bench.model.architecture import build_network
    from bench.model.two_stage import CropConfig, serving_module
    from bench.model.warm_start import read_exported_network, start_point

    model = REPO / "models" / "digit_reader_two_stage"
    metadata = json.loads((model / "assets.extra" / "digitbench.json").read_text())
    reader = ModelConfig.from_dict(metadata["two_stage"]["reader"]["model"])
    crop = CropConfig(**metadata["two_stage"]["crop"])
    start = start_point(model, reader, reader=True)
    folded = build_network(reader, folded=True)
    read_exported_network(folded, start.source, start.scope)
    rebuilt = serving_module(tf.saved_model.load(str(REPO / "models" / "digit_detector")), folded, reader, crop)

    from bench.model.data import synthetic_samples
    from bench.model.preprocess import letterbox

    photos = np.stack([letterbox(s.rgb, crop.input_height, crop.input_width)[0]
                       for s in synthetic_samples(4, seed=3)]).astype(np.float32)
    shipped = tf.saved_model.load(str(model)).signatures["serving_default"](input_tensor=tf.constant(photos))
    ours = rebuilt.serve(tf.constant(photos))
    assert float(shipped["detection_scores"][:, 0].numpy().min()) > 0.3, "the probe photos must hold digits"
    for key in ("detection_boxes", "detection_scores", "detection_classes"):
        assert np.allclose(ours[key].numpy(), shipped[key].numpy(), atol=1e-4), key
