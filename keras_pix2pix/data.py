"""tf.data pipelines: decode an AB pair -> split by direction -> joint jitter -> [-1, 1].

The training stream is a pure function of (seed, example index): epoch e visits the files in
a permutation drawn from (seed, e), and example k is cropped and flipped with seeds drawn from
(seed, k). A resumed run therefore starts the stream at step * batch_size and sees exactly the
pairs, crops and flips an uninterrupted run would have seen.
"""

import tensorflow as tf

from keras_pix2pix.config import DIRECTIONS, UsageError


def to_channels(image, channels):
    """Converts a decoded image with 1 to 4 channels to `channels` (1 or 3)."""
    have = tf.shape(image)[-1]
    # Grayscale + alpha and RGBA: drop the alpha channel.
    image = tf.cond(have == 2, lambda: image[..., :1], lambda: image)
    image = tf.cond(have == 4, lambda: image[..., :3], lambda: image)
    have = tf.shape(image)[-1]
    if channels == 3:
        image = tf.cond(have == 1, lambda: tf.image.grayscale_to_rgb(image), lambda: image)
    else:
        image = tf.cond(have == 3, lambda: tf.image.rgb_to_grayscale(image), lambda: image)
    image.set_shape([None, None, channels])
    return image


def decode_image(contents, channels=None):
    """Decodes JPEG or PNG bytes (8 or 16 bits) to float32 in [0, 1].

    Args:
        contents: the encoded bytes.
        channels: None keeps the file's channels; 1 or 3 converts (alpha is dropped).
    """
    image = tf.io.decode_image(contents, channels=0, dtype=tf.float32, expand_animations=False)
    image.set_shape([None, None, None])
    return image if channels is None else to_channels(image, channels)


def split_pair(image, direction, input_channels=3, output_channels=3):
    """Splits a side-by-side AB image into (input, target) by direction.

    Args:
        image: float image (height, 2 * width, channels); channels are converted as needed.
        direction: "AtoB" (the left half is the input) or "BtoA".
        input_channels: channels of the returned input.
        output_channels: channels of the returned target.
    """
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    half = tf.shape(image)[1] // 2
    left, right = image[:, :half], image[:, half : 2 * half]
    source, target = (left, right) if direction == "AtoB" else (right, left)
    return to_channels(source, input_channels), to_channels(target, output_channels)


def normalize(image):
    """[0, 1] -> [-1, 1], the range of the generator's tanh."""
    return image * 2.0 - 1.0


def denormalize(image):
    """[-1, 1] float -> uint8 [0, 255], for writing images.

    Example:
    >>> denormalize(tf.constant([-1.0, 0.0, 1.0])).numpy().tolist()
    [0, 128, 255]
    """
    return tf.cast(tf.round(tf.clip_by_value((image + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def _resize(image, size):
    # Bicubic as the paper's code; it overshoots a little, so clip back into [0, 1].
    return tf.clip_by_value(tf.image.resize(image, size, method="bicubic"), 0.0, 1.0)


def jitter(source, target, seed, image_size, load_size, flip):
    """The paper's augmentation: resize to load_size, random crop to image_size, random flip.

    Input and target get the same crop and the same flip. Stateless: the same seed gives the
    same result, whatever ran before.

    Args:
        source: input image in [0, 1].
        target: target image in [0, 1].
        seed: int tensor of shape (2,).
        image_size: (height, width) of the crop.
        load_size: (height, width) to resize to first.
        flip: whether to flip horizontally half of the time.
    """
    input_channels = source.shape[-1]
    both = tf.concat([_resize(source, load_size), _resize(target, load_size)], axis=-1)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    both = tf.image.stateless_random_crop(both, [*image_size, both.shape[-1]], seed=crop_seed)
    if flip:
        both = tf.image.stateless_random_flip_left_right(both, seed=flip_seed)
    return both[..., :input_channels], both[..., input_channels:]


def load_pair(path, direction, input_channels=3, output_channels=3):
    """Reads an AB image file and returns (input, target) in [0, 1]."""
    # Keep the file's own channels: split_pair converts each half to what the model needs.
    return split_pair(decode_image(tf.io.read_file(path)), direction, input_channels, output_channels)


def train_dataset(files, config, direction, seed, start_example=0):
    """The endless training stream of (input, target) batches in [-1, 1].

    Args:
        files: paths of AB images.
        config: the run's Config (sizes, channels, flip, batch size).
        direction: "AtoB" or "BtoA".
        seed: the run's seed; the stream is a function of it alone.
        start_example: index of the first example, step * batch_size when resuming.

    Example:
    >>> batches = train_dataset(["a.png"], Config(image_size=64), "AtoB", seed=0)  # doctest: +SKIP
    """
    count = len(files)
    if count == 0:
        raise UsageError("the training split holds no images")
    paths = tf.constant(files)
    start_epoch, offset = divmod(start_example, count)

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    indices = tf.data.Dataset.counter(start_epoch).flat_map(epoch_order).skip(offset)
    examples = tf.data.Dataset.zip(tf.data.Dataset.counter(start_example), indices)

    def load(example, index):
        source, target = load_pair(paths[index], direction, config.input_channels, config.output_channels)
        source, target = jitter(
            source,
            target,
            tf.stack([tf.cast(seed, tf.int64), example]),
            config.image_size,
            config.load_size,
            config.flip,
        )
        return normalize(source), normalize(target)

    options = tf.data.Options()
    options.deterministic = True
    return (
        examples.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )


def eval_dataset(files, config, direction, batch_size=1):
    """(input, target) batches in [-1, 1], resized to the image size, in file order."""
    if not files:
        raise UsageError("the evaluation split holds no images")

    def load(path):
        source, target = load_pair(path, direction, config.input_channels, config.output_channels)
        return normalize(_resize(source, config.image_size)), normalize(_resize(target, config.image_size))

    return (
        tf.data.Dataset.from_tensor_slices(tf.constant(files))
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
