"""Train the digit detector on CPU: seeded, one log line per epoch, resumable from checkpoints.

Everything a run writes goes to ``TrainConfig.out``: ``train_config.json``, ``log.jsonl`` (one
line per epoch), ``tensorboard/``, ``checkpoints/`` (after every epoch), and at the end
``final.weights.h5`` and ``eval.json`` (threshold sweep on the held-out train photos).
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.model.architecture import ModelConfig
from bench.model.data import Augmentation, Sample, load_folder, make_batch, split_holdout, synthetic_samples
from bench.model.two_stage import CropConfig, reader_batch
from bench.model.warm_start import load_start, start_point

SYNTHETIC_SEED = 7


@dataclass
class TrainConfig:
    """What one training run does; saved next to its checkpoints."""

    data: str
    out: str
    epochs: int = 80
    steps_per_epoch: int = 80
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    seed: int = 0
    holdout: float = 0.1
    synthetic: int = 3000
    synthetic_share: float = 0.2
    limit: int | None = None
    threads: int = 2
    eval_every: int = 5
    model: ModelConfig = field(default_factory=ModelConfig)
    augmentation: Augmentation = field(default_factory=Augmentation)
    crop: CropConfig | None = None
    """Train a two-stage reader on number crops (:mod:`bench.model.two_stage`) instead of whole photos."""
    init: str | None = None
    """A finished run of the same network, or an exported model holding it, whose weights this run
    starts from (a warm restart: fresh optimizer and learning-rate schedule)."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["model"] = self.model.to_dict()
        return data

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def focal_loss(logits, target):
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of centres."""
    import tensorflow as tf

    pred = tf.sigmoid(logits)
    positive = tf.cast(tf.equal(target, 1.0), tf.float32)
    pos_loss = tf.math.log_sigmoid(logits) * tf.square(1 - pred) * positive
    neg_loss = tf.math.log_sigmoid(-logits) * tf.square(pred) * tf.pow(1 - target, 4) * (1 - positive)
    count = tf.maximum(tf.reduce_sum(positive), 1.0)
    return -(tf.reduce_sum(pos_loss) + tf.reduce_sum(neg_loss)) / count


def regression_loss(pred, target, mask):
    """L1 on (size, offset) at the centre cells; size weighted 0.1, offset 1."""
    import tensorflow as tf

    weights = tf.constant([0.1, 0.1, 1.0, 1.0])
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    return tf.reduce_sum(tf.abs(pred - target) * weights * mask[..., None]) / count


def make_batch_of(pool: list[Sample], indices: np.ndarray, real: list[Sample], config: TrainConfig,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One augmented training batch of ``pool[indices]``: whole photos, or a reader's crops."""
    if config.crop is None:
        return make_batch(pool, indices, config.model, config.augmentation, rng, donors=real)
    swapping = real if config.augmentation.swap_probability else None
    return reader_batch(pool, indices, config.model, config.crop, config.augmentation, rng, donors=swapping)


