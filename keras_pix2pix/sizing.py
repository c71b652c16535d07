"""How an image of any size meets a generator trained at one size: `--sizing resize|native|tiles`.

- resize: resize to the model's size, translate, resize back. Cheap; detail finer than the
  model's size is lost.
- native: the U-Net is fully convolutional, so it runs at the image's own resolution, padded
  (reflected) up to a multiple of 2**depth and cropped back. Memory grows with the image: it is
  refused above NATIVE_PIXELS.
- tiles: overlapping tiles, each translated, blended with weights that ramp from 0 to 1 across
  each overlap, in memory bounded by the tile size whatever the image size. In export mode (the
  SavedModel's and the TFLite files' form) a tile is the model's size; in paper and inference
  modes, which Keras runs at any size, it is the largest multiple of the model's size up to
  CONTEXT_TILE_SIDE. Paper mode normalizes every tile with the whole image's statistics, pooled
  over its tiles in a first pass. Tiles of the model's size, each normalized by its own
  statistics, drew a grid over flat sky and wall (issue 28; bench/seams.py measures it).
- auto (the default): resize for an image no larger than the model's size, tiles above it.
"""


import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import data
from keras_pix2pix.config import UsageError, check_choice
from keras_pix2pix.fast import DynamicUpSampling2D
from keras_pix2pix.modes import batch_normalizations, paper_statistics, translate, translate_with_statistics
from keras_pix2pix.options import DEFAULT_OVERLAP, NATIVE_PIXELS, SIZINGS, check_setting
from keras_pix2pix.progress import Progress

# The side of paper and inference modes' tiles, at most (or the model's, if larger). A tile's
# deepest features see the whole tile, and the zero padding around it: tiles of the model's size
# each drew their own picture, a grid. At three times a 256 px model's size the borders stepped
# no more than the whole image does there; at twice, 1.6 times (bench/seams.py, bench/README.md).
# About 0.6 GB of activations for a 64-filter U-Net.
CONTEXT_TILE_SIDE = 768


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


def auto_sizing(image_size, model_size):
    """The sizing "auto" stands for: resize an image no larger than the model's size, tile a larger one.

    The one rule, for predict and evaluate (sizes as ints: a str) and in the SavedModel's graph
    (sizes as tensors: a string tensor).

    Example:
    >>> auto_sizing((256, 200), (256, 256)), auto_sizing((300, 200), (256, 256))
    ('resize', 'tiles')
    """
    fits = (image_size[0] <= model_size[0]) & (image_size[1] <= model_size[1])
    if isinstance(fits, (bool, np.bool_)):
        return "resize" if fits else "tiles"
    return tf.where(fits, "resize", "tiles")


def within_native_limit(height, width):
    """Whether sizing native runs an image of this size whole (NATIVE_PIXELS); ints or tensors, as auto_sizing."""
    return height * width <= NATIVE_PIXELS


def native(model, image, mode):
    """Translates a [-1, 1] image (h, w, c) at its own resolution; returns (h, w, output channels)."""
    height, width = image.shape[:2]
    if not within_native_limit(height, width):
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


def _grid(image, tile_height, tile_width, overlap):
    """The image reflected up to at least a tile, and the starts of its rows and columns of tiles."""
    check_setting("tile_overlap", overlap, "overlap")
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padded = _reflect(image, tf.maximum(height, tile_height), tf.maximum(width, tile_width))
    rows = _starts(tf.shape(padded)[0], tile_height, round(overlap * tile_height))
    columns = _starts(tf.shape(padded)[1], tile_width, round(overlap * tile_width))
    return padded, rows, columns


def whole_image_statistics(model, image, overlap=DEFAULT_OVERLAP, log=None):
    """Paper mode's BatchNorm statistics of a whole image, pooled over its tiles, one tile in memory at a time.

    Each tile adds its mean and variance per channel (modes.paper_statistics), each pixel weighted
    by the tile's share of it in the blend, so that every pixel counts once, as over the whole
    image; the pooled variance is the tiles' variance plus the variance of their means.

    Args:
        model: the generator, at the tiles' size.
        image: float (height, width, channels) in [-1, 1], any size.
        overlap: the overlap of the tiles that will be blended, as a fraction of a tile.
        log: where progress lines go for images of many tiles; None: nowhere.

    Returns:
        [mean, variance] per BatchNorm, float32 numpy arrays, for modes.translate_with_statistics.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=32, filters=4)
    >>> [statistics.shape for statistics in whole_image_statistics(generator, tf.zeros((40, 70, 3)))[:2]]
    [(8,), (8,)]
    """
    tile_height, tile_width = model.input_shape[1:3]
    padded, rows, columns = _grid(tf.convert_to_tensor(image, tf.float32), tile_height, tile_width, overlap)
    row_shares = _shares(rows, tile_height, tf.shape(padded)[0])
    column_shares = _shares(columns, tile_width, tf.shape(padded)[1])
    pieces = [(row, column, row_share[:, None] * column_share[None, :]) for row, row_share in zip(rows.numpy(), row_shares)
              for column, column_share in zip(columns.numpy(), column_shares)]
    many = log and len(pieces) > 64
    progress = Progress(len(pieces), "tiles (statistics)", rate_unit="tiles", log_every=64) if many else None
    sums = None
    for done, (row, column, weights) in enumerate(pieces, 1):
        piece = padded[None, row : row + tile_height, column : column + tile_width]
        moments = _weighted_sums(paper_statistics(model, piece, weights), float(np.sum(weights)))
        sums = moments if sums is None else [total + moment for total, moment in zip(sums, moments)]
        if progress:
            progress.update(done)
    return _pooled(sums, sum(float(np.sum(weights)) for _, _, weights in pieces))


