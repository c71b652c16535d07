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

import math

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import data
from keras_pix2pix.config import UsageError, check_choice
from keras_pix2pix.modes import translate
from keras_pix2pix.progress import Progress

SIZINGS = ("auto", "resize", "native", "tiles")
# The largest image `native` runs whole: a U-Net of 64 base filters holds about 1 KB of
# activations per input pixel, so 4 megapixels take some 4 GB; beyond, tiles.
NATIVE_PIXELS = 4_000_000
DEFAULT_OVERLAP = 0.125


def downsampling(model):
    """The factor every input side must be a multiple of: 2 ** (the model's stride-2 convolutions)."""
    return 2 ** sum(1 for layer in model.layers if type(layer) is keras.layers.Conv2D and tuple(layer.strides) == (2, 2))


def at_size(model, height, width):
    """The same network, with the same weights, taking (height, width) inputs (each a multiple of downsampling(model)).

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> at_size(build_generator(image_size=32, filters=4), 64, 96).input_shape
    (None, 64, 96, 3)
    """
    if tuple(model.input_shape[1:3]) == (height, width):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = list(layer["config"]["batch_shape"])
            shape[1:3] = [height, width]
            layer["config"]["batch_shape"] = tuple(shape)
    resized = model.__class__.from_config(config)
    resized.set_weights(model.get_weights())
    return resized


def _reflect(image, height, width):
    """image (h, w, c) padded at the bottom and right to (height, width) by reflection, repeated if it is small."""
    while image.shape[0] < height or image.shape[1] < width:
        down = min(height - image.shape[0], max(image.shape[0] - 1, 0))
        right = min(width - image.shape[1], max(image.shape[1] - 1, 0))
        if down == 0 and right == 0:  # a 1-pixel side cannot be reflected: repeat it
            return tf.pad(image, [[0, height - image.shape[0]], [0, width - image.shape[1]], [0, 0]], mode="SYMMETRIC")
        image = tf.pad(image, [[0, down], [0, right], [0, 0]], mode="REFLECT")
    return image


def native(model, image, mode):
    """Translates a [-1, 1] image (h, w, c) at its own resolution; returns (h, w, output channels)."""
    height, width = image.shape[:2]
    if height * width > NATIVE_PIXELS:
        raise UsageError(
            f"--sizing native runs an image whole, and {width}x{height} is over its limit of "
            f"{NATIVE_PIXELS / 1e6:g} megapixels: use --sizing tiles"
        )
    multiple = downsampling(model)
    padded = _reflect(image, math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple)
    sized = at_size(model, *padded.shape[:2])
    return translate(sized, padded[None], mode)[0, :height, :width]


def _starts(length, tile, overlap):
    """Tile starts along one side: every `tile - overlap`, the last aligned with the end."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramps(starts, tile):
    """Per tile, its weights along one side: 1, ramping down to ~0 across the overlap with each neighbour."""
    weights = []
    for index, start in enumerate(starts):
        ramp = np.ones(tile, np.float32)
        positions = np.arange(tile, dtype=np.float32)
        # Tiles that only touch (no overlap) keep their full weight.
        if index > 0 and (overlap := starts[index - 1] + tile - start) > 0:
            ramp = np.minimum(ramp, (positions + 0.5) / overlap)
        if index < len(starts) - 1 and (overlap := start + tile - starts[index + 1]) > 0:
            ramp = np.minimum(ramp, (tile - positions - 0.5) / overlap)
        weights.append(ramp)
    return weights


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
        return translate(model, piece, mode)[0].numpy()

    return tf.constant(blend_tiles(run, image, model.input_shape[1:3], model.output_shape[-1], overlap, log))


def blend_tiles(run, image, tile_size, output_channels, overlap=DEFAULT_OVERLAP, log=None):
    """Runs `run` on overlapping tiles of an image and blends them: the tiling of any fixed-size model.

    Each tile's weights ramp from ~0 to 1 across its overlap with each neighbour (and stay 1 at
    the image's edges), and the blend divides by the summed weights, so that neighbouring tiles
    hand over smoothly and no seam shows. Memory holds the image, its output and one tile.

    Args:
        run: a function from one tile, float32 (1, tile height, tile width, channels) in [-1, 1],
            to its output (tile height, tile width, output_channels): a Keras model, a TFLite
            interpreter (export/tflite_tiles.py), anything of fixed size.
        image: float (height, width, channels) in [-1, 1], any size (a smaller one is reflected up).
        tile_size: (height, width) of a tile.
        output_channels: channels of run's output.
        overlap: the overlap of neighbouring tiles, as a fraction of a tile, in [0, 0.5].
        log: where progress lines go for images of many tiles; None: nowhere.

    Returns:
        float32 numpy array (height, width, output_channels).
    """
    if not 0 <= overlap <= 0.5:
        raise UsageError(f"tile_overlap must be between 0 and 0.5 of a tile; got {overlap!r}")
    tile_height, tile_width = tile_size
    height, width = image.shape[:2]
    padded = _reflect(tf.convert_to_tensor(image, tf.float32), max(height, tile_height), max(width, tile_width))
    rows = _starts(padded.shape[0], tile_height, round(overlap * tile_height))
    columns = _starts(padded.shape[1], tile_width, round(overlap * tile_width))
    row_weights, column_weights = _ramps(rows, tile_height), _ramps(columns, tile_width)
    total = np.zeros((*padded.shape[:2], output_channels), np.float32)
    weight = np.zeros((*padded.shape[:2], 1), np.float32)
    count = len(rows) * len(columns)
    progress = Progress(count, "tiles", rate_unit="tiles", log_every=64) if log and count > 64 else None
    done = 0
    for row, row_weight in zip(rows, row_weights):
        for column, column_weight in zip(columns, column_weights):
            output = np.asarray(run(padded[None, row : row + tile_height, column : column + tile_width]))
            window = (row_weight[:, None] * column_weight[None, :])[..., None]
            total[row : row + tile_height, column : column + tile_width] += output * window
            weight[row : row + tile_height, column : column + tile_width] += window
            done += 1
            if progress:
                progress.update(done)
    return (total / weight)[:height, :width]


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
    output = translate(model, data.normalize(data.resize(image, (model_height, model_width)))[None], mode)[0]
    return data.resize(output, (height, width), -1.0, 1.0)
