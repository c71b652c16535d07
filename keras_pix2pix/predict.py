"""Translate images with a trained generator: `keras-pix2pix predict`.

Two test-time modes:
- "paper" (default): as the paper tests (section 3.3 and junyanz's test.py): dropout stays on
  and BatchNorm normalizes with the statistics of the test image itself, one image per batch.
  Outputs vary a little from call to call (pass a seed to fix them).
- "inference": the conventional Keras inference: no dropout, BatchNorm's moving statistics.
  Deterministic, and what a batch of images gets independently of its other members.
"""

import os

import keras
import tensorflow as tf

from keras_pix2pix import data, datasets
from keras_pix2pix.config import Config, UsageError

MODES = ("paper", "inference")


def _check_mode(mode):
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")


def _moving_statistics(model):
    return [
        variable
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]


@tf.function(reduce_retracing=True)
def _paper_pass(generator, image):
    # A graph, traced once per generator and image size: at 256x256 it took 122 ms an image
    # on the 2-core CPU of bench/README.md, against 188 ms calling the model eagerly.
    return tf.cast(generator(image, training=True), tf.float32)


def translate(generator, images, mode="paper"):
    """Runs the generator on a batch of images in [-1, 1] in the given test-time mode.

    Args:
        generator: a model from build_generator (or generator.keras).
        images: float tensor (batch, height, width, channels) in [-1, 1] at the model's size.
        mode: "paper" (dropout on, per-image BatchNorm statistics, as the paper tests) or
            "inference" (no dropout, moving statistics).

    Returns:
        float32 tensor of the generated images in [-1, 1].

    Example:
    >>> generator = build_generator(image_size=64, filters=8)  # doctest: +SKIP
    >>> translate(generator, tf.zeros((2, 64, 64, 3)), mode="inference").shape  # doctest: +SKIP
    TensorShape([2, 64, 64, 3])
    """
    _check_mode(mode)
    if mode == "inference":
        return tf.cast(generator(images, training=False), tf.float32)
    # training=True turns dropout on and makes BatchNorm use the batch's own statistics. It also
    # moves the moving statistics, which inference mode relies on: put them back afterwards.
    moving = _moving_statistics(generator)
    saved = [tf.identity(variable.value) for variable in moving]
    outputs = [_paper_pass(generator, images[index : index + 1]) for index in range(images.shape[0])]
    for variable, value in zip(moving, saved):
        variable.assign(value)
    return tf.concat(outputs, axis=0)


def load_generator(model):
    """Loads a trained generator and its run's Config (None when there is no config.json).

    Args:
        model: a work directory (its generator.keras, or its latest checkpoint when training
            stopped before writing generator.keras) or a .keras file.

    Example:
    >>> generator, config = load_generator("runs/demo")  # doctest: +SKIP
    """
    if os.path.isdir(model):
        config_path = os.path.join(model, "config.json")
        config = Config.load(config_path) if os.path.exists(config_path) else None
        generator_path = os.path.join(model, "generator.keras")
        if os.path.exists(generator_path):
            return keras.models.load_model(generator_path), config
        if config is not None and tf.train.latest_checkpoint(os.path.join(model, "checkpoints")):
            # Imported here: train imports this module for its samples.
            from keras_pix2pix.train import restore_generator

            return restore_generator(model, config), config
        raise UsageError(f"{model} holds neither generator.keras nor a checkpoint with its config.json")
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise UsageError(f"model must be a work directory or a .keras file; got {model}")
        config_path = os.path.join(os.path.dirname(model), "config.json")
        config = Config.load(config_path) if os.path.exists(config_path) else None
        return keras.models.load_model(model), config
    raise UsageError(f"model {model} does not exist")


def _input_files(inputs):
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = datasets.list_images(item)
            if not found:
                raise UsageError(f"no images ({', '.join(datasets.IMAGE_EXTENSIONS)}) in {item}")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise UsageError(f"input {item} does not exist")
    if not files:
        raise UsageError("no input images given")
    return files


def _read_input(path, pairs, direction, channels):
    """An input image in [0, 1] with the model's channels: the whole file, or its input half."""
    try:
        image = data.decode_image(tf.io.read_file(path))
    except tf.errors.InvalidArgumentError:
        raise UsageError(f"{path} is not a readable JPEG or PNG image") from None
    if pairs:
        return data.split_pair(image, direction, channels, channels)[0]
    return data.to_channels(image, channels)


def predict(model, inputs, output_dir, *, pairs=False, direction=None, mode="paper", seed=None):
    """Translates image files and folders, writing one PNG per input into output_dir.

    Each output has the size of its input: the input is resized to the model's size and the
    output resized back.

    Args:
        model: a work directory or a .keras file (see load_generator).
        inputs: image files and folders of images.
        output_dir: where to write NAME.png for each input NAME.
        pairs: the inputs are AB pair images: translate their input half.
        direction: which half is the input with pairs; None takes the run's direction.
        mode: "paper" or "inference" (see translate).
        seed: makes paper mode's dropout repeatable.

    Returns:
        The paths written.

    Example:
    >>> predict("runs/demo", ["labels.png"], "translated")  # doctest: +SKIP
    ['translated/labels.png']
    """
    _check_mode(mode)
    files = _input_files(inputs)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    generator, config = load_generator(model)
    if pairs and direction is None:
        direction = config.direction if config is not None and config.direction else "AtoB"
    height, width, channels = generator.input_shape[1:]
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in files:
        image = _read_input(path, pairs, direction, channels)
        original_size = image.shape[:2]
        output = translate(generator, data.normalize(data.resize(image, (height, width)))[None], mode)[0]
        output = data.resize(output, original_size, -1.0, 1.0)
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        destination = os.path.join(output_dir, name)
        tf.io.write_file(destination, tf.io.encode_png(data.denormalize(output)))
        written.append(destination)
    return written