def _weighted_sums(statistics, share):
    """A tile's [mean, variance] per layer as its share of the sums of means and of second moments, in float64."""
    sums = []
    for mean, variance in zip(statistics[0::2], statistics[1::2]):
        mean = mean.astype(np.float64)
        sums += [share * mean, share * (variance + mean**2)]
    return sums


def _pooled(sums, total):
    """[mean, variance] per layer, float32, from the sums of _weighted_sums over all tiles."""
    pooled = []
    for mean_sum, square_sum in zip(sums[0::2], sums[1::2]):
        mean = mean_sum / total
        pooled += [mean.astype(np.float32), np.maximum(square_sum / total - mean**2, 0).astype(np.float32)]
    return pooled


def _shares(starts, tile, length):
    """Each tile's share of each pixel along one side in the blend: its weight over the summed weights."""
    coverage = _coverage(starts, tile, length)
    return [(_ramp(starts, index, tile) / coverage[start : start + tile]).numpy()
            for index, start in enumerate(starts.numpy())]


def tile_size_for(model, image_shape, mode):
    """The (height, width) of the tiles an image is translated in, in a mode.

    Export mode's are the model's size, as the SavedModel and the TFLite files tile. Paper and
    inference modes' are the largest multiple of the model's size up to CONTEXT_TILE_SIDE (or the
    model's size, if larger), and no larger than the image reflected up to a multiple of
    downsampling(model): more context per tile, and fewer tiles.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=64, filters=4)
    >>> tile_size_for(generator, (1000, 1500, 3), "paper"), tile_size_for(generator, (300, 1500, 3), "paper")
    ((768, 768), (320, 768))
    >>> tile_size_for(generator, (1000, 1500, 3), "export")
    (64, 64)
    """
    model_size = tuple(int(side) for side in model.input_shape[1:3])
    if mode == "export":
        return model_size
    multiple = downsampling(model)
    return tuple(
        max(model_side, min(CONTEXT_TILE_SIDE // model_side * model_side, _round_up(image_side, multiple)))
        for model_side, image_side in zip(model_size, image_shape[:2])
    )


# model -> (a tile size, the model built at it): the last one, for the next image of that size.
_SIZED = weakref.WeakKeyDictionary()


def _at_tile_size(model, size):
    """at_size(model, *size), built once for a folder of photos of one size."""
    if size == tuple(model.input_shape[1:3]):
        return model
    if _SIZED.get(model, (None,))[0] != size:
        _SIZED[model] = size, at_size(model, *size)
    return _SIZED[model][1]


def tiles(model, image, mode, overlap=DEFAULT_OVERLAP, log=None):
    """Translates a [-1, 1] image (h, w, c) of any size in overlapping tiles (of tile_size_for), blended.

    In paper mode every tile is normalized with the whole image's statistics (whole_image_statistics,
    a first pass over the tiles), as the image run whole would be, and dropout stays on.

    Args:
        model: the generator (or its export form).
        image: float (height, width, channels) in [-1, 1].
        mode: the test-time mode.
        overlap: the overlap of neighbouring tiles, as a fraction of the tile, in [0, 0.5].
        log: where progress lines go for images of many tiles; None: nowhere.
    """
    size = tile_size_for(model, image.shape, mode)
    network = _at_tile_size(model, size)
    _, rows, columns = _grid(tf.convert_to_tensor(image, tf.float32), *size, overlap)
    if mode == "paper" and batch_normalizations(network) and int(tf.size(rows) * tf.size(columns)) > 1:
        statistics = whole_image_statistics(network, image, overlap, log)

        def run(piece):
            return translate_with_statistics(network, piece, statistics)[0]
    else:

        def run(piece):
            return translate(network, piece, mode)[0]

    return blend_tiles(run, image, size, model.output_shape[-1], overlap, log)


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
    tile_height, tile_width = (int(side) for side in tile_size)
    image = tf.convert_to_tensor(image, tf.float32)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padded, rows, columns = _grid(image, tile_height, tile_width, overlap)
    padded_height, padded_width = tf.shape(padded)[0], tf.shape(padded)[1]
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
                              lambda index, strip: add_tile(row, row_ramp, index, strip), (0, strip))[1]
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
        sizing = auto_sizing((height, width), (model_height, model_width))
    normalized = data.normalize(tf.convert_to_tensor(image, tf.float32))
    if sizing == "native":
        return native(model, normalized, mode)
    if sizing == "tiles":
        return tiles(model, normalized, mode, overlap, log)
    return resized(lambda batch: translate(model, batch, mode), image, (model_height, model_width))