class BatchFeeder:
    """Makes augmented batches on a background thread, in a fixed order for a given seed."""

    def __init__(self, real: list[Sample], synthetic: list[Sample], config: TrainConfig, first_epoch: int):
        self.real, self.synthetic, self.config = real, synthetic, config
        self.queue: queue.Queue = queue.Queue(maxsize=6)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(first_epoch,), daemon=True)
        self.thread.start()

    def _run(self, first_epoch: int) -> None:
        try:
            self._produce(first_epoch)
        except BaseException as exc:  # handed to the training loop, which re-raises it
            self.queue.put(exc)

    def _produce(self, first_epoch: int) -> None:
        cfg = self.config
        n_syn = int(round(cfg.batch_size * cfg.synthetic_share)) if self.synthetic else 0
        for epoch in range(first_epoch, cfg.epochs):
            rng = np.random.default_rng([cfg.seed, epoch])
            for _ in range(cfg.steps_per_epoch):
                pool = self.real + self.synthetic
                indices = np.concatenate([rng.integers(0, len(self.real), cfg.batch_size - n_syn),
                                          len(self.real) + rng.integers(0, max(1, len(self.synthetic)), n_syn)])
                batch = make_batch_of(pool, indices, self.real, cfg, rng)
                while not self.stop.is_set():
                    try:
                        self.queue.put(batch, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return

    def get(self) -> dict[str, np.ndarray]:
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()


def _configure_tensorflow(threads: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
    return tf


def _check_out(out: Path, config: TrainConfig, resume: bool) -> None:
    saved = out / "train_config.json"
    if not saved.exists():
        return
    if not resume:
        raise UsageError(f"{out}: a training run is already there; add --resume to continue it or choose another --out")
    previous = json.loads(saved.read_text())
    mine = json.loads(json.dumps(config.to_dict()))
    ignore = {"out", "epochs", "eval_every", "threads"}
    diff = sorted(k for k in mine if k not in ignore and previous.get(k) != mine[k])
    if diff:
        raise UsageError(f"{out}: --resume with different settings ({', '.join(diff)}); use the same options or another --out")


def train(config: TrainConfig, resume: bool = False, log=print) -> Path:
    """Run (or continue) training; returns the path of the final weights."""
    out = Path(config.out)
    _check_out(out, config, resume)
    start = start_point(config.init, config.model, config.crop is not None) if config.init else None
    tf = _configure_tensorflow(config.threads)
    import keras

    from bench.model.architecture import build_network, decode
    from bench.model.evaluate import best, detect_all, sweep

    keras.utils.set_random_seed(config.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))

    started = time.perf_counter()
    photos = load_folder(config.data, config.limit)
    real, held = split_holdout(photos, config.holdout, config.seed)
    if config.crop is not None:
        held = []  # a reader is scored inside its two-stage graph, by `bench model export --locator`
    synthetic = synthetic_samples(config.synthetic, SYNTHETIC_SEED) if config.synthetic else []
    log(f"data: {len(real)} train photos, {len(held)} held out, {len(synthetic)} synthetic "
        f"({time.perf_counter() - started:.0f} s)")

    net = build_network(config.model)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, config.total_steps - config.warmup_epochs * config.steps_per_epoch),
        warmup_target=config.learning_rate, warmup_steps=config.warmup_epochs * config.steps_per_epoch,
        alpha=0.02)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, clipnorm=5.0)
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=net, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=2)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        log(f"resumed from {manager.latest_checkpoint} at epoch {int(epoch_var.numpy())}")
    elif start is not None:
        images = None
        if start.weights is None:  # an exported network: its batch norms are measured on training inputs
            sample_rng = np.random.default_rng([config.seed, 2**31])
            images = make_batch_of(real + synthetic, sample_rng.integers(0, len(real), 64), real, config,
                                   sample_rng)["image"]
        load_start(net, start, config.model, images)
        log(f"started from {start.weights or start.source}")
    first_epoch = int(epoch_var.numpy())

    @tf.function(reduce_retracing=True)
    def train_step(image, heat, reg, mask):
        with tf.GradientTape() as tape:
            heat_logits, reg_pred = net(image, training=True)
            l_heat = focal_loss(heat_logits, heat)
            l_reg = regression_loss(reg_pred, reg, mask)
            loss = l_heat + l_reg
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return l_heat, l_reg

    @tf.function
    def predict(image):
        heat_logits, reg_pred = net(image, training=False)
        boxes, scores, classes, _ = decode(heat_logits, reg_pred, config.model)
        return boxes, scores, classes

    def evaluate():
        detections = detect_all(lambda x: [t.numpy() for t in predict(tf.constant(x))], held,
                                config.model.input_height, config.model.input_width)
        return sweep(detections, held)

    writer = tf.summary.create_file_writer(str(out / "tensorboard"))
    feeder = BatchFeeder(real, synthetic, config, first_epoch)
    try:
        for epoch in range(first_epoch, config.epochs):
            t0 = time.perf_counter()
            wait = 0.0
            sums = np.zeros(2)
            for _ in range(config.steps_per_epoch):
                tw = time.perf_counter()
                batch = feeder.get()
                wait += time.perf_counter() - tw
                losses = train_step(*(tf.constant(batch[k]) for k in ("image", "heat", "reg", "mask")))
                sums += [float(v) for v in losses]
            heat_loss, reg_loss = sums / config.steps_per_epoch
            epoch_var.assign(epoch + 1)
            manager.save()
            record = {"epoch": epoch + 1, "heat_loss": round(heat_loss, 4), "reg_loss": round(reg_loss, 4),
                      "lr": float(schedule(optimizer.iterations)), "seconds": round(time.perf_counter() - t0, 1),
                      "data_wait_s": round(wait, 1)}
            if held and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
                top = best(evaluate())
                record.update({"val_f1": round(top.f1, 4), "val_seq": round(top.sequence_accuracy, 4),
                               "val_threshold": top.threshold})
            with writer.as_default(step=epoch + 1):
                for key, value in record.items():
                    if key != "epoch":
                        tf.summary.scalar(key, value)
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            log(" ".join(f"{k}={v}" for k, v in record.items()))
    finally:
        feeder.close()
    weights = out / "final.weights.h5"
    net.save_weights(str(weights))
    if held:
        scores = evaluate()
        chosen = best(scores)
        (out / "eval.json").write_text(json.dumps({"held_out_photos": len(held), "best": chosen.to_dict(),
                                                   "sweep": [s.to_dict() for s in scores]}, indent=2))
        log(f"held-out train photos: best threshold {chosen.threshold}: F1 {chosen.f1:.4f}, "
            f"whole-number accuracy {chosen.sequence_accuracy:.4f}")
    log(f"done in {time.perf_counter() - started:.0f} s; weights {weights}")
    return weights
