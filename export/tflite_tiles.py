"""Translate an image of any size with a keras-pix2pix TFLite file, in blended tiles.

    python export/tflite_tiles.py exports/facades/tflite/1/generator_float32.tflite aerial.jpg --output map.png

A TFLite file keeps the fixed input size it was exported at, so a larger image is cut into
overlapping tiles of that size, each run with LiteRT, and blended (keras_pix2pix.sizing.blend_tiles,
the tiling `predict --sizing tiles` uses), so that no seam shows. An int8 file takes and returns
float32 as the others do; an int8_io file's integer tensors are converted with their scale and zero
point (keras_pix2pix.exports.tflite_runner). Needs ai-edge-litert and keras-pix2pix.
"""

import argparse

import tensorflow as tf

from keras_pix2pix import data
from keras_pix2pix.config import MAX_PIXELS, UsageError
from keras_pix2pix.exports import tflite_runner
from keras_pix2pix.options import check_setting
from keras_pix2pix.sizing import DEFAULT_OVERLAP, blend_tiles


def tflite_tiles(model_path, image, overlap=DEFAULT_OVERLAP, threads=None):
    """Translates a float image (height, width, channels) in [0, 1] with a TFLite generator; returns [-1, 1].

    Args:
        model_path: the .tflite file (its input is (1, tile height, tile width, channels)); an
            int8_io file's integer input and output are converted with their scale and zero point.
        image: the decoded image, float in [0, 1], with the model's channels.
        overlap: the tiles' overlap, as a fraction of a tile.
        threads: LiteRT threads; None: every core.
    """
    run = tflite_runner(model_path, threads)
    normalized = data.normalize(tf.convert_to_tensor(image, tf.float32))
    return blend_tiles(run, normalized, run.input_shape[1:3], run.output_channels, overlap)


def _overlap(text):
    """--overlap's value, checked as predict checks --tile-overlap: a refusal is one line, before any work."""
    try:
        return check_setting("tile_overlap", float(text), "--overlap")
    except ValueError as error:  # float's, or the UsageError of a value out of range
        message = str(error) if isinstance(error, UsageError) else f"--overlap must be a number; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .tflite file from keras-pix2pix export")
    parser.add_argument("image", help="a JPEG or PNG image, any size")
    parser.add_argument("--output", required=True, help="where to save the translated PNG")
    parser.add_argument(
        "--overlap", type=_overlap, default=DEFAULT_OVERLAP, help="tile overlap, a fraction of a tile from 0 to 0.5"
    )
    arguments = parser.parse_args()
    channels = tflite_runner(arguments.model).input_shape[-1]
    image = data.read_image(arguments.image, MAX_PIXELS, channels)
    output = tflite_tiles(arguments.model, image, arguments.overlap)
    tf.io.write_file(arguments.output, tf.io.encode_png(data.denormalize(output)))


if __name__ == "__main__":
    main()
