"""How an image of any size meets a generator trained at one size: `--sizing resize|native|tiles`.

- resize: resize to the model's size, translate, resize back. Cheap; detail finer than the
  model's size is lost.
- native: the U-Net is fully convolutional, so it runs at the image's own resolution, padded
  (reflected) up to a multiple of 2**depth and cropped back. Memory grows with the image: it is
  refused above NATIVE_PIXELS.
- tiles: overlapping tiles of the model's size, each translated, blended with weights that ramp
  from 0 to 1 across each overlap (so no seam shows), in memory bounded by the tile size whatever
  the image size. Paper mode computes its per-image statistics per tile.
- auto (the default): resize for an image no larger than the model's size, tiles above it.
"""


import keras
import tensorflow as tf

from keras_pix2pix import data
from keras_pix2pix.config import DEFAULT_OVERLAP, NATIVE_PIXELS, SIZINGS, UsageError, check_choice
from keras_pix2pix.fast import DynamicUpSampling2D
from keras_pix2pix.modes import translate
from keras_pix2pix.progress import Progress


def downsampling(model):
    """The factor every input side must be a multiple of: 2 ** (the model's stride-2 convolutions)."""
    return 2 ** sum(1 for layer in model.layers if type(layer) is keras.layers.Conv2D and tuple(layer.strides) == (2, 2))


def at_size(model, height, width):
    """The same network, with the same weights, taking (height, width) inputs (each a multiple of downsampling(model)).

    None for both makes a network for any size (the SavedModel's native translation); such a
    network is returned as it is for any size asked.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> at_size(build_generator(image_size=32, filters=4), 64, 96).input_shape
    (None, 64, 96, 3)
    """
    if tuple(model.input_shape[1:3]) in ((height, width), (None, None)):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = list(layer["config"]["batch_shape"])
            shape[1:3] = [height, width]
            layer["config"]["batch_shape"] = tuple(shape)
        elif layer["class_name"] == "UpSampling2D" and None in (height, width):
            # A size known only at run time: the form of the layer that can resize to it.
            layer.update(module=None, class_name="DynamicUpSampling2D", registered_name="DynamicUpSampling2D")
    with keras.saving.custom_object_scope({"DynamicUpSampling2D": DynamicUpSampling2D}):
        resized = model.__class__.from_config(config)
    resized.set_weights(model.get_weights())
    return resized


def runner_for(model, sizing):
    """The network translate_image should be given for a sizing: for native, one built for any size.

    Building a network at each image's size took 0.7 s an image at 256 px (and paper mode traced
    each anew); one network for every size is built once per call of predict or evaluate.
    """
    return at_size(model, None, None) if sizing == "native" else model


def _round_up(length, multiple):
    return (length + multiple - 1) // multiple * multiple


def _reflect(image, height, width):
    """image (h, w, c) extended at the bottom and right to (height, width) by reflection, repeated if it is small.

    Plain TensorFlow ops on dynamic sizes, so that the SavedModel's signatures run it too. A side
    of one pixel cannot be reflected and is repeated.
    """

    def indices(length, target):
        # Reflection repeated is periodic: 0 1 .. n-1 n-2 .. 1 0 1 .., of period 2n - 2.
        period = tf.maximum(2 * length - 2, 1)
        position = tf.range(target) % period
        return tf.where(position < length, position, period - position)

    shape = tf.shape(image)
    return tf.gather(tf.gather(image, indices(shape[0], height), axis=0), indices(shape[1], width), axis=1)


