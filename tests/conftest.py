import functools
import hashlib
import os
import re
import shutil
import struct
import zlib

# Quiet TensorFlow's C++ start-up lines; set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Child processes (a command killed mid-write, a fresh interpreter) import the package under test,
# not a copy pip installed earlier, wherever their working directory is.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_pix2pix  # noqa: E402, F401  (sets the Keras backend)
from keras_pix2pix import cli, demo, train  # noqa: E402
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


# --- the command line as a careless user meets it (each module's refusals; test_processes, test_signals) ---


def snapshot(*folders):
    """{path: SHA-256} of every file under the folders."""
    digests = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as file:
                    digests[path] = hashlib.sha256(file.read()).hexdigest()
    return digests


def run_command(capsys, *arguments):
    """(status, stdout, stderr) of the command line, which must print no traceback."""
    status = cli.main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err, captured.err
    return status, captured.out, captured.err


def refused(capsys, pattern, *arguments, status=2):
    """Runs a command that must fail with `status` and one error line matching pattern; returns the line."""
    code, out, err = run_command(capsys, *arguments)
    lines = [line for line in err.splitlines() if line.startswith("keras-pix2pix:")]
    assert code == status, err
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def png(path, height=16, width=16, seed=0):
    image = np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8)
    with open(path, "wb") as file:
        file.write(tf.io.encode_png(image).numpy())
    return path


def huge_png(path, width, height):
    """A valid all-zero RGB PNG of width x height, written without holding the image (a few MB for 20000x20000)."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(1)
    row = bytes(1 + width * 3)  # filter byte 0, then the row's zeros
    rows_per_block = max(1, (16 << 20) // len(row))
    parts, left = [], height
    while left:
        count = min(left, rows_per_block)
        parts.append(compressor.compress(row * count))
        left -= count
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return str(path)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(data folder, work directory) of a finished tiny run of 2 steps with a checkpoint after each; copy it to change it."""
    base = tmp_path_factory.mktemp("trained")
    folder = write_ab_folder(base / "pairs", count=3)
    workdir = str(base / "run")
    train.fit(tiny_config(dataset=folder, steps=2, save_every=1, sample_every=2), workdir, verbose=False)
    return folder, workdir


@pytest.fixture(scope="session")
def huge(tmp_path_factory):
    """A valid PNG of 20000x20000 zeros: 5 MB on disk, 1.2 GB decoded (4.8 GB as float32)."""
    return huge_png(tmp_path_factory.mktemp("huge") / "huge.png", 20000, 20000)


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run in tmp_path/run (modification times kept)."""
    copy = str(tmp_path / "run")
    shutil.copytree(trained[1], copy)
    return copy


def fit_more(capsys, run, steps=3):
    """(status, stdout and stderr) of `fit --workdir run --steps steps` on the command line."""
    status, out, err = run_command(capsys, "fit", "--workdir", run, "--steps", steps)
    return status, out + err


def temporaries(folder):
    """Temporary files and folders (files.replacing's, and export staging) anywhere under folder."""
    found = []
    for root, folders, names in os.walk(folder):
        found += [os.path.join(root, name) for name in folders + names if ".tmp-" in name]
    return found


@pytest.fixture
def identity_model(tmp_path):
    """A .keras generator of 32x32 that returns its input: quick to load, any sizing runs it, and
    predict's output is the input as decoded."""
    import keras  # here, after keras_pix2pix chose the Keras backend

    inputs = keras.Input((32, 32, 3))
    identity = keras.initializers.Constant(np.eye(3, dtype=np.float32)[None, None])
    outputs = keras.layers.Conv2D(3, 1, use_bias=False, kernel_initializer=identity)(inputs)
    path = str(tmp_path / "identity.keras")
    keras.Model(inputs, outputs).save(path)
    return path


# --- faults injected through fit's public train_step_factory= -------------------------------------


def nan_train_step(at_call=None):
    """A train_step_factory for fit whose step reports a non-finite loss.

    at_call=None: every call does (the weights are left alone); at_call=n: only the n-th call, after
    it set the generator's first weight to NaN, as a diverged step would.
    """

    def factory(generator, *arguments, **keywords):
        real = train.make_train_step(generator, *arguments, **keywords)
        calls = []

        def step(inputs, targets):
            calls.append(1)
            result = real(inputs, targets)
            if at_call is None or len(calls) == at_call:
                if at_call is not None:
                    weight = generator.trainable_variables[0]
                    weight.assign(tf.fill(weight.shape, np.nan))
                result = {**result, "generator_total": tf.constant(np.nan), "finite": tf.constant(False)}
            return result

        return step

    return factory


@pytest.fixture
def injected_nan():
    """A train_step_factory whose step's 4th call reports a NaN loss after wrecking a generator weight."""
    return nan_train_step(at_call=4)


@pytest.fixture
def always_nan(monkeypatch):
    """Every training step reports a non-finite loss, under the command line's fit too: train.fit
    (public) is replaced by itself with nan_train_step() as its train_step_factory."""
    monkeypatch.setattr(train, "fit", functools.partial(train.fit, train_step_factory=nan_train_step()))
