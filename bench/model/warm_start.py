"""Where a warm restart (``bench model train --init``) starts: an earlier run's final weights, or the
network inside an exported model (the one-stage detector, or a two-stage model's reader).

An exported network has its batch norms folded into its convolutions; :func:`unfold_batch_norm`
gives the trainable network the same function again, so training goes on from the exported model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.model.architecture import ModelConfig
from bench.saved_model import is_saved_model, read_metadata


@dataclass(frozen=True)
class StartPoint:
    """Weights a training run starts from."""

    source: Path
    """The ``--init`` folder: a training run, or an exported SavedModel."""
    weights: Path | None
    """The run's final weights; ``None`` for an exported model, whose variables are read instead."""
    scope: str = ""
    """For an exported model: the tracked name of the network among its variables."""


def start_point(init: str | Path, model: ModelConfig, reader: bool) -> StartPoint:
    """The weights of ``init``, checked to be those of the network ``model`` (a two-stage reader or not)."""
    from bench.model.export import read_train_config, weights_file

    init = Path(init)
    if is_saved_model(init):
        return _exported_start(init, model, reader)
    started_from = read_train_config(init)
    if ModelConfig.from_dict(started_from["model"]) != model:
        raise UsageError(f"--init {init}: that run trained another network (input size, stages or neck); "
                         f"give a run of the same network or drop --init")
    if (started_from.get("crop") is None) == reader:
        raise UsageError(f"--init {init}: that run and this one differ in --reader-crops; use the same")
    return StartPoint(init, weights_file(init))


def _exported_start(folder: Path, model: ModelConfig, reader: bool) -> StartPoint:
    metadata = read_metadata(folder)
    two_stage = metadata.get("two_stage")
    if reader != (two_stage is not None):
        needs = "a two-stage model (its reader)" if reader else "a one-stage detector"
        raise UsageError(f"--init {folder}: this run trains {needs}; give such a model or a training run")
    saved = two_stage["reader"].get("model") if two_stage else metadata.get("model")
    if saved is None or ModelConfig.from_dict(saved) != model:
        raise UsageError(f"--init {folder}: that model holds another network (input size, stages or neck); "
                         f"give a model of the same network or drop --init")
    return StartPoint(folder, None, "reader" if two_stage else "net")


def load_start(net, start: StartPoint, model: ModelConfig, images: np.ndarray | None) -> None:
    """Fill ``net`` (a trainable :func:`build_network` model) from ``start``; ``images`` is a batch of
    training inputs, for the batch-norm statistics of an exported network (unused for a run's weights)."""
    if start.weights is not None:
        net.load_weights(str(start.weights))
        return
    from bench.model.architecture import build_network

    folded = build_network(model, folded=True)
    read_exported_network(folded, start.source, start.scope)
    unfold_batch_norm(folded, net, images)


def read_exported_network(folded, folder: Path, scope: str) -> None:
    """Set the folded network ``folded`` to the variables under ``scope`` in SavedModel ``folder``."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    stored = reader.get_variable_to_shape_map()
    for index, layer in enumerate(folded.operations):
        values = []
        for variable in layer.weights:
            names = [f"{scope}/_operations/{index}/{attr}/.ATTRIBUTES/VARIABLE_VALUE"
                     for attr in (variable.name, f"_{variable.name}")]
            key = next((n for n in names if n in stored), None)
            if key is None or tuple(stored[key]) != tuple(variable.shape):
                raise UsageError(f"--init {folder}: its variables do not match the network "
                                 f"(layer {layer.name}); re-export it with this version of digitbench")
            values.append(reader.get_tensor(key))
        if values:
            layer.set_weights(values)


def unfold_batch_norm(folded, trained, images: np.ndarray) -> None:
    """Fill ``trained`` from its ``folded`` twin: the inverse of :func:`~bench.model.architecture.fold_batch_norm`.

    Each convolution keeps the folded kernel and its batch norm adds the folded bias back; then, with
    the network computing the folded function, each batch norm takes as moving statistics the mean and
    variance of its convolution's output over ``images``, with a scale and shift that undo them. The
    network computes the folded one's function exactly in inference, and nearly so in training, where
    each batch's own statistics are used.
    """
    import keras
    from keras import layers

    from bench.model.architecture import norm_names

    source = {layer.name: layer for layer in folded.layers}
    norm_after = norm_names({layer.name: layer for layer in trained.layers})
    biases = {}
    for layer in trained.layers:
        if isinstance(layer, layers.BatchNormalization) or not layer.weights:
            continue
        values = source[layer.name].get_weights()
        if layer.name in norm_after:
            biases[norm_after[layer.name]] = values[1]
            values = values[:1]
        layer.set_weights(values)
    for name, bias in biases.items():
        norm = trained.get_layer(name)
        ones = np.ones_like(bias)
        norm.set_weights([ones * np.sqrt(1 + norm.epsilon), bias, 0 * ones, ones])
    convs = [layer.name for layer in trained.layers if layer.name in norm_after]
    probe = keras.Model(trained.input, [trained.get_layer(name).output for name in convs])
    outputs = probe(np.asarray(images, np.float32), training=False)
    for name, output in zip(convs, outputs):
        norm = trained.get_layer(norm_after[name])
        output = np.asarray(output, np.float64)
        mean, variance = output.mean(axis=(0, 1, 2)), output.var(axis=(0, 1, 2))
        scale = np.sqrt(variance + norm.epsilon)
        norm.set_weights([scale, mean + biases[norm.name], mean, variance])
