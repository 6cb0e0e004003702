"""The digit detector: a small separable-conv backbone, an FPN-style neck and a centre-heatmap head.

The network is anchor-free in the manner of CenterNet (Zhou et al., "Objects as Points", 2019):
at stride :attr:`ModelConfig.stride` it predicts, per cell, one heatmap logit per digit class
(a peak marks a digit centre), the box size in cells and the sub-cell offset of the centre.
:func:`decode` turns these maps into detections with max-pool peak picking and top-k only, so
the graph has no NMS op and runs with ``model.execute()`` in TF.js.
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
    stages: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (96, 2), (128, 1))
    """(channels, separable blocks after the stride-2 one) for strides 4, 8, 16, 32."""
    neck: int = 64
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


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _separable(x, filters: int, stride: int, name: str):
    from keras import layers

    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return _conv_bn(x, filters, 1, 1, f"{name}_pw")


def _block(x, filters: int, name: str):
    """A separable block with a residual connection when shapes allow it."""
    from keras import layers

    y = _separable(x, filters, 1, name)
    if x.shape[-1] == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_network(config: ModelConfig):
    """The trainable Keras model: float32 image 0-255 -> (heatmap logits, regression maps).

    Regression channels: box width and height in cells, centre offset x and y in cells.
    """
    import keras
    from keras import layers

    image = keras.Input((config.input_height, config.input_width, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(image)
    x = _conv_bn(x, config.stem, 3, 2, "stem")
    features = []
    for level, (filters, blocks) in enumerate(config.stages):
        x = _separable(x, filters, 2, f"s{level}_down")
        for b in range(blocks):
            x = _block(x, filters, f"s{level}_b{b}")
        features.append(x)
    x = layers.Conv2D(config.neck, 1, name="lat3")(features[-1])
    for level in range(len(features) - 2, -1, -1):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}")(x)
        lateral = layers.Conv2D(config.neck, 1, name=f"lat{level}")(features[level])
        x = layers.Add(name=f"merge{level}")([x, lateral])
        x = _separable(x, config.neck, 1, f"neck{level}")
    heat = _separable(x, config.neck, 1, "heat_head")
    heat = layers.Conv2D(config.num_classes, 1, name="heatmap",
                         bias_initializer=keras.initializers.Constant(-2.19))(heat)
    reg = _separable(x, config.neck, 1, "reg_head")
    reg = layers.Conv2D(4, 1, name="regression")(reg)
    return keras.Model(image, [heat, reg], name="digit_centernet")


def decode(heat_logits, regression, config: ModelConfig):
    """Detections from the network's maps, with tfjs-friendly ops only.

    Returns ``(boxes [B, N, 4] normalised ymin, xmin, ymax, xmax; scores [B, N];
    classes [B, N] float, 0-based digit; num_detections [B] float)``.
    """
    import tensorflow as tf

    gh, gw = config.grid
    c = config.num_classes
    n = config.max_detections
    heat = tf.sigmoid(heat_logits)
    peaks = tf.nn.max_pool2d(heat, ksize=3, strides=1, padding="SAME")
    heat = heat * tf.cast(tf.equal(heat, peaks), heat.dtype)
    batch = tf.shape(heat)[0]
    scores, index = tf.math.top_k(tf.reshape(heat, [batch, gh * gw * c]), k=n)
    classes = index % c
    cell = index // c
    cy = cell // gw
    cx = cell % gw
    flat_reg = tf.reshape(regression, [batch * gh * gw, 4])
    offsets = tf.reshape(tf.range(batch) * (gh * gw), [batch, 1])
    reg = tf.gather(flat_reg, tf.reshape(cell + offsets, [-1]))
    reg = tf.reshape(reg, [batch, n, 4])
    half_w = reg[..., 0] * 0.5
    half_h = reg[..., 1] * 0.5
    centre_x = tf.cast(cx, tf.float32) + reg[..., 2]
    centre_y = tf.cast(cy, tf.float32) + reg[..., 3]
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
