"""JPEG decoding: every path of the package (predict's and evaluate's reads, the tf.data pipelines,
the SavedModel's bytes signatures) gives PIL's pixels for a JPEG, to the level."""

import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SHARED_DATA
from PIL import Image

from keras_pix2pix import data, datasets
from keras_pix2pix.config import MAX_PIXELS
from keras_pix2pix.exports import write_saved_model

# A handful of the real files: photos with their label maps, and edge maps, whose sharp black
# and white strokes the fast IDCT decodes worst.
SHARED_FILES = {"facades/val": 2, "cityscapes/train": 1, "edges2shoes/train": 2}


def _identity_saved_model(folder, channels):
    """The bytes signatures of a SavedModel whose "generator" hands its input back: what it returns is what it decoded."""
    identity = keras.Sequential([keras.Input((32, 32, channels)), keras.layers.Identity()], name="identity")
    write_saved_model(identity, str(folder))
    return tf.saved_model.load(str(folder)).signatures["translate_bytes"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """{channels: the translate_bytes signature of an identity SavedModel taking that many channels}."""
    folder = tmp_path_factory.mktemp("saved_models")
    return {channels: _identity_saved_model(folder / str(channels), channels) for channels in (1, 3)}


def _as_pil(contents):
    """PIL's pixels of encoded bytes, (height, width, channels) uint8."""
    image = Image.open(io.BytesIO(contents))
    pixels = np.asarray(image.convert("L" if image.mode == "L" else "RGB"))
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _through_each_path(path, serve):
    """{path of the package: its uint8 pixels of the image file at path}; serve takes the file's channels."""
    with open(path, "rb") as file:
        contents = file.read()
    channels = _as_pil(contents).shape[-1]
    found = {
        "decode_checked uint8 (checking)": data.decode_checked(contents, MAX_PIXELS, dtype=tf.uint8).numpy(),
        "read_image float32 (predict, evaluate)": np.round(data.read_image(path, MAX_PIXELS).numpy() * 255),
    }
    # The training and evaluation pipelines' decoding, in tf.data: the two halves of an AB image.
    pairs = datasets.FilePairs((path,), ("",)).ordered()
    [(source, target)] = pairs.map(lambda name, a, b: data.decode_pair(a, b, "AtoB", channels, channels))
    found["decode_pair in tf.data (fit, evaluate)"] = np.round(np.concatenate([source, target], axis=1) * 255)
    output = serve(image_bytes=tf.constant([contents]), sizing=tf.constant(["native"]))["output_bytes"][0]
    found["translate_bytes (SavedModel)"] = tf.io.decode_png(output).numpy()
    return found


def _differences(path, serve):
    """{path of the package: its largest difference from PIL's pixels} for an image file."""
    with open(path, "rb") as file:
        expected = _as_pil(file.read()).astype(np.int64)
    found = _through_each_path(path, serve)
    assert {name: pixels.shape for name, pixels in found.items()} == dict.fromkeys(found, expected.shape)
    return {name: int(np.abs(pixels.astype(np.int64) - expected).max()) for name, pixels in found.items()}


def _detailed(height=48, width=64, channels=3, seed=0):
    """Noise over sharp-edged stripes: fine detail and hard edges, where the fast IDCT and the accurate one part."""
    random = np.random.RandomState(seed)
    stripes = np.where((np.arange(width) // 3) % 2, 235, 20)[None, :, None]
    noise = random.randint(-20, 21, (height, width, channels))
    return np.clip(stripes + noise, 0, 255).astype(np.uint8)


def _jpeg(pixels, subsampling):
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(
        buffer, "JPEG", quality=90, subsampling=subsampling
    )
    return buffer.getvalue()


@pytest.mark.parametrize("channels, subsampling", [(3, 2), (3, 0), (1, 0)], ids=["rgb 4:2:0", "rgb 4:4:4", "grayscale"])
def test_a_jpeg_decodes_to_pils_pixels_through_every_path(tmp_path, served, channels, subsampling):
    contents = _jpeg(_detailed(channels=channels), subsampling)
    path = tmp_path / "detailed.jpg"
    path.write_bytes(contents)
    # The image is one that TensorFlow's default decoding (the fast IDCT) gets wrong.
    fast = tf.io.decode_image(contents, expand_animations=False).numpy().astype(np.int64)
    assert np.abs(fast - _as_pil(contents)).max() > 0
    differences = _differences(str(path), served[channels])
    assert differences == dict.fromkeys(differences, 0), differences


@pytest.mark.skipif(not os.path.isdir(SHARED_DATA), reason="../shared/data absent")
def test_the_shared_datasets_jpegs_decode_to_pils_pixels_through_every_path(served):
    paths = []
    for folder, count in SHARED_FILES.items():
        names = sorted(name for name in os.listdir(os.path.join(SHARED_DATA, folder)) if name.endswith(".jpg"))
        paths += [os.path.join(SHARED_DATA, folder, name) for name in names[:count]]
    differences = {os.path.relpath(path, SHARED_DATA): _differences(path, served[3]) for path in paths}
    assert all(value == 0 for found in differences.values() for value in found.values()), differences


def test_the_serving_signatures_convert_channels_as_the_decoder_does(served):
    # A grayscale model gets one channel from a colour image, converted by the decoder (libjpeg's
    # luma for a JPEG, libpng's for a PNG), as the signatures converted it before.
    colour = _detailed(channels=3)
    for contents, expected in [
        (_jpeg(colour, 2), tf.io.decode_jpeg(_jpeg(colour, 2), channels=1, dct_method="INTEGER_ACCURATE")),
        (tf.io.encode_png(colour).numpy(), tf.io.decode_png(tf.io.encode_png(colour), channels=1)),
    ]:
        output = served[1](image_bytes=tf.constant([contents]), sizing=tf.constant(["native"]))["output_bytes"][0]
        np.testing.assert_array_equal(tf.io.decode_png(output).numpy(), expected.numpy())
    # A colour model gets three channels from a grayscale JPEG: its gray level in each.
    gray = _jpeg(_detailed(channels=1), 0)
    output = served[3](image_bytes=tf.constant([gray]), sizing=tf.constant(["native"]))["output_bytes"][0]
    np.testing.assert_array_equal(tf.io.decode_png(output).numpy(), np.repeat(_as_pil(gray), 3, axis=-1))


def test_decode_gives_decode_images_values_for_anything_else():
    # Float32 as decode_image scales it, bit for bit, and a 16-bit PNG as decode_image reads it.
    contents = _jpeg(_detailed(), 2)
    accurate = tf.io.decode_jpeg(contents, dct_method="INTEGER_ACCURATE")
    np.testing.assert_array_equal(data.decode(contents).numpy(), accurate.numpy() * np.float32(1 / 255))
    deep = tf.io.encode_png(tf.constant(_detailed(), tf.uint16) * 257)
    for dtype in (tf.float32, tf.uint8):
        expected = tf.io.decode_image(deep, dtype=dtype, expand_animations=False)
        np.testing.assert_array_equal(data.decode(deep, dtype).numpy(), expected.numpy())
    with pytest.raises(ValueError, match="decode gives tf.float32 or tf.uint8"):
        data.decode(contents, tf.uint16)
