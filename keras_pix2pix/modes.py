"""Test-time modes: how a trained generator is run to translate images.

- "paper" (the default of predict and evaluate): as the paper tests (section 3.3 and junyanz's
  test.py): dropout stays on and BatchNorm normalizes with the statistics of the test image
  itself, one image per batch. Outputs vary a little from call to call (a seed fixes them).
- "inference": the conventional Keras inference: no dropout, BatchNorm's moving statistics.
  Deterministic, and what a batch of images gets independently of its other members.
- "export": the paper's per-image statistics made deterministic: each BatchNorm becomes a
  per-image normalization with its scale and offset (GroupNormalization with one group per
  channel), dropout is off. Random dropout cannot go into a built-in-ops TFLite file and would
  make served answers vary; this is what the SavedModel and the TFLite files compute.

Paper mode calls the generator with training=True, which also moves BatchNorm's moving statistics
and the dropout layers' random states; `unchanged` puts them back.
"""

import contextlib

import keras
import tensorflow as tf

from keras_pix2pix.config import MODES, check_choice
from keras_pix2pix.fast import clone_with


def moving_statistics(model):
    """BatchNorm's moving means and variances, which a training=True call updates."""
    return [
        variable
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]


def dropout_states(model):
    """The random states of the model's dropout layers, which tf.train.Checkpoint misses alone."""
    return [layer.seed_generator.state for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


@contextlib.contextmanager
def unchanged(model, *, random_states=True):
    """Puts back, on exit, everything a training=True call of the model moves.

    Args:
        model: a Keras model.
        random_states: also put back the dropout layers' random states (training's sample grids
            must not shift the training stream); False lets successive calls draw new masks.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=32, filters=4)
    >>> before = [variable.numpy().copy() for variable in moving_statistics(generator)]
    >>> with unchanged(generator):
    ...     _ = generator(tf.random.normal((1, 32, 32, 3)), training=True)
    >>> all((before_value == variable.numpy()).all() for before_value, variable in zip(before, moving_statistics(generator)))
    True
    """
    variables = moving_statistics(model) + (dropout_states(model) if random_states else [])
    saved = [tf.identity(variable.value) for variable in variables]
    try:
        yield model
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def export_form(generator):
    """The generator in export mode: per-image normalization statistics, no dropout; stock layers.

    Args:
        generator: a model from build_generator (or generator.keras).

    Returns:
        A keras.Model with the same weights whose inference call (training=False) gives the
        paper's test-time output without dropout; the generator itself if it is in that form.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> exported = export_form(build_generator(image_size=32, filters=4))
    >>> sorted({type(layer).__name__ for layer in exported.layers} & {"BatchNormalization", "Dropout", "GroupNormalization"})
    ['GroupNormalization']
    """

    def replace(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            # BatchNorm at batch size 1 in training mode: each image's own statistics, then
            # BatchNorm's scale and offset (its first two weights).
            return keras.layers.GroupNormalization(
                groups=-1, epsilon=layer.epsilon, name=layer.name, dtype=layer.dtype_policy.name
            )
        if isinstance(layer, keras.layers.Dropout):
            return keras.layers.Identity(name=layer.name, dtype=layer.dtype_policy.name)
        return None

    return clone_with(generator, replace)


def prepare(generator, mode):
    """The model that runs `mode`: the export form for "export", else the generator itself."""
    check_choice("mode", mode, MODES)
    return export_form(generator) if mode == "export" else generator


@tf.function(reduce_retracing=True)
def _paper_pass(generator, image):
    # A graph, traced once per generator and image size: at 256x256 it took 122 ms an image
    # on the 2-core CPU of bench/README.md, against 188 ms calling the model eagerly.
    return tf.cast(generator(image, training=True), tf.float32)


def translate(generator, images, mode="paper"):
    """Runs the generator on a batch of images in [-1, 1] in the given test-time mode.

    Args:
        generator: a model from build_generator (or generator.keras); for "export", its
            export form (prepare(generator, "export")) saves converting it on every call.
        images: float tensor (batch, height, width, channels) in [-1, 1] at the model's size.
        mode: "paper", "inference" or "export" (see the module docstring).

    Returns:
        float32 tensor of the generated images in [-1, 1].

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=32, filters=4)
    >>> translate(generator, tf.zeros((2, 32, 32, 3)), mode="inference").shape
    TensorShape([2, 32, 32, 3])
    """
    model = prepare(generator, mode)
    if mode != "paper":
        return tf.cast(model(images, training=False), tf.float32)
    with unchanged(model, random_states=False):
        outputs = [_paper_pass(model, images[index : index + 1]) for index in range(images.shape[0])]
    return tf.concat(outputs, axis=0)
