"""EXIF orientation (issue 28, item 9e): a photo is trained on, translated and scored as it is displayed.

Each case compares with PIL's ImageOps.exif_transpose, pixel for pixel: the package decodes a JPEG
as PIL does (data.decode).
"""

import io
import os
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from keras_pix2pix import data, datasets, orientation
from keras_pix2pix.evaluation import evaluate
from keras_pix2pix.translation import predict


def _stored(height=24, width=40):
    """A smooth pattern that no flip, turn or transposition maps onto itself, as stored in the file."""
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack([rows * 9, columns * 5, rows * 3 + columns * 2], -1).astype(np.uint8)


def _exif_first(jpeg, value):
    """The JPEG with its JFIF segment replaced by a little-endian Exif segment, first, as phones write it."""
    assert jpeg[2:4] == b"\xff\xe0"
    rest = jpeg[4 + struct.unpack(">H", jpeg[4:6])[0] :]
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, value, 0)
    body = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", 2 + len(body)) + body + rest


def oriented_jpeg(value, layout="jfif", image=None):
    """JPEG bytes of the pattern with EXIF orientation `value`: PIL's layout (JFIF, then big-endian Exif) or a phone's."""
    buffer = io.BytesIO()
    pattern = Image.fromarray(_stored() if image is None else image)
    if layout == "jfif":
        exif = Image.Exif()
        exif[0x0112] = value
        pattern.save(buffer, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        return buffer.getvalue()
    pattern.save(buffer, "JPEG", quality=95, subsampling=0)
    return _exif_first(buffer.getvalue(), value)


def as_displayed(contents):
    """What PIL shows for the bytes: ImageOps.exif_transpose of the decoded image."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(contents))).convert("RGB"))


def assert_same(decoded, expected):
    decoded = np.asarray(decoded, np.int64)
    assert decoded.shape == expected.shape
    assert np.array_equal(decoded, expected), np.abs(decoded - expected).max()


def test_the_pattern_tells_every_orientation_apart():
    # Else a wrong turn could give the same pixels.
    shown = [as_displayed(oriented_jpeg(value)) for value in range(1, 9)]
    for first in range(8):
        for second in range(first + 1, 8):
            if shown[first].shape == shown[second].shape:
                assert np.abs(shown[first].astype(int) - shown[second]).mean() > 20


@pytest.mark.parametrize("layout", ["jfif", "phone"])
@pytest.mark.parametrize("value", range(1, 9))
def test_each_orientation_decodes_as_pil_displays_it(value, layout):
    contents = oriented_jpeg(value, layout)
    assert int(orientation.exif_orientation(contents)) == value
    expected = as_displayed(contents)
    # Eagerly (predict and evaluate read files so), and in a graph (the tf.data pipelines).
    assert_same(data.decode_checked(contents, 10**6, dtype=tf.uint8), expected)
    decoded = tf.function(data.decode_image)(tf.constant(contents))
    assert_same(np.round(decoded.numpy() * 255), expected)


def test_images_without_the_tag_are_left_as_decoded():
    plain = tf.io.encode_jpeg(_stored()).numpy()
    image = tf.io.decode_image(plain)
    assert orientation.upright(image, plain) is image  # no call into TensorFlow for them
    assert int(orientation.exif_orientation(tf.io.encode_png(_stored()))) == 1
    assert int(orientation.exif_orientation(b"\xff\xd8\xff\xe1\x00\x08Exif\0\0")) == 1  # Exif data cut short


def test_the_training_pipeline_decodes_pairs_as_displayed(tmp_path):
    # An AB pair image stored turned: its halves are the displayed image's.
    paths = []
    for value in (3, 6, 8):
        path = tmp_path / f"{value}.jpg"
        path.write_bytes(oriented_jpeg(value, "phone"))
        paths.append(str(path))
    pairs = datasets.FilePairs(tuple(paths), ("",) * len(paths))
    decoded = pairs.ordered().map(lambda name, a, b: data.decode_pair(a, b, "AtoB"))
    for path, (source, target) in zip(paths, decoded):
        with open(path, "rb") as file:
            expected = as_displayed(file.read())
        half = expected.shape[1] // 2
        assert_same(np.round(source.numpy() * 255), expected[:, :half])
        assert_same(np.round(target.numpy() * 255), expected[:, half:])


def test_predict_and_evaluate_see_photos_as_displayed(tmp_path, identity_model):
    inputs, shown = tmp_path / "photos", tmp_path / "shown"
    inputs.mkdir()
    shown.mkdir()
    for value in range(2, 9):
        contents = oriented_jpeg(value, "phone" if value % 2 else "jfif")
        (inputs / f"{value}.jpg").write_bytes(contents)
        Image.fromarray(as_displayed(contents)).save(shown / f"{value}.png")
    written = predict(identity_model, [str(inputs)], str(tmp_path / "out"), mode="inference", sizing="native", verbose=False)
    for path in written:
        name = os.path.splitext(os.path.basename(path))[0]
        assert_same(np.asarray(Image.open(path)), np.asarray(Image.open(shown / f"{name}.png")))
    # The displayed images scored against the photos as targets: the same images, to float rounding in the metric.
    summary = evaluate(predictions=str(shown), targets=str(inputs), output_dir=str(tmp_path / "report"), verbose=False)
    assert summary["pairs"] == 7 and summary["l1_255"] < 1e-3
