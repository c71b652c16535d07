"""Translate image files and folders with a trained generator: `keras-pix2pix predict`.

Each input is resized to the model's size, translated in a test-time mode (keras_pix2pix.modes)
and resized back to its own size.
"""

import os

import keras
import tensorflow as tf

from keras_pix2pix import data, datasets, fast
from keras_pix2pix.checkpoints import restore_generator
from keras_pix2pix.config import Config, UsageError, check_choice
from keras_pix2pix.files import write_atomically
from keras_pix2pix.modes import MODES, prepare, translate


def _load_keras_file(path):
    # Files written before the networks were stock hold keras_pix2pix's training layers
    # (registered by keras_pix2pix.fast): they load, and run in stock form.
    return fast.clone_as(keras.models.load_model(path), "keras")


def load_generator(model):
    """Loads a trained generator and its run's Config (None when there is no config.json).

    Args:
        model: a work directory (its generator.keras, or its latest checkpoint when training
            stopped before writing generator.keras) or a .keras file.

    Example:
    >>> generator, config = load_generator(workdir)
    >>> generator.input_shape, config.image_size
    ((None, 32, 32, 3), (32, 32))
    """
    if os.path.isdir(model):
        config_path = os.path.join(model, "config.json")
        config = Config.load(config_path) if os.path.exists(config_path) else None
        generator_path = os.path.join(model, "generator.keras")
        if os.path.exists(generator_path):
            return _load_keras_file(generator_path), config
        if config is not None and tf.train.latest_checkpoint(os.path.join(model, "checkpoints")):
            return restore_generator(model, config), config
        raise UsageError(f"{model} holds neither generator.keras nor a checkpoint with its config.json")
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise UsageError(f"model must be a work directory or a .keras file; got {model}")
        config_path = os.path.join(os.path.dirname(model), "config.json")
        config = Config.load(config_path) if os.path.exists(config_path) else None
        return _load_keras_file(model), config
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
        mode: "paper", "inference" or "export" (see keras_pix2pix.modes).
        seed: makes paper mode's dropout repeatable.

    Returns:
        The paths written.

    Example:
    >>> [os.path.basename(path) for path in predict(workdir, [image_file], tmp + "/translated")]
    ['1.png']
    """
    check_choice("mode", mode, MODES)
    files = _input_files(inputs)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    generator, config = load_generator(model)
    runner = prepare(generator, mode)
    if pairs and direction is None:
        direction = config.direction if config is not None and config.direction else "AtoB"
    height, width, channels = generator.input_shape[1:]
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for path in files:
        image = _read_input(path, pairs, direction, channels)
        original_size = image.shape[:2]
        output = translate(runner, data.normalize(data.resize(image, (height, width)))[None], mode)[0]
        output = data.resize(output, original_size, -1.0, 1.0)
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        destination = os.path.join(output_dir, name)
        write_atomically(destination, tf.io.encode_png(data.denormalize(output)).numpy())
        written.append(destination)
    return written
