import os

# Quiet TensorFlow's C++ start-up lines; set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_pix2pix  # noqa: E402, F401  (sets the Keras backend)
from keras_pix2pix import demo  # noqa: E402
from keras_pix2pix.config import Config  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(autouse=True)
def _no_home_writes(tmp_path_factory, monkeypatch):
    # Nothing a test runs may write prepared data into the user's home.
    monkeypatch.setenv("KERAS_PIX2PIX_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data_dir"))


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory):
    """A data dir with the demo dataset prepared once for the whole session."""
    data_dir = tmp_path_factory.mktemp("demo_data")
    demo.prepare(str(data_dir))
    return str(data_dir)


# The command line's flags for the networks of tiny_config: 32x32 images, few filters.
TINY = ["--image-size", "32", "--generator-filters", "8", "--discriminator-filters", "8", "--discriminator-layers", "1"]


def tiny_config(**changes):
    """A Config small enough for unit tests: 32x32 images, few filters, few steps."""
    values = dict(
        image_size=32,
        generator_filters=8,
        discriminator_filters=8,
        discriminator_layers=1,
        steps=4,
        save_every=2,
        sample_every=2,
        log_every=1,
        sample_count=2,
        seed=7,
    )
    values.update(changes)
    return Config(**values)


def write_ab_folder(folder, count, size=32, splits=("train", "val"), seed=0, extension="png"):
    """Writes `count` random AB images (size x 2*size) into each split subfolder of folder."""
    random = np.random.RandomState(seed)
    for split in splits:
        os.makedirs(os.path.join(folder, split), exist_ok=True)
        for index in range(count):
            image = random.randint(0, 256, (size, 2 * size, 3)).astype(np.uint8)
            encoded = tf.io.encode_png(image) if extension == "png" else tf.io.encode_jpeg(image)
            tf.io.write_file(os.path.join(folder, split, f"{index}.{extension}"), encoded)
    return str(folder)
