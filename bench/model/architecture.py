"""The digit detector: a small separable-conv backbone, an FPN-style neck and a centre-heatmap head.

The network is anchor-free in the manner of CenterNet (Zhou et al., "Objects as Points", 2019):
at stride :attr:`ModelConfig.stride` it predicts, per cell, one heatmap logit per digit class
(a peak marks a digit centre), the box size in cells and the sub-cell offset of the centre.
:func:`decode` turns these maps into detections with max-pool peak picking and top-k only, so
the graph has no NMS op and runs with ``model.execute()`` in TF.js.

Why this design: a heatmap head decodes with sigmoid, max-pool, top-k and gathers — cheap,
fixed-shape and supported by TF.js — and house-number digits are objects of similar size in a
row, where a 3x3 peak window separates neighbours without NMS.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelConfig:
    """Shape and capacity of the detector."""

    input_height: int = 96
    input_width: int = 192
    stem: int = 16
    stages: tuple[tuple[int, int], ...] = ((40, 1), (80, 2), (160, 3), (192, 1))
    """(channels, separable blocks after the stride-2 one) for strides 4, 8, 16, 32, ..."""
    neck: int = 48
    max_detections: int = 20
    stride: int = 4
    num_classes: int = NUM_CLASSES
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        unit = self.stride * 2 ** (len(self.stages) - 1)
        if self.input_height % unit or self.input_width % unit:
            raise ValueError(f"input {self.input_height}x{self.input_width} must be a multiple of {unit}")

    @property
    def grid(self) -> tuple[int, int]:
        """Height and width of the output maps."""
        return self.input_height // self.stride, self.input_width // self.stride

    def to_dict(self) -> dict:
        return {k: (list(map(list, v)) if k == "stages" else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        values = dict(data)
        if "stages" in values:
            values["stages"] = tuple(tuple(s) for s in values["stages"])
        return cls(**values)


def _norm(x, name: str, folded: bool):
    from keras import layers

    return x if folded else layers.BatchNormalization(name=name)(x)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, folded: bool):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=folded, name=f"{name}_conv")(x)
    x = _norm(x, f"{name}_bn", folded)
    return layers.ReLU(name=f"{name}_relu")(x)


def _separable(x, filters: int, stride: int, name: str, folded: bool):
    from keras import layers

    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=folded, name=f"{name}_dw")(x)
    x = _norm(x, f"{name}_dw_bn", folded)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return _conv_bn(x, filters, 1, 1, f"{name}_pw", folded)


def _block(x, filters: int, name: str, folded: bool):
    """A separable block with a residual connection when shapes allow it."""
    from keras import layers

    y = _separable(x, filters, 1, name, folded)
    if x.shape[-1] == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_network(config: ModelConfig, folded: bool = False):
    """The Keras model: float32 image 0-255 -> (heatmap logits, regression maps).

    Regression channels: box width and height in cells, centre offset x and y in cells.
    ``folded=True`` builds the inference twin without batch normalisation (convolutions with
    biases), to be filled by :func:`fold_batch_norm`.
    """
    import keras
    from keras import layers

    image = keras.Input((config.input_height, config.input_width, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(image)
    x = _conv_bn(x, config.stem, 3, 2, "stem", folded)
    features = []
    for level, (filters, blocks) in enumerate(config.stages):
        x = _separable(x, filters, 2, f"s{level}_down", folded)
        for b in range(blocks):
            x = _block(x, filters, f"s{level}_b{b}", folded)
        features.append(x)
    x = layers.Conv2D(config.neck, 1, name=f"lat{len(features) - 1}")(features[-1])
    for level in range(len(features) - 2, -1, -1):
        height, width = features[level].shape[1:3]
        x = layers.Resizing(height, width, interpolation="nearest", name=f"up{level}")(x)
        lateral = layers.Conv2D(config.neck, 1, name=f"lat{level}")(features[level])
        x = layers.Add(name=f"merge{level}")([x, lateral])
        x = _separable(x, config.neck, 1, f"neck{level}", folded)
    heat = _separable(x, config.neck, 1, "heat_head", folded)
    heat = layers.Conv2D(config.num_classes, 1, name="heatmap",
                         bias_initializer=keras.initializers.Constant(-2.19))(heat)
    reg = _separable(x, config.neck, 1, "reg_head", folded)
    reg = layers.Conv2D(4, 1, name="regression")(reg)
    return keras.Model(image, [heat, reg], name="digit_centernet")


def fold_batch_norm(trained, folded) -> None:
    """Copy ``trained`` into its ``folded`` twin, merging each batch norm into the conv before it."""
    import numpy as np
    from keras import layers

    by_name = {layer.name: layer for layer in trained.layers}
    norm_after = norm_names(by_name)
    for layer in folded.layers:
        weights = [np.asarray(v.numpy()) for v in by_name[layer.name].weights]
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)) or layer.name not in norm_after:
            layer.set_weights(weights)
            continue
        bn = by_name[norm_after[layer.name]]
        gamma, beta, mean, variance = (np.asarray(v.numpy()) for v in bn.weights)
        factor = gamma / np.sqrt(variance + bn.epsilon)
        kernel = weights[0]
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel = kernel * factor.reshape(1, 1, -1, kernel.shape[-1])
        else:
            kernel = kernel * factor
        layer.set_weights([kernel, beta - mean * factor])


def norm_names(by_name: dict) -> dict[str, str]:
    """Conv layer name -> the batch-norm layer that follows it."""
    out = {}
    for name in by_name:
        if name.endswith("_bn"):
            base = name[: -len("_bn")]
            out[base if base.endswith("_dw") else f"{base}_conv"] = name
    return out


def decode(heat_logits, regression, config: ModelConfig):
    """Detections from the network's maps, with tfjs-friendly ops only.

    One detection per location: the class map is reduced to its best class per cell (max and
    argmax), a cell is a peak when it equals the 3x3 max-pool of that map, and the top
    ``max_detections`` peaks are kept. Returns ``(boxes [B, N, 4] normalised ymin, xmin, ymax,
    xmax; scores [B, N]; classes [B, N] float, 0-based digit; num_detections [B] float)``.
    """
    import tensorflow as tf

    gh, gw = config.grid
    n = config.max_detections
    heat = tf.sigmoid(heat_logits)
    best = tf.reduce_max(heat, axis=-1, keepdims=True)
    best_class = tf.argmax(heat, axis=-1, output_type=tf.int32)
    peaks = tf.nn.max_pool2d(best, ksize=3, strides=1, padding="SAME")
    best = best * tf.cast(tf.equal(best, peaks), best.dtype)
    batch = tf.shape(heat)[0]
    scores, cell = tf.math.top_k(tf.reshape(best, [batch, gh * gw]), k=n)
    flat_index = tf.reshape(cell + tf.reshape(tf.range(batch) * (gh * gw), [batch, 1]), [-1])
    classes = tf.reshape(tf.gather(tf.reshape(best_class, [-1]), flat_index), [batch, n])
    reg = tf.reshape(tf.gather(tf.reshape(regression, [batch * gh * gw, 4]), flat_index), [batch, n, 4])
    half_w = reg[..., 0] * 0.5
    half_h = reg[..., 1] * 0.5
    centre_x = tf.cast(cell % gw, tf.float32) + reg[..., 2]
    centre_y = tf.cast(cell // gw, tf.float32) + reg[..., 3]
    boxes = tf.stack([(centre_y - half_h) / gh, (centre_x - half_w) / gw,
                      (centre_y + half_h) / gh, (centre_x + half_w) / gw], axis=-1)
    boxes = tf.clip_by_value(boxes, 0.0, 1.0)
    num = tf.reduce_sum(tf.cast(scores > 0, tf.float32), axis=1)
    return boxes, scores, tf.cast(classes, tf.float32), num


def count_flops(model) -> int:
    """Multiply-accumulate count of one forward pass of the network (convolutions only) x 2."""
    from keras import layers

    macs = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, ch = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            macs += h * w * ch * k
        elif isinstance(layer, layers.Conv2D):
            _, h, w, out = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            macs += h * w * out * k * layer.input.shape[-1]
    return int(2 * macs)
