"""keras_pix2pix.serving: the SavedModel's serving signature on an empty batch and on an image over its limit."""

import os

import keras
import pytest
import tensorflow as tf

from keras_pix2pix import exports


def test_the_serving_signature_answers_an_empty_batch_and_refuses_a_huge_image(run, tmp_path):
    generator = keras.models.load_model(os.path.join(run, "generator.keras"))
    folder = str(tmp_path / "saved_model")
    exports.write_saved_model(generator, folder, max_pixels=10_000)
    serve = tf.saved_model.load(folder).signatures["serving_default"]
    assert serve(image_bytes=tf.constant([], tf.string))["output_bytes"].shape == (0,)
    small = tf.io.encode_png(tf.zeros((50, 60, 3), tf.uint8))
    assert tf.io.decode_png(serve(image_bytes=tf.stack([small]))["output_bytes"][0]).shape == (50, 60, 3)
    large = tf.io.encode_png(tf.zeros((101, 100, 3), tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"larger than the limit of 10000 pixels"):
        serve(image_bytes=tf.stack([small, large]))
