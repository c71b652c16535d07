"""predict and evaluate seed themselves alone: the caller's Python, NumPy, TensorFlow and Keras random sequences go on."""

import random

import keras
import numpy as np
import tensorflow as tf
from conftest import png

import keras_pix2pix


def _draws():
    return (
        random.random(),
        float(np.random.random()),
        float(tf.random.uniform([])),
        float(keras.random.uniform([])),
        float(tf.random.get_global_generator().normal([])),
    )


def _sequence(call=None):
    """Draws of every global generator after seeding them, with call() (or nothing) between the draws."""
    keras.utils.set_random_seed(5)
    tf.random.get_global_generator().reset_from_seed(3)
    first = _draws()
    if call is not None:
        call()
    return first + _draws() + _draws()


def test_evaluate_and_predict_leave_the_callers_random_states(trained, tmp_path):
    _, workdir = trained
    image = png(tmp_path / "input.png", 32, 32)
    untouched = _sequence()
    summaries = []

    def evaluate():
        summaries.append(keras_pix2pix.evaluate(workdir, str(tmp_path / f"report{len(summaries)}"), split="val",
                                                verbose=False))

    assert _sequence(evaluate) == untouched
    assert _sequence(lambda: keras_pix2pix.predict(workdir, [image], str(tmp_path / "seeded"), seed=7)) == untouched
    assert _sequence(lambda: keras_pix2pix.predict(workdir, [image], str(tmp_path / "unseeded"))) == untouched
    # The same seed, whatever the caller's states were: the same scores.
    random.seed(11)
    np.random.seed(12)
    evaluate()
    assert summaries[0] == summaries[1]