def run_padded(run, image, multiple):
    """Runs `run` on an image (h, w, c) reflected up to a multiple of `multiple` on each side; crops the output back.

    Args:
        run: a function from a batch of one image to a batch of one output of the same size.
        image: float (height, width, channels) in [-1, 1].
        multiple: what each side must be a multiple of (downsampling(model)).
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padded = _reflect(image, _round_up(height, multiple), _round_up(width, multiple))
    return run(padded[None])[0, :height, :width]


def native(model, image, mode):
    """Translates a [-1, 1] image (h, w, c) at its own resolution; returns (h, w, output channels)."""
    height, width = image.shape[:2]
    if height * width > NATIVE_PIXELS:
        raise UsageError(
            f"--sizing native runs an image whole, and {width}x{height} is over its limit of "
            f"{NATIVE_PIXELS / 1e6:g} megapixels: use --sizing tiles"
        )

    def run(batch):
        return translate(at_size(model, *batch.shape[1:3]), batch, mode)

    return run_padded(run, image, downsampling(model))


def _starts(length, tile, overlap):
    """Tile starts along one side: every `tile - overlap`, the last aligned with the end."""
    last = tf.maximum(length - tile, 0)
    return tf.concat([tf.range(0, last, max(1, tile - overlap)), [last]], axis=0)


def _ramp(starts, index, tile):
    """The weights along one side of tile `index`: 1, ramping down to ~0 across its overlap with each neighbour."""
    positions = tf.range(tile, dtype=tf.float32) + 0.5
    last = tf.size(starts) - 1
    start = starts[index]
    before = tf.where(index > 0, starts[tf.maximum(index - 1, 0)] + tile - start, 0)
    after = tf.where(index < last, start + tile - starts[tf.minimum(index + 1, last)], 0)
    ramp = tf.ones([tile])
    # Tiles that only touch (no overlap) keep their full weight.
    ramp = tf.where(before > 0, tf.minimum(ramp, positions / tf.cast(tf.maximum(before, 1), tf.float32)), ramp)
    return tf.where(after > 0, tf.minimum(ramp, (tile - positions) / tf.cast(tf.maximum(after, 1), tf.float32)), ramp)


def _coverage(starts, tile, length):
    """The summed weights of all tiles along one side: the blend's divisor is its outer product."""

    def add(index, total):
        placed = tf.pad(_ramp(starts, index, tile), [[starts[index], length - starts[index] - tile]])
        return index + 1, total + placed

    return tf.while_loop(lambda index, _: index < tf.size(starts), add, (0, tf.zeros([length])))[1]


def tiles(model, image, mode, overlap=DEFAULT_OVERLAP, log=None):
    """Translates a [-1, 1] image (h, w, c) of any size in overlapping tiles of the model's size, blended.

    Args:
        model: the generator (or its export form).
        image: float (height, width, channels) in [-1, 1].
        mode: the test-time mode; paper mode's statistics are each tile's own.
        overlap: the overlap of neighbouring tiles, as a fraction of the tile, in [0, 0.5].
        log: where progress lines go for images of many tiles; None: nowhere.
    """

    def run(piece):
        return translate(model, piece, mode)[0]

    return blend_tiles(run, image, model.input_shape[1:3], model.output_shape[-1], overlap, log)


