"""EXIF orientation: a JPEG is turned as its orientation tag says, the way it is displayed.

Phones and cameras store a JPEG as the sensor read it and record in its Exif data (tag 0x0112 of
the APP1 segment) how to turn it for display. A decoder that ignores the tag trains and
translates such photos sideways or upside down. keras_pix2pix.data's decoders turn each image
with `upright`, as PIL's ImageOps.exif_transpose does.

The tag is read with TensorFlow ops, so that it works eagerly (predict, evaluate) and inside
tf.data alike: a JPEG without Exif data costs a few string comparisons, one with Exif data a few
small reads more, and only an image whose tag is other than 1 (as stored) is transformed.
"""

import tensorflow as tf

# The segments walked to the Exif segment (see exif_orientation: it is first or second).
SEGMENTS = 2
# The entries of the first image directory read: cameras write 10 to 30.
ENTRIES = 64
ORIENTATION_TAG = 0x0112
EXIF_SIGNATURE = (0x45, 0x78, 0x69, 0x66, 0, 0)  # "Exif\0\0", the start of an Exif APP1 segment's body
# Where the signature stands when Exif data comes right after the start of the image (the Exif
# standard's place), or after a JFIF segment of the usual 16 bytes.
EXIF_PLACES = (6, 24)


def _bytes_at(contents, position, size):
    """`size` bytes of contents from position, as int64 (0 past the end)."""
    position = tf.cast(tf.clip_by_value(position, 0, tf.cast(tf.strings.length(contents), tf.int64)), tf.int32)
    piece = tf.io.decode_raw(tf.strings.substr(contents, position, size), tf.uint8)
    return tf.cast(tf.reshape(tf.pad(piece, [[0, size - tf.shape(piece)[0]]]), [size]), tf.int64)


def _number(pieces, little_endian):
    """Unsigned integers from their bytes (pieces[..., i] the i-th byte) in the file's byte order."""
    size = pieces.shape[-1]
    big = sum(pieces[..., index] * 256 ** (size - 1 - index) for index in range(size))
    little = sum(pieces[..., index] * 256**index for index in range(size))
    return tf.where(little_endian, little, big)


def _exif_start(contents):
    """Where the TIFF header of a JPEG's Exif segment starts, or -1 when none of its first segments is one."""
    big_endian = tf.constant(False)
    position, found, walking = tf.constant(2, tf.int64), tf.constant(-1, tf.int64), tf.constant(True)
    for _ in range(SEGMENTS):
        # A segment: its marker (0xFFxx), its length (the marker's 2 bytes excluded), its body.
        segment = _bytes_at(contents, position, 10)
        marker, length = _number(segment[:2], big_endian), _number(segment[2:4], big_endian)
        walking = walking & (marker // 256 == 0xFF) & (marker != 0xFFDA)  # 0xFFDA: the image data begins
        is_exif = walking & (marker == 0xFFE1) & tf.reduce_all(segment[4:] == tf.constant(EXIF_SIGNATURE, tf.int64))
        found = tf.where(is_exif & (found < 0), position + 10, found)
        position = position + 2 + length
    return found


def _orientation_at(contents, tiff):
    """The orientation tag's value in the first image directory of the TIFF data at `tiff`, or 1."""
    header = _bytes_at(contents, tiff, 8)
    byte_order = _number(header[:2], tf.constant(False))
    little_endian = byte_order == 0x4949  # "II"; "MM" is big-endian
    directory = tiff + _number(header[4:8], little_endian)
    # A count, then entries of 12 bytes: tag (2), type (2), count (4), a short value in the next 2.
    table = _bytes_at(contents, directory, 2 + 12 * ENTRIES)
    entries = tf.reshape(table[2:], [ENTRIES, 12])
    present = tf.range(ENTRIES, dtype=tf.int64) < _number(table[:2], little_endian)
    matches = present & (_number(entries[:, :2], little_endian) == ORIENTATION_TAG)
    value = tf.reduce_max(tf.where(matches, _number(entries[:, 8:10], little_endian), 0))
    valid = (little_endian | (byte_order == 0x4D4D)) & (value >= 1) & (value <= 8)
    return tf.where(valid, tf.cast(value, tf.int32), 1)


@tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
def exif_orientation(contents):
    """The EXIF orientation (1 to 8) of encoded image bytes: 1 (as stored) for a PNG or a JPEG without the tag.

    Exif data is looked for only where it stands in the files of phones and cameras (EXIF_PLACES).
    Elsewhere it is not seen, and the image is taken as stored: the price of a test that costs
    any other JPEG a few string comparisons.

    Example:
    >>> int(exif_orientation(tf.io.encode_jpeg(tf.zeros((4, 6, 3), tf.uint8))))
    1
    """
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, 30), "\0" * 30]), 0, 30)
    signature = bytes(EXIF_SIGNATURE)
    places = [tf.equal(tf.strings.substr(head, place, len(signature)), signature) for place in EXIF_PLACES]
    likely = tf.logical_and(tf.equal(tf.strings.substr(head, 0, 2), b"\xff\xd8"), tf.reduce_any(tf.stack(places)))
    tiff = tf.cond(likely, lambda: _exif_start(contents), lambda: tf.constant(-1, tf.int64))
    return tf.cond(tiff >= 0, lambda: _orientation_at(contents, tiff), lambda: tf.constant(1))


def _may_have_exif(contents):
    """exif_orientation's first test, on Python bytes."""
    signature = bytes(EXIF_SIGNATURE)
    return contents[:2] == b"\xff\xd8" and any(contents[place : place + 6] == signature for place in EXIF_PLACES)


def _transposed(image):
    return tf.transpose(image, [1, 0, 2])


# How each orientation is undone, as PIL's ImageOps.exif_transpose: 2 mirrored, 3 rotated 180
# degrees, 4 flipped, 5 transposed, 6 rotated 90 clockwise, 7 transversed, 8 rotated 90
# counter-clockwise.
_UNDO = (
    lambda image: image,
    lambda image: tf.reverse(image, [1]),
    lambda image: tf.reverse(image, [0, 1]),
    lambda image: tf.reverse(image, [0]),
    _transposed,
    lambda image: tf.reverse(_transposed(image), [1]),
    lambda image: tf.reverse(_transposed(image), [0, 1]),
    lambda image: tf.reverse(_transposed(image), [0]),
)


def upright(image, contents):
    """A decoded image (height, width, channels) turned as its encoded bytes' EXIF orientation says.

    Args:
        image: the image data.decode gave for contents.
        contents: the encoded bytes.

    Returns:
        The image as it is displayed; the same tensor when the orientation is 1.
    """
    if isinstance(contents, bytes) and not _may_have_exif(contents):
        return image  # an eager caller's common case, without a call into TensorFlow
    orientation = exif_orientation(contents)
    branches = [lambda undo=undo: undo(image) for undo in _UNDO]
    return tf.switch_case(orientation - 1, branches)
