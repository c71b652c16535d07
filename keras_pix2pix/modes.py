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

An image translated in tiles (keras_pix2pix.sizing) is one test image: in paper mode its tiles
share its statistics, pooled over the tiles by `paper_statistics` and applied to each tile by
`translate_with_statistics`, so that a tile of sky and one of sky and wall are normalized alike.
"""

import contextlib
import weakref

import keras
import tensorflow as tf

from keras_pix2pix.config import check_choice
from keras_pix2pix.fast import clone_with
from keras_pix2pix.options import MODES


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
    # A graph, traced once per generator and image size: calling the model eagerly in training
    # mode measured about half as fast again (bench/README.md).
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


def batch_normalizations(model):
    """The model's BatchNormalization layers, in the order of model.layers."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


class _MovingStatistics(keras.layers.Layer):
    """Runs a BatchNormalization on its moving statistics whatever `training` says, while dropout follows it."""

    def __init__(self, normalization):
        super().__init__(name=f"{normalization.name}_fixed", dtype=normalization.dtype_policy)
        self.normalization = normalization

    def call(self, inputs, mask=None):
        # The generator's graph records BatchNorm's mask argument; there is none in an image.
        return self.normalization(inputs, training=False)


# generator -> (its statistics form, its fixed-statistics form): built once, sharing its layers and weights.
_FORMS = weakref.WeakKeyDictionary()


def _weighted_moments(features, weights, image_height):
    """The weighted mean and variance per channel of features (1, h, w, c), the weights (1, H, W, 1) averaged to h x w."""
    features = keras.ops.cast(features, "float32")
    factor = image_height // features.shape[1]
    if factor > 1:
        weights = keras.ops.average_pool(weights, factor, factor)
    total = keras.ops.maximum(keras.ops.sum(weights), 1e-12)
    mean = keras.ops.sum(features * weights, axis=(0, 1, 2)) / total
    return mean, keras.ops.sum(keras.ops.square(features - mean) * weights, axis=(0, 1, 2)) / total


def _statistics_forms(generator):
    if generator not in _FORMS:
        normalizations = batch_normalizations(generator)
        weights = keras.Input((*generator.input_shape[1:3], 1), name="pixel_weights")
        moments = []
        for layer in normalizations:
            # The input of the layer's first call: the generator's own graph.
            moments += _weighted_moments(layer._inbound_nodes[0].input_tensors[0], weights, generator.input_shape[1])
        statistics_form = keras.Model([*generator.inputs, weights], moments)
        replace = {id(layer): _MovingStatistics(layer) for layer in normalizations}
        fixed_form = keras.models.clone_model(generator, clone_function=lambda layer: replace.get(id(layer), layer))
        _FORMS[generator] = statistics_form, fixed_form
    return _FORMS[generator]


@tf.function(reduce_retracing=True)
def _statistics_pass(statistics_form, image, weights):
    return statistics_form([image, weights], training=True)


def paper_statistics(generator, image, weights=None):
    """Each BatchNorm's mean and variance over one image in paper mode: what a tile adds to its image's statistics.

    Args:
        generator: a model from build_generator (or generator.keras).
        image: float tensor (1, height, width, channels) in [-1, 1] at the model's size.
        weights: None, or float (height, width): how much each pixel counts (a tile's share of
            each pixel in a blend), averaged down to each layer's size.

    Returns:
        A list of float32 numpy arrays: the mean and the variance of each BatchNorm's input, per
        channel, in the order of batch_normalizations(generator).

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=32, filters=4)
    >>> statistics = paper_statistics(generator, tf.zeros((1, 32, 32, 3)))
    >>> len(statistics) == 2 * len(batch_normalizations(generator)), statistics[0].shape
    (True, (8,))
    """
    statistics_form = _statistics_forms(generator)[0]
    weights = tf.reshape(tf.ones(image.shape[1:3]) if weights is None else weights, [1, *image.shape[1:3], 1])
    with unchanged(generator, random_states=False):
        return [value.numpy() for value in _statistics_pass(statistics_form, image, weights)]


def translate_with_statistics(generator, images, statistics):
    """Paper mode (dropout on) with each BatchNorm normalizing by the statistics given, not the batch's own.

    Args:
        generator: a model from build_generator (or generator.keras).
        images: float tensor (1, height, width, channels) in [-1, 1] at the model's size.
        statistics: [mean, variance] per BatchNorm, as paper_statistics returns them (or pooled
            over the tiles of an image).

    Returns:
        float32 tensor of the generated images in [-1, 1].

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> generator = build_generator(image_size=32, filters=4, dropout=0)
    >>> image = tf.random.uniform((1, 32, 32, 3), -1, 1)
    >>> own = translate_with_statistics(generator, image, paper_statistics(generator, image))
    >>> float(tf.reduce_max(tf.abs(own - translate(generator, image)))) < 1e-4
    True
    """
    fixed_form = _statistics_forms(generator)[1]
    with unchanged(generator, random_states=False):
        for layer, mean, variance in zip(batch_normalizations(generator), statistics[0::2], statistics[1::2]):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        return _paper_pass(fixed_form, images)