def blend_tiles(run, image, tile_size, output_channels, overlap=DEFAULT_OVERLAP, log=None):
    """Runs `run` on overlapping tiles of an image and blends them: the tiling of any fixed-size model.

    Each tile's weights ramp from ~0 to 1 across its overlap with each neighbour (and stay 1 at
    the image's edges), and the blend divides by the summed weights, so that neighbouring tiles
    hand over smoothly and no seam shows. Memory holds the image, its output, one row of tiles
    and one tile. Plain TensorFlow ops and tf.while_loop: eagerly it is a Python loop (`run` may
    be a TFLite interpreter), and in a graph it is the SavedModel's tiling.

    Args:
        run: a function from one tile, float32 (1, tile height, tile width, channels) in [-1, 1],
            to its output (tile height, tile width, output_channels): a Keras model, a TFLite
            interpreter (export/tflite_tiles.py), anything of fixed size.
        image: float (height, width, channels) in [-1, 1], any size (a smaller one is reflected up).
        tile_size: (height, width) of a tile.
        output_channels: channels of run's output.
        overlap: the overlap of neighbouring tiles, as a fraction of a tile, in [0, 0.5].
        log: where progress lines go for images of many tiles (eagerly); None: nowhere.

    Returns:
        float32 tensor (height, width, output_channels).

    Example:
    >>> blended = blend_tiles(lambda tile: tile[0] * 0.5, tf.ones((40, 70, 3)), (32, 32), 3)
    >>> blended.shape, round(float(tf.reduce_min(blended)), 4), round(float(tf.reduce_max(blended)), 4)
    (TensorShape([40, 70, 3]), 0.5, 0.5)
    """
    if not 0 <= overlap <= 0.5:
        raise UsageError(f"tile_overlap must be between 0 and 0.5 of a tile; got {overlap!r}")
    tile_height, tile_width = (int(side) for side in tile_size)
    image = tf.convert_to_tensor(image, tf.float32)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padded = _reflect(image, tf.maximum(height, tile_height), tf.maximum(width, tile_width))
    padded_height, padded_width = tf.shape(padded)[0], tf.shape(padded)[1]
    rows = _starts(padded_height, tile_height, round(overlap * tile_height))
    columns = _starts(padded_width, tile_width, round(overlap * tile_width))
    count = int(tf.size(rows) * tf.size(columns)) if tf.executing_eagerly() else 0
    progress = Progress(count, "tiles", rate_unit="tiles", log_every=64) if log and count > 64 else None
    done = [0]

    def add_tile(row, row_ramp, column_index, strip):
        column = columns[column_index]
        piece = padded[None, row : row + tile_height, column : column + tile_width]
        output = tf.reshape(tf.cast(run(piece), tf.float32), [tile_height, tile_width, output_channels])
        window = row_ramp[:, None, None] * _ramp(columns, column_index, tile_width)[None, :, None]
        placed = tf.pad(output * window, [[0, 0], [column, padded_width - column - tile_width], [0, 0]])
        if progress:
            done[0] += 1
            progress.update(done[0])
        return column_index + 1, strip + placed

    def add_row(row_index, total):
        # One row of tiles is blended into a strip first: a strip, not the whole image, per tile.
        row = rows[row_index]
        row_ramp = _ramp(rows, row_index, tile_height)
        strip = tf.zeros([tile_height, padded_width, output_channels])
        strip = tf.while_loop(lambda index, _: index < tf.size(columns),
                              lambda index, strip: add_tile(row, row_ramp, index, strip), (0, strip))[1]  # fmt: skip
        return row_index + 1, total + tf.pad(strip, [[row, padded_height - row - tile_height], [0, 0], [0, 0]])

    total = tf.zeros([padded_height, padded_width, output_channels])
    total = tf.while_loop(lambda index, _: index < tf.size(rows), add_row, (0, total))[1]
    weight = _coverage(rows, tile_height, padded_height)[:, None] * _coverage(columns, tile_width, padded_width)[None, :]
    return (total / weight[..., None])[:height, :width]


def resized(run, image, size):
    """Runs `run` on an image in [0, 1] resized to the model's size; returns its output resized back, in [-1, 1]."""
    output = run(data.normalize(data.resize(image, size))[None])[0]
    return data.resize(output, tf.shape(image)[:2], -1.0, 1.0)


def translate_image(model, image, mode="paper", sizing="auto", overlap=DEFAULT_OVERLAP, log=None):
    """Translates one image of any size, in [0, 1] as decoded, to [-1, 1] at the same size.

    Args:
        model: the generator, prepared for the mode (modes.prepare).
        image: float (height, width, channels) in [0, 1] with the model's channels.
        mode: "paper", "inference" or "export".
        sizing: "auto", "resize", "native" or "tiles" (see the module docstring).
        overlap: the tiles' overlap, as a fraction of a tile.
        log: where progress lines of a many-tile image go.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=32, filters=4)
    >>> [translate_image(generator, tf.zeros((70, 45, 3)), "inference", sizing).shape[:2] for sizing in SIZINGS]
    [TensorShape([70, 45]), TensorShape([70, 45]), TensorShape([70, 45]), TensorShape([70, 45])]
    """
    check_choice("sizing", sizing, SIZINGS)
    height, width = image.shape[:2]
    model_height, model_width = model.input_shape[1:3]
    if sizing == "auto":
        sizing = "resize" if height <= model_height and width <= model_width else "tiles"
    normalized = data.normalize(tf.convert_to_tensor(image, tf.float32))
    if sizing == "native":
        return native(model, normalized, mode)
    if sizing == "tiles":
        return tiles(model, normalized, mode, overlap, log)
    return resized(lambda batch: translate(model, batch, mode), image, (model_height, model_width))
