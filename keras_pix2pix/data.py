"""tf.data pipelines: decode a pair -> split by direction -> joint jitter -> [-1, 1].

The training stream is a pure function of (seed, example index): epoch e visits the pairs in
an order drawn from (seed, e), and example k is cropped and flipped with seeds drawn from
(seed, k). A resumed run therefore starts the stream at step * batch_size and sees exactly the
pairs, crops and flips an uninterrupted run would have seen.
"""

import tensorflow as tf

from keras_pix2pix.config import (
    DIRECTIONS,
    MAX_PIXELS,
    PREPROCESS_MODES,
    UsageError,
    check_choice,
)
from keras_pix2pix.orientation import upright

# The files read as images, in folders and in archives.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


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


def decode(contents, dtype=tf.float32, channels=0):
    """The pixels of JPEG or PNG bytes, as stored (EXIF orientation not applied): the package's one decoder.

    A JPEG is decoded with libjpeg's accurate integer IDCT, as PIL decodes it, to the same pixels.
    tf.io.decode_image (and decode_jpeg's default) uses the fast one instead: on the photos of the
    shared datasets it is up to 23 levels off PIL, and on the sharp strokes of edges2shoes' edge
    maps it overflows, decoding some black pixels white and white ones black. Anything else (PNG
    of 8 or 16 bits) goes to tf.io.decode_image. Eager, in tf.data and in a SavedModel's graph alike.

    Args:
        contents: the encoded bytes (Python bytes or a string tensor).
        dtype: tf.float32 (in [0, 1]) or tf.uint8, the values tf.io.decode_image gives for each.
        channels: 0 keeps the file's channels; 1 or 3 has the decoder convert, as tf.io.decode_image's channels.

    Returns:
        A (height, width, channels) tensor of dtype.

    Example:
    >>> decode(tf.io.encode_png(tf.constant([[[0], [255]]], tf.uint8))).numpy().tolist()
    [[[0.0], [1.0]]]
    >>> decode(tf.io.encode_jpeg(tf.fill((8, 8, 1), tf.constant(200, tf.uint8))), tf.uint8)[0, 0].numpy().tolist()
    [200]
    """
    if dtype not in (tf.float32, tf.uint8):
        # convert_image_dtype scales uint8 to uint16 by 256, decode_image by 257.
        raise ValueError(f"decode gives tf.float32 or tf.uint8, not {dtype!r}")

    def jpeg():
        image = tf.io.decode_jpeg(contents, channels=channels, dct_method="INTEGER_ACCURATE")
        return tf.image.convert_image_dtype(image, dtype)  # decode_image's own conversion, bit for bit

    def other():
        return tf.io.decode_image(contents, channels=channels, dtype=dtype, expand_animations=False)

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image.set_shape([None, None, channels or None])
    return image


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BadImage(ValueError):
    """What is wrong with an image's bytes, worded to follow its file's name ("is empty")."""


def header_size(contents):
    """(height, width) of JPEG or PNG bytes, int64, read from the header without decoding.

    Works in a graph too (the serving signature checks each request with it). JPEG sizes come
    from tf.image.extract_jpeg_shape, PNG sizes from the IHDR chunk; anything else raises
    InvalidArgumentError, as decoding would.

    Example:
    >>> header_size(tf.io.encode_png(tf.zeros((3, 5, 1), tf.uint8))).numpy().tolist()
    [3, 5]
    """
    # The first 24 bytes, padded, so that a short file reads as not-a-PNG instead of failing here.
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, 24), "\0" * 24]), 0, 24)

    def png_size():
        # IHDR's width and height: two big-endian uint32 at bytes 16-23.
        fields = tf.reshape(tf.cast(tf.io.decode_raw(tf.strings.substr(head, 16, 8), tf.uint8), tf.int64), [2, 4])
        width, height = tf.unstack(tf.reduce_sum(fields * tf.constant([2**24, 2**16, 2**8, 1], tf.int64), axis=1))
        return tf.stack([height, width])

    def jpeg_size():
        return tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64)

    def neither():
        # Checked here, not left to extract_jpeg_shape: libjpeg prints its complaint to stderr.
        refusal = tf.debugging.Assert(False, ["not a JPEG or PNG image"])
        with tf.control_dependencies([refusal]):
            return tf.zeros([2], tf.int64)

    is_jpeg = tf.equal(tf.strings.substr(head, 0, 2), b"\xff\xd8")
    return tf.cond(
        tf.equal(tf.strings.substr(head, 0, 8), PNG_SIGNATURE),
        png_size,
        lambda: tf.cond(is_jpeg, jpeg_size, neither),
    )


