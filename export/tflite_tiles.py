"""Translate an image of any size with a keras-pix2pix TFLite file, in blended tiles.

    python export/tflite_tiles.py exports/facades/tflite/1/generator_float32.tflite aerial.jpg --output map.png

A TFLite file keeps the fixed input size it was exported at, so a larger image is cut into
overlapping tiles of that size, each run with LiteRT, and blended (keras_pix2pix.sizing.blend_tiles,
the tiling `predict --sizing tiles` uses), so that no seam shows. An int8 file takes and returns
float32 as the others do. Needs ai-edge-litert and keras-pix2pix.
"""

import argparse
import os

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from keras_pix2pix import data
from keras_pix2pix.config import MAX_PIXELS
from keras_pix2pix.sizing import DEFAULT_OVERLAP, blend_tiles


def tflite_tiles(model_path, image, overlap=DEFAULT_OVERLAP, threads=None):
    """Translates a float image (height, width, channels) in [0, 1] with a TFLite generator; returns [-1, 1].

    Args:
        model_path: the .tflite file (its input is (1, tile height, tile width, channels)).
        image: the decoded image, float in [0, 1], with the model's channels.
        overlap: the tiles' overlap, as a fraction of a tile.
        threads: LiteRT threads; None: every core.
    """
    interpreter = Interpreter(model_path=model_path, num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    tile_height, tile_width = source["shape"][1:3]

    def run(tile):
        interpreter.set_tensor(source["index"], np.asarray(tile, np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(result["index"])[0]

    normalized = data.normalize(tf.convert_to_tensor(image, tf.float32))
    return blend_tiles(run, normalized, (tile_height, tile_width), result["shape"][-1], overlap)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .tflite file from keras-pix2pix export")
    parser.add_argument("image", help="a JPEG or PNG image, any size")
    parser.add_argument("--output", required=True, help="where to save the translated PNG")
    parser.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP, help="tile overlap, a fraction of a tile")
    arguments = parser.parse_args()
    channels = int(Interpreter(model_path=arguments.model).get_input_details()[0]["shape"][-1])
    image = data.read_image(arguments.image, MAX_PIXELS, channels)
    output = tflite_tiles(arguments.model, image, arguments.overlap)
    tf.io.write_file(arguments.output, tf.io.encode_png(data.denormalize(output)))


if __name__ == "__main__":
    main()