def check_header(contents, max_pixels):
    """(height, width) of encoded image bytes, refused from the header before anything is decoded.

    Args:
        contents: the file's bytes.
        max_pixels: the largest height x width accepted.

    Raises:
        BadImage: empty, not a JPEG or PNG, or larger than max_pixels.

    Example:
    >>> check_header(tf.io.encode_png(tf.zeros((300, 400, 3), tf.uint8)).numpy(), max_pixels=100_000)
    Traceback (most recent call last):
    ...
    keras_pix2pix.data.BadImage: is 400x300 (0.12 megapixels), over the limit of 0.1 megapixels (--max-pixels raises it)
    """
    if not contents:
        raise BadImage("is empty")
    try:
        height, width = (int(side) for side in header_size(contents).numpy())
    except tf.errors.InvalidArgumentError:
        raise BadImage("is not a readable JPEG or PNG image (corrupt, truncated or another format)") from None
    if height < 1 or width < 1:  # a PNG cut short in its header
        raise BadImage("is not a readable JPEG or PNG image (corrupt, truncated or another format)")
    if height * width > max_pixels:
        raise BadImage(
            f"is {width}x{height} ({height * width / 1e6:.3g} megapixels), over the limit of "
            f"{max_pixels / 1e6:.3g} megapixels (--max-pixels raises it)"
        )
    return height, width


def decode_checked(contents, max_pixels, channels=None, dtype=tf.float32):
    """Decodes JPEG or PNG bytes after check_header, turned as their EXIF orientation says; a failure is a BadImage.

    Args:
        contents: the file's bytes.
        max_pixels: the largest height x width accepted.
        channels: None keeps the file's channels; 1 or 3 converts.
        dtype: tf.float32 (in [0, 1]) or tf.uint8 (a quarter of the memory, for checking).
    """
    check_header(contents, max_pixels)
    try:
        image = upright(decode(contents, dtype), contents)
        return image if channels is None else to_channels(image, channels)
    except tf.errors.InvalidArgumentError:
        raise BadImage("is not a readable JPEG or PNG image (corrupt, truncated or another format)") from None


def inspect_image(contents, *, ab=False, max_pixels=MAX_PIXELS):
    """(problem or None, (height, width) or None) of encoded image bytes, decoded whole so that truncation shows.

    Args:
        contents: the file's bytes.
        ab: whether it must hold a pair side by side (an even width, two halves of equal size).
        max_pixels: the largest height x width accepted, read from the header before decoding.

    Example:
    >>> inspect_image(tf.io.encode_png(tf.zeros((4, 6, 3), tf.uint8)).numpy(), ab=True)
    (None, (4, 6))
    >>> inspect_image(b"")[0]
    'is empty'
    """
    try:
        image = decode_checked(contents, max_pixels, dtype=tf.uint8)  # uint8: a quarter of float32's memory
    except BadImage as problem:
        return str(problem), None
    height, width = int(image.shape[0]), int(image.shape[1])
    if ab and (width % 2 or width < 2):
        return f"is {width}x{height}: an AB image needs an even width (two halves of equal size)", None
    return None, (height, width)


def read_image(path, max_pixels, channels=None):
    """Reads and decodes an image file (float32 in [0, 1]); one UsageError names the file and its problem.

    Args:
        path: the file (any name the file system holds, invalid UTF-8 included).
        max_pixels: the largest height x width accepted.
        channels: None keeps the file's channels; 1 or 3 converts.
    """
    try:
        with open(path, "rb") as file:
            contents = file.read()
        return decode_checked(contents, max_pixels, channels)
    except OSError as error:
        raise UsageError(f"{path} cannot be read: {error.strerror}") from None
    except BadImage as problem:
        raise UsageError(f"{path} {problem}") from None


def decode_image(contents, channels=None):
    """Decodes JPEG or PNG bytes (8 or 16 bits) to float32 in [0, 1], turned as their EXIF orientation says.

    Args:
        contents: the encoded bytes.
        channels: None keeps the file's channels; 1 or 3 converts (alpha is dropped).
    """
    image = upright(decode(contents), contents)
    return image if channels is None else to_channels(image, channels)


def split_pair(image, direction, input_channels=3, output_channels=3):
    """Splits a side-by-side AB image into (input, target) by direction.

    Args:
        image: float image (height, 2 * width, channels); channels are converted as needed.
        direction: "AtoB" (the left half is the input) or "BtoA".
        input_channels: channels of the returned input.
        output_channels: channels of the returned target.
    """
    return _by_direction(*_halves(image), direction, input_channels, output_channels)


def _halves(image):
    """(left, right) halves of a side-by-side image."""
    half = tf.shape(image)[1] // 2
    return image[:, :half], image[:, half : 2 * half]


def _by_direction(a, b, direction, input_channels, output_channels):
    """(input, target) from the A and B images, with the channels the models take."""
    check_choice("direction", direction, DIRECTIONS)
    source, target = (a, b) if direction == "AtoB" else (b, a)
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


def resize(image, size, low=0.0, high=1.0):
    """Resizes images as the paper's code does (PIL bicubic): antialiased when shrinking, clipped.

    The one resize of the package: the data pipelines, predict, evaluate and the exported serving
    graph all call it. Without antialias=True, tf.image.resize samples the image when shrinking
    and fine detail turns into false patterns (a 600 px stripe pattern shrunk to 286 keeps stripes
    of std 0.35, PIL's 0.006); with it, it filters with Keys' cubic kernel, as PIL does.

    Args:
        image: float image (height, width, channels) or batch (batch, height, width, channels).
        size: (height, width) of the result.
        low, high: the range to clip to (bicubic overshoots a little at edges): [0, 1] for
            decoded images, [-1, 1] for the generator's outputs.

    Example:
    >>> stripes = tf.tile(tf.constant([[[0.0], [1.0]]]), [600, 300, 1])  # 600x600, 1-pixel columns
    >>> round(float(tf.math.reduce_std(resize(stripes, (286, 286)))), 3) < 0.01
    True
    """
    resized = tf.image.resize(image, size, method="bicubic", antialias=True)
    return tf.clip_by_value(resized, low, high)


def decode_pair(a_bytes, b_bytes, direction, input_channels=3, output_channels=3):
    """Decodes one example of a source into (input, target) in [0, 1].

    Args:
        a_bytes: an encoded AB image, or the A image of a pair of files.
        b_bytes: the encoded B image, or "" when a_bytes holds both halves.
        direction: "AtoB" (A, the left half, is the input) or "BtoA".
        input_channels: channels of the returned input.
        output_channels: channels of the returned target.
    """
    check_choice("direction", direction, DIRECTIONS)
    a, b = tf.cond(
        tf.equal(b_bytes, ""),
        lambda: _halves(decode_image(a_bytes)),
        lambda: (decode_image(a_bytes), decode_image(b_bytes)),
    )
    return _by_direction(a, b, direction, input_channels, output_channels)


def _resize_to_cover(image, minimum):
    """Resizes up (keeping the aspect ratio) only if a side is below minimum; else returns image."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(1.0, tf.reduce_max(tf.constant(minimum, tf.float32) / size))
    covered = tf.cast(tf.math.ceil(size * scale), tf.int32)
    return tf.cond(scale > 1.0, lambda: resize(image, covered), lambda: image)


def jitter(source, target, seed, *, image_size, load_size, flip, preprocess="resize_and_crop"):
    """Training augmentation; input and target always get the same resize, crop and flip.

    Modes (junyanz's names):
    - resize_and_crop (the paper's): resize to load_size, random crop to image_size.
    - scale_width: resize to load_size's width keeping the aspect ratio, random crop.
    - crop: random crop from the original size (images smaller than image_size are scaled up).
    - none: resize to image_size, no crop.
    Stateless: the same seed gives the same result, whatever ran before.

    Args:
        source: input image in [0, 1].
        target: target image in [0, 1].
        seed: int tensor of shape (2,).
        image_size: (height, width) of the result.
        load_size: (height, width) to resize to before cropping.
        flip: whether to flip horizontally half of the time.
        preprocess: one of the modes above.
    """
    check_choice("preprocess", preprocess, PREPROCESS_MODES)
    input_channels = source.shape[-1]
    if preprocess == "resize_and_crop":
        size = tf.constant(load_size)
    elif preprocess == "scale_width":
        original = tf.cast(tf.shape(source)[:2], tf.float32)
        height = tf.cast(tf.round(original[0] * load_size[1] / original[1]), tf.int32)
        size = tf.stack([tf.maximum(height, image_size[0]), load_size[1]])
    elif preprocess == "crop":
        size = tf.shape(_resize_to_cover(source, image_size))[:2]
    else:
        size = tf.constant(image_size)
    both = tf.concat([_resize_to_fit(source, size), _resize_to_fit(target, size)], axis=-1)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    both = tf.image.stateless_random_crop(both, [*image_size, both.shape[-1]], seed=crop_seed)
    if flip:
        both = tf.image.stateless_random_flip_left_right(both, seed=flip_seed)
    return both[..., :input_channels], both[..., input_channels:]


def _resize_to_fit(image, size):
    """Resizes to size, leaving an image already of that size untouched."""
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    return tf.cond(same, lambda: image, lambda: resize(image, size))


def train_dataset(pairs, config, direction, seed, start_example=0):
    """The endless training stream of (input, target) batches in [-1, 1].

    Args:
        pairs: a source of examples (datasets.FilePairs or datasets.TfdsPairs).
        config: the run's Config (sizes, channels, preprocessing, flip, batch size).
        direction: "AtoB" or "BtoA".
        seed: the run's seed; the stream is a function of it alone.
        start_example: index of the first example, step * batch_size when resuming.

    Example:
    >>> from keras_pix2pix import config, datasets
    >>> batches = train_dataset(datasets.local_splits(pairs_folder).train, config.Config(image_size=32), "AtoB", seed=0)
    >>> [tensor.shape for tensor in next(iter(batches))]
    [TensorShape([1, 32, 32, 3]), TensorShape([1, 32, 32, 3])]
    """
    count = len(pairs)
    if count == 0:
        raise UsageError("the training split holds no images")
    start_epoch, offset = divmod(start_example, count)
    seed = tf.constant(seed, tf.int64)
    examples = tf.data.Dataset.counter(start_epoch).flat_map(lambda epoch: pairs.epoch(seed, epoch)).skip(offset)
    examples = tf.data.Dataset.zip(tf.data.Dataset.counter(start_example), examples)

    def load(example, name, a_bytes, b_bytes):
        source, target = decode_pair(a_bytes, b_bytes, direction, config.input_channels, config.output_channels)
        source, target = jitter(
            source,
            target,
            tf.stack([seed, example]),
            image_size=config.image_size,
            load_size=config.resolved_load_size,
            flip=config.flip,
            preprocess=config.preprocess,
        )
        return normalize(source), normalize(target)

    options = tf.data.Options()
    options.deterministic = True
    return (
        examples.map(lambda example, item: load(example, *item), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )


def eval_dataset(pairs, config, direction, batch_size=1):
    """(input, target) batches in [-1, 1], resized to a Config's image size, in the source's order."""
    return resized_pairs(pairs, direction, config.image_size, (config.input_channels, config.output_channels), batch_size)


def resized_pairs(pairs, direction, image_size, channels, batch_size=1):
    """(input, target) batches in [-1, 1], resized to image_size, in the source's order.

    Args:
        pairs: the pairs (see keras_pix2pix.datasets).
        direction: "AtoB" or "BtoA": which half of a pair is the input.
        image_size: (height, width) of both images, a model's size.
        channels: (input channels, target channels), 1 or 3 each.
        batch_size: pairs per batch.
    """
    if len(pairs) == 0:
        raise UsageError("the evaluation split holds no images")

    def load(name, a_bytes, b_bytes):
        source, target = decode_pair(a_bytes, b_bytes, direction, *channels)
        return normalize(resize(source, image_size)), normalize(resize(target, image_size))

    return pairs.ordered().map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)
