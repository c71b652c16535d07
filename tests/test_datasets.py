import functools
import gzip
import hashlib
import http.server
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import tracemalloc
import urllib.request
import zlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import SHARED_DATA, TINY, huge_png, png, refused, run_command, snapshot, tiny_config, write_ab_folder
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tensorflow_datasets.core.utils import tqdm_utils

from keras_pix2pix import checking, data, datasets, downloads, release
from keras_pix2pix.cli import main
from keras_pix2pix.config import UsageError


def _jpeg(height=32, width=64, seed=0):
    return tf.io.encode_jpeg(np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8)).numpy()


def _add(tar, name, contents):
    info = tarfile.TarInfo(name)
    info.size = len(contents)
    tar.addfile(info, io.BytesIO(contents))


def make_release_archive(path, name="facades", counts=(("train", 4), ("val", 2), ("test", 2)), extra=()):
    """A tar.gz laid out as the pix2pix release: NAME/SPLIT/N.jpg, AB images."""
    with tarfile.open(path, "w:gz") as tar:
        for split, count in counts:
            for index in range(count):
                _add(tar, f"{name}/{split}/{index + 1}.jpg", _jpeg(seed=index))
        for member in extra:
            tar.addfile(member[0], io.BytesIO(member[1]) if member[1] is not None else None)
    return path


@pytest.fixture
def release_server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving a facades archive; .requests counts what it answered."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    make_release_archive(folder / "facades.tar.gz")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("KERAS_PIX2PIX_DATASETS_URL", f"http://127.0.0.1:{server.server_address[1]}")
    server.requests = requests
    yield server
    server.shutdown()
    server.server_close()


def test_release_dataset_through_tfds_and_fit_offline(tmp_path, release_server, capsys):
    data_dir = str(tmp_path / "tfds")
    train = tfds.load("pix2pix/facades", split="train", data_dir=data_dir)
    images = [example["image"].numpy() for example in train]
    assert len(images) == 4 and images[0].shape == (32, 64, 3)
    assert release_server.requests == ["/facades.tar.gz"]
    builder = tfds.builder("pix2pix/facades", data_dir=data_dir)
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == {"train": 4, "val": 2, "test": 2}

    workdir = str(tmp_path / "run")
    code = main(["fit", "--dataset", "facades", "--steps", "2", "--data-dir", data_dir, "--workdir", workdir, *TINY])
    assert code == 0
    output = capsys.readouterr().out
    assert "facades: 4 training pairs, BtoA" in output  # the dataset's usual direction
    assert os.path.exists(os.path.join(workdir, "generator.keras"))
    tfds.load("pix2pix/facades", split="val", data_dir=data_dir)
    # Prepared once: neither the second load nor fit reached the server again.
    assert release_server.requests == ["/facades.tar.gz"]


def test_file_url_and_manual_dir(tmp_path, monkeypatch):
    archives = tmp_path / "archives"
    archives.mkdir()
    make_release_archive(archives / "facades.tar.gz")
    monkeypatch.setenv("KERAS_PIX2PIX_DATASETS_URL", f"file://{archives}")
    splits = datasets.find_dataset("facades", str(tmp_path / "a"))
    assert (len(splits.train), len(splits.validation), splits.direction) == (4, 2, "BtoA")
    monkeypatch.setenv("KERAS_PIX2PIX_DATASETS_URL", "http://127.0.0.1:9/unreachable")
    splits = datasets.find_dataset("facades", str(tmp_path / "b"), manual_dir=str(archives))
    assert len(splits.train) == 4


def test_unreachable_mirror_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_PIX2PIX_DATASETS_URL", f"file://{tmp_path}/nothing-here")
    with pytest.raises(ValueError, match=r"could not download file://.*/facades.tar.gz: .*KERAS_PIX2PIX_DATASETS_URL"):
        datasets.find_dataset("facades", str(tmp_path / "tfds"))


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    archives = tmp_path / "archives"
    archives.mkdir()
    make_release_archive(archives / "facades.tar.gz")
    monkeypatch.setitem(release.ARCHIVE_SHA256, "facades", "0" * 64)
    with pytest.raises(ValueError, match=r"facades.tar.gz has SHA-256 [0-9a-f]{64}, not the known 0{64}"):
        datasets.find_dataset("facades", str(tmp_path / "tfds"), manual_dir=str(archives))


@pytest.mark.parametrize(
    "member, message",
    [
        (
            (tarfile.TarInfo("facades/train/../../../escaped.jpg"), None),
            r"entry 'facades/train/../../../escaped.jpg' points outside",
        ),
        ((tarfile.TarInfo("/tmp/absolute.jpg"), None), r"entry '/tmp/absolute.jpg' points outside"),
        ("symlink", r"entry 'facades/train/link.jpg' is a link"),
    ],
)
def test_malicious_archive_is_refused_and_writes_nothing(tmp_path, member, message):
    if member == "symlink":
        info = tarfile.TarInfo("facades/train/link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        member = (info, None)
    else:
        contents = b"not a facade"
        member[0].size = len(contents)
        member = (member[0], contents)
    archives = tmp_path / "archives"
    archives.mkdir()
    make_release_archive(archives / "facades.tar.gz", extra=[member])
    data_dir = tmp_path / "deep" / "tfds"
    data_dir.mkdir(parents=True)

    def files_outside_target():
        return {
            os.path.join(root, name)
            for root, _, names in os.walk(tmp_path)
            for name in names
            if not root.startswith(str(data_dir))
        }

    before = files_outside_target()
    with pytest.raises(ValueError, match=message):
        datasets.find_dataset("facades", str(data_dir), manual_dir=str(archives))
    assert files_outside_target() == before
    written = [name for _, _, names in os.walk(data_dir) for name in names]
    assert not [name for name in written if name in ("escaped.jpg", "absolute.jpg", "link.jpg")]
    assert not os.path.exists("/tmp/absolute.jpg")
    assert not tfds.builder("pix2pix/facades", data_dir=str(data_dir)).is_prepared()


def test_datasets_command_lists_the_catalog(tmp_path, capsys):
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    for name in ("demo", "facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day"):
        assert f"\n{name} " in output
    assert "600x600" in output and "BtoA" in output


# --- local layouts and image kinds ---------------------------------------------------------------


def _write_image(path, array):
    array = np.asarray(array)
    if path.endswith(".png"):
        encoded = tf.io.encode_png(tf.constant(array))
    else:
        encoded = tf.io.encode_jpeg(tf.constant(array))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, encoded)


@pytest.mark.slow
def test_paired_a_and_b_folders(tmp_path, capsys):
    random = np.random.RandomState(0)
    for split in ("train", "val"):
        for name in ("x", "y"):
            _write_image(str(tmp_path / "ab" / split / "A" / f"{name}.png"), random.randint(0, 256, (40, 48, 1)).astype(np.uint8))
            _write_image(str(tmp_path / "ab" / split / "B" / f"{name}.jpg"), random.randint(0, 256, (40, 48, 3)).astype(np.uint8))
    splits = datasets.local_splits(str(tmp_path / "ab"))
    assert splits.train.a[0].endswith(os.path.join("A", "x.png")) and splits.train.b[0].endswith(os.path.join("B", "x.jpg"))
    source, target = data.decode_pair(tf.io.read_file(splits.train.a[0]), tf.io.read_file(splits.train.b[0]), "AtoB", 1, 3)
    assert source.shape == (40, 48, 1) and target.shape == (40, 48, 3)
    # Grayscale inputs stay one channel with --input-channels 1.
    workdir = str(tmp_path / "run")
    assert (
        main(["fit", "--dataset", str(tmp_path / "ab"), "--workdir", workdir, "--steps", "1", "--input-channels", "1", *TINY])
        == 0
    )
    import keras

    assert keras.models.load_model(os.path.join(workdir, "generator.keras")).input_shape == (None, 32, 32, 1)


def test_unmatched_pair_names_are_named(tmp_path):
    _write_image(str(tmp_path / "A" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    _write_image(str(tmp_path / "B" / "z.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"A.x\.\* has no partner of the same name in B/ \(2 unmatched file\(s\)\)"):
        datasets.local_splits(str(tmp_path))


@pytest.mark.parametrize("mode", ["resize_and_crop", "scale_width", "crop", "none"])
def test_preprocess_modes_give_the_image_size(mode):
    source = tf.random.uniform((30, 50, 3), seed=1)
    target = tf.random.uniform((30, 50, 3), seed=2)
    a, b = data.jitter(
        source, target, tf.constant([1, 2], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=True, preprocess=mode
    )
    assert a.shape == (32, 32, 3) and b.shape == (32, 32, 3)
    if mode == "crop":
        # The original (30x50) is smaller than the crop: scaled up to cover it, aspect kept (32x54),
        # then cropped: the input is one 32-pixel window of that, flipped or not.
        covered = data.resize(source, (32, 54)).numpy()
        windows = [covered[:, left : left + 32] for left in range(54 - 32 + 1)]
        assert min(np.abs(window - candidate).max() for window in windows for candidate in (a.numpy(), a.numpy()[:, ::-1])) < 1e-5
    with pytest.raises(ValueError, match=r"preprocess must be one of resize_and_crop, scale_width, crop, none; got 'zoom'"):
        data.jitter(
            source, target, tf.constant([1, 2], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=True, preprocess="zoom"
        )


def test_crop_mode_crops_without_resizing():
    # A horizontal ramp: a crop of the original keeps steps of exactly 1/63 between columns.
    ramp = tf.tile(tf.reshape(tf.linspace(0.0, 1.0, 64), (1, 64, 1)), (48, 1, 3))
    a, _ = data.jitter(
        ramp, ramp, tf.constant([3, 4], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=False, preprocess="crop"
    )
    steps = np.diff(a.numpy()[0, :, 0])
    np.testing.assert_allclose(steps, 1 / 63, atol=1e-6)


# --- hostile files -------------------------------------------------------------------------------


def _hostile_folder(root, kind):
    folder = write_ab_folder(root / "data", count=3)
    train = os.path.join(folder, "train")
    if kind == "truncated":
        contents = _jpeg()
        with open(os.path.join(train, "bad.jpg"), "wb") as file:
            file.write(contents[: len(contents) // 2])
        return folder, "bad.jpg is not a readable JPEG or PNG image"
    if kind == "not an image":
        with open(os.path.join(train, "notes.png"), "w") as file:
            file.write("shopping list")
        return folder, "notes.png is not a readable JPEG or PNG image"
    if kind == "odd width":
        _write_image(os.path.join(train, "odd.png"), np.zeros((32, 63, 3), np.uint8))
        return folder, "odd.png is 63x32: an AB image needs an even width"
    if kind == "empty file":
        open(os.path.join(train, "empty.jpg"), "wb").close()
        return folder, "empty.jpg is empty"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "not an image", "odd width", "empty file"])
@pytest.mark.slow
def test_hostile_files_stop_before_training_or_are_skipped(tmp_path, capsys, kind):
    folder, message = _hostile_folder(tmp_path, kind)
    workdir = str(tmp_path / "run")
    assert main(["fit", "--dataset", folder, "--workdir", workdir, "--steps", "1", *TINY]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error and "(1 bad file(s) in all; --skip-bad skips them)" in error
    assert not os.path.exists(os.path.join(workdir, "checkpoints")), "stopped before training"
    assert main(["fit", "--dataset", folder, "--workdir", workdir, "--steps", "1", "--skip-bad", *TINY]) == 0
    output = capsys.readouterr().out
    assert "skipped 1 bad file(s) of 4" in output and "3 training pairs" in output


def test_pairs_of_different_sizes_and_empty_splits(tmp_path, capsys):
    _write_image(str(tmp_path / "pairs" / "A" / "x.png"), np.zeros((32, 32, 3), np.uint8))
    _write_image(str(tmp_path / "pairs" / "B" / "x.png"), np.zeros((32, 40, 3), np.uint8))
    assert main(["fit", "--dataset", str(tmp_path / "pairs"), "--workdir", str(tmp_path / "run"), "--steps", "1", *TINY]) == 2
    assert "is 40x32 but its partner" in capsys.readouterr().err
    folder = write_ab_folder(tmp_path / "splits", count=2)
    for name in os.listdir(os.path.join(folder, "val")):
        os.remove(os.path.join(folder, "val", name))
    assert main(["fit", "--dataset", folder, "--workdir", str(tmp_path / "run2"), "--steps", "1", *TINY]) == 2
    assert "no images (.jpg, .jpeg, .png) in" in capsys.readouterr().err


# --- the real data, when present -----------------------------------------------------------------


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "facades")), reason="../shared/data/facades absent")
def test_real_facades_load_with_label_maps_as_input():
    splits = datasets.local_splits(os.path.join(SHARED_DATA, "facades"))
    assert (len(splits.train), len(splits.validation)) == (400, 100)
    _, a_bytes, b_bytes = next(iter(splits.train.take(1).ordered()))
    source, target = data.decode_pair(a_bytes, b_bytes, "BtoA")
    hsv_source, hsv_target = tf.image.rgb_to_hsv(source).numpy(), tf.image.rgb_to_hsv(target).numpy()
    # A label map is flat, saturated colour (mostly blues); a photo is neither.
    assert hsv_source[..., 1].mean() > 0.7 > hsv_target[..., 1].mean()
    mean_colour = source.numpy().reshape(-1, 3).mean(axis=0)
    assert mean_colour[2] > mean_colour[0] and mean_colour[2] > mean_colour[1]


def test_release_epochs_are_whole_permutations_read_in_windows(tmp_path, monkeypatch):
    # As the folder path and the paper's code: every epoch visits the whole split in a fresh
    # order, also when the split is larger than the window held in memory.
    archives = tmp_path / "archives"
    archives.mkdir()
    make_release_archive(archives / "facades.tar.gz", counts=(("train", 8), ("val", 2), ("test", 2)))
    pairs = datasets.find_dataset("facades", str(tmp_path / "tfds"), manual_dir=str(archives)).train
    stored = [name.numpy() for name, _, _ in pairs.ordered()]
    monkeypatch.setattr(datasets.TfdsPairs, "WINDOW", 3)
    orders = []
    for epoch in (0, 1):
        names = [name.numpy() for name, _, _ in pairs.epoch(tf.constant(5, tf.int64), tf.constant(epoch, tf.int64))]
        permutation = tf.random.experimental.stateless_shuffle(tf.range(8, dtype=tf.int64), seed=[5, epoch]).numpy()
        assert names == [stored[index] for index in permutation]
        orders.append(names)
    assert sorted(orders[0]) == sorted(stored) and orders[0] != orders[1] and orders[0] != stored


# --- downloads and damaged archives --------------------------------------------------------------


def _png(seed):
    """An 8x16 AB PNG of noise: the smallest image the builder accepts."""
    return tf.io.encode_png(np.random.RandomState(seed).randint(0, 256, (8, 16, 3)).astype(np.uint8)).numpy()


def make_png_archive(path, counts=(("train", 3), ("val", 1), ("test", 1)), extra=()):
    """A tar.gz laid out as the facades release, of 8x16 PNGs; extra: more (name, bytes) members."""
    with tarfile.open(path, "w:gz") as tar:
        for split, count in counts:
            for index in range(count):
                _add(tar, f"facades/{split}/{index + 1}.png", _png(index))
        for name, contents in extra:
            _add(tar, name, contents)
    return pathlib.Path(path)


def _temporaries(folder):
    """The temporary files files.replacing left in folder (.NAME.tmp-PID...)."""
    return [name for name in os.listdir(folder) if name.startswith(".") and ".tmp-" in name]


def _exactly(message):
    return f"^{re.escape(message)}$"


@pytest.fixture
def archive_server(monkeypatch):
    """An HTTP server on 127.0.0.1; .routes maps a path to (body, Content-Length or None, bytes to send).

    It sends the first `bytes to send` of the body and closes the connection (HTTP/1.0), as a
    server that fails part-way, or lies about the length, would.
    """
    routes, requests = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path not in routes:
                self.send_error(404)
                return
            body, length, sent = routes[self.path]
            self.send_response(200)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body[:sent])

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll, so that shutting it down takes a twentieth of a second, not half of one.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    server.routes, server.requests = routes, requests
    monkeypatch.setenv("KERAS_PIX2PIX_DATASETS_URL", server.url)
    yield server
    server.shutdown()
    server.server_close()


def _serve(server, body, length="full", sent=None):
    server.routes["/facades.tar.gz"] = (body, len(body) if length == "full" else length, len(body) if sent is None else sent)


def _cut(body, kind):
    """body as a failing server sends it, with the error the download must raise (after the URL)."""
    half = len(body) // 2
    if kind == "half of its Content-Length":
        return (body, len(body), half), f"was cut short: got {half} of {len(body)} bytes"
    if kind == "Content-Length past its end":
        return (body, len(body) + 1000, len(body)), f"was cut short: got {len(body)} of {len(body) + 1000} bytes"
    incomplete = "is not a complete tar.gz archive: "
    if kind == "half, no Content-Length":
        return (body, None, half), incomplete + "Compressed file ended before the end-of-stream marker was reached"
    # The gzip CRC flipped: every tar member reads, and only the end of the stream tells.
    corrupt = bytearray(body)
    corrupt[-8] ^= 0xFF
    stored = int.from_bytes(corrupt[-8:-4], "little")
    actual = zlib.crc32(gzip.decompress(body))
    return (bytes(corrupt), len(body), len(body)), incomplete + f"CRC check failed {hex(stored)} != {hex(actual)}"


@pytest.mark.parametrize(
    "kind", ["half of its Content-Length", "Content-Length past its end", "half, no Content-Length", "corrupt CRC"]
)
def test_a_short_or_corrupt_download_is_not_cached(tmp_path, archive_server, kind):
    good = make_png_archive(tmp_path / "facades.tar.gz").read_bytes()
    archive_server.routes["/facades.tar.gz"], problem = _cut(good, kind)
    url = f"{archive_server.url}/facades.tar.gz"
    data_dir = tmp_path / "tfds"
    with pytest.raises(UsageError, match=_exactly(f"the download of {url} {problem}; nothing was kept: {downloads.RETRY}")):
        datasets.find_dataset("facades", str(data_dir))
    # Nothing cached, no temporary file, no digest recorded, no empty folder left behind.
    assert not (data_dir / "downloads").exists() or [name for name in os.listdir(data_dir / "downloads")
                                                     if "facades" in name] == []
    assert [folder for folder, subfolders, names in os.walk(data_dir) if not subfolders and not names] == []
    _serve(archive_server, good)
    splits = datasets.find_dataset("facades", str(data_dir))
    assert (len(splits.train), len(splits.validation)) == (3, 1)
    assert sorted(name for name in os.listdir(data_dir / "downloads") if "facades" in name) == [
        "facades.tar.gz",
        "facades.tar.gz.sha256",
    ]
    assert archive_server.requests == ["/facades.tar.gz"] * 2


class _Interrupted:
    """A response that gives the first half of the body, then fails as Ctrl-C or a reset would."""

    def __init__(self, response, error, seen, folder):
        self.response, self.error, self.seen, self.folder, self.reads = response, error, seen, folder, 0
        self.headers = response.headers

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.response.close()

    def read(self, size):
        self.reads += 1
        if self.reads == 1:
            return self.response.read(int(self.headers["Content-Length"]) // 2)
        self.seen.extend(_temporaries(self.folder))  # the half received so far, written beside
        raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), ConnectionResetError(104, "Connection reset by peer")])
def test_an_interrupted_download_leaves_no_temporary_file(tmp_path, archive_server, monkeypatch, error):
    good = make_png_archive(tmp_path / "facades.tar.gz").read_bytes()
    _serve(archive_server, good)
    cache = tmp_path / "cache"
    cache.mkdir()
    destination, url, seen = cache / "facades.tar.gz", f"{archive_server.url}/facades.tar.gz", []
    real_urlopen = urllib.request.urlopen
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda *args, **kwargs: _Interrupted(real_urlopen(*args, **kwargs), error, seen, cache)
    )
    if isinstance(error, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            downloads.download(url, str(destination))
    else:
        message = f"could not download {url}: [Errno 104] Connection reset by peer ({downloads.RETRY})"
        with pytest.raises(UsageError, match=_exactly(message)):
            downloads.download(url, str(destination))
    assert seen == [f".facades.tar.tmp-keras-pix2pix-{os.getpid()}.gz"] and os.listdir(cache) == []
    monkeypatch.setattr(urllib.request, "urlopen", real_urlopen)
    assert downloads.download(url, str(destination)) == hashlib.sha256(good).hexdigest()
    assert os.listdir(cache) == ["facades.tar.gz"]


def _damage(path, kind):
    """Damages the archive at path as kind says; returns the reason the reading gives."""
    body = path.read_bytes()
    if kind == "not a tar":
        path.write_bytes(b"<html>Not Found</html>")
        return (
            "file could not be opened successfully: - method gz: ReadError('not a gzip file') - method bz2: "
            "ReadError('not a bzip2 file') - method xz: ReadError('not an lzma file') - method tar: ReadError('truncated header')"
        )
    path.write_bytes(body[: len(body) // 2] if kind == "half" else body[:-4])
    return "Compressed file ended before the end-of-stream marker was reached"


@pytest.mark.parametrize(
    "where, kind",
    [
        ("manual", "half"),
        ("manual", "trailer cut"),
        ("manual", "not a tar"),
        ("cached", "half"),
        ("cached and recorded", "trailer cut"),
    ],
)
def test_a_damaged_archive_is_one_line_error(tmp_path, archive_server, where, kind):
    data_dir, manual = tmp_path / "tfds", tmp_path / "manual"
    folder = manual if where == "manual" else data_dir / "downloads"
    folder.mkdir(parents=True)
    archive = make_png_archive(folder / "facades.tar.gz")
    good = archive.read_bytes()
    reason = _damage(archive, kind)
    if where == "cached and recorded":  # found by the examples' reading, not by the first-use check
        (folder / "facades.tar.gz.sha256").write_text(hashlib.sha256(archive.read_bytes()).hexdigest() + "\n")
    message = _exactly(f"{archive} is damaged (truncated or corrupt: {reason}); delete it and download it again")
    with pytest.raises(UsageError, match=message):
        list(downloads.safe_archive_files(str(archive)))
    with pytest.raises(UsageError, match=message):
        datasets.find_dataset("facades", str(data_dir), manual_dir=str(manual) if where == "manual" else None)
    assert not os.path.exists(data_dir / "downloads" / "manual-facades.tar.gz.sha256"), "a damaged archive is no reference"
    if where == "manual":
        archive.write_bytes(good)
    else:
        archive.unlink()  # as the message says; the server has the good one
        _serve(archive_server, good)
    splits = datasets.find_dataset("facades", str(data_dir), manual_dir=str(manual) if where == "manual" else None)
    assert len(splits.train) == 3


def test_members_are_streamed_and_oversized_images_refused(tmp_path, monkeypatch):
    # 16 MB of zeros in a member that is no image: 16 KB in the archive, never read.
    archive = make_png_archive(tmp_path / "facades.tar.gz", extra=[("facades/train/depth.bin", bytes(16 << 20))])
    extracted = []
    real_extractfile = tarfile.TarFile.extractfile
    monkeypatch.setattr(
        tarfile.TarFile, "extractfile", lambda tar, member: extracted.append(member.name) or real_extractfile(tar, member)
    )

    def in_train(name):
        return name.startswith("facades/train/") and name.endswith(".png")

    tracemalloc.start()
    try:
        names = [name for name, contents in downloads.safe_archive_files(str(archive), wanted=in_train)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert names == extracted == ["facades/train/1.png", "facades/train/2.png", "facades/train/3.png"]
    assert peak < 4 << 20, f"{peak} bytes at the peak: a member was read whole"

    monkeypatch.setattr(downloads, "MAX_IMAGE_BYTES", 100)
    extracted.clear()
    size = len(_png(0))
    message = (
        f"refusing {archive}: entry 'facades/train/1.png' is {size} bytes, "
        "over the 100-byte bound of an image (MAX_IMAGE_BYTES)"
    )
    with pytest.raises(UsageError, match=_exactly(message)):
        list(downloads.safe_archive_files(str(archive), wanted=in_train))
    assert extracted == [], "refused before it was read"

    # Unsafe entries are refused whether wanted or not.
    fifo = tarfile.TarInfo("facades/extra/pipe")
    fifo.type = tarfile.FIFOTYPE
    with tarfile.open(tmp_path / "fifo.tar.gz", "w:gz") as tar:
        tar.addfile(fifo)
    message = f"refusing {tmp_path / 'fifo.tar.gz'}: entry 'facades/extra/pipe' is not a regular file"
    with pytest.raises(UsageError, match=_exactly(message)):
        list(downloads.safe_archive_files(str(tmp_path / "fifo.tar.gz"), wanted=in_train))


def _prepare(tmp_path, run, manual_dir=None):
    """Prepares facades into a fresh data dir, with the download dir shared between runs."""
    builder = datasets.pix2pix_builder("facades", str(tmp_path / f"tfds-{run}"))
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir)) if manual_dir else None
    builder.download_and_prepare(download_dir=str(tmp_path / "downloads"), download_config=config)
    return builder.info.splits["train"].num_examples


def _changed(archive, record, first, second):
    return _exactly(
        f"{archive} has changed since its first use: SHA-256 {second}, recorded {first} in {record}; "
        f"if the new archive is the one you want, delete {record} to accept it"
    )


def test_the_first_digest_is_recorded_and_a_changed_archive_refused(tmp_path, archive_server, monkeypatch):
    first = make_png_archive(tmp_path / "first.tar.gz").read_bytes()
    second = make_png_archive(tmp_path / "second.tar.gz", counts=(("train", 2), ("val", 1), ("test", 1))).read_bytes()
    first_digest, second_digest = hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()
    _serve(archive_server, first)
    assert _prepare(tmp_path, 1) == 3
    cached, record = tmp_path / "downloads" / "facades.tar.gz", tmp_path / "downloads" / "facades.tar.gz.sha256"
    assert record.read_text() == first_digest + "\n"
    cached.write_bytes(second)  # the cached archive changed on disk
    with pytest.raises(UsageError, match=_changed(cached, record, first_digest, second_digest)):
        _prepare(tmp_path, 2)
    monkeypatch.setitem(release.ARCHIVE_SHA256, "facades", "0" * 64)  # a pinned digest is checked first
    with pytest.raises(UsageError, match=r"facades.tar.gz has SHA-256 [0-9a-f]{64}, not the known 0{64}"):
        _prepare(tmp_path, 2)
    monkeypatch.delitem(release.ARCHIVE_SHA256, "facades")
    record.unlink()  # accepts the new archive
    assert _prepare(tmp_path, 3) == 2 and record.read_text() == second_digest + "\n"
    assert archive_server.requests == ["/facades.tar.gz"]

    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "facades.tar.gz").write_bytes(first)
    assert _prepare(tmp_path, 4, manual) == 3
    assert os.listdir(manual) == ["facades.tar.gz"], "nothing written into the user's folder"
    manual_record = tmp_path / "downloads" / "manual-facades.tar.gz.sha256"
    assert manual_record.read_text() == first_digest + "\n"
    (manual / "facades.tar.gz").write_bytes(second)
    with pytest.raises(UsageError, match=_changed(manual / "facades.tar.gz", manual_record, first_digest, second_digest)):
        _prepare(tmp_path, 5, manual)
    manual_record.unlink()
    assert _prepare(tmp_path, 6, manual) == 2
    assert not _temporaries(tmp_path / "downloads")


def test_the_release_is_fetched_over_https(monkeypatch):
    monkeypatch.delenv("KERAS_PIX2PIX_DATASETS_URL", raising=False)
    assert release.datasets_url() == "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"


def test_a_local_folder_named_as_a_release_is_named_in_the_failure(tmp_path, archive_server, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs(tmp_path / "facades" / "train")
    data_dir = tmp_path / "tfds"
    with pytest.raises(UsageError, match=r"could not download .*/facades\.tar\.gz: Not Found .*\(to train on the "
                       r"folder facades here, write --dataset \./facades\)$"):
        datasets.find_dataset("facades", str(data_dir))
    assert "the folder facades here is not read (write ./facades for it)" in capsys.readouterr().out
    # The failed attempt left no empty folders (tfds's note of the builder, .config/, aside).
    assert [folder for folder, subfolders, names in os.walk(data_dir) if not subfolders and not names] == []


# --- the release outside the command line --------------------------------------------------------


def _readme_tfds_line():
    """The README's line that loads a release dataset through tfds, as a user would copy it."""
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    lines = re.findall(r"`(import [^`]*tfds\.load\(\"pix2pix/[^`]*)`", readme.read_text(encoding="utf-8"))
    assert len(lines) == 1, lines
    return lines[0]


def test_the_readme_tfds_line_runs_as_written_in_a_fresh_process(tmp_path, release_server):
    # keras_pix2pix imports its modules lazily, so the README must name the one that registers
    # the builder; a fresh interpreter has imported nothing else that would.
    line = _readme_tfds_line()
    assert "keras_pix2pix.release" in line
    check = 'print("train", tfds.builder("pix2pix/facades").info.splits["train"].num_examples)'
    environment = {**os.environ, "TFDS_DATA_DIR": str(tmp_path / "tfds")}
    result = subprocess.run([sys.executable, "-c", f"{line}\n{check}"], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "train 4"
    assert release_server.requests == ["/facades.tar.gz"]


@pytest.mark.parametrize("shown", [True, False])
def test_find_dataset_leaves_the_progress_bar_setting_as_it_found_it(tmp_path, monkeypatch, shown):
    archives = tmp_path / "archives"
    archives.mkdir()
    make_release_archive(archives / "facades.tar.gz")
    during = []
    prepare = release.Pix2Pix._split_generators

    def recording(self, dl_manager):
        during.append(tqdm_utils._active)
        return prepare(self, dl_manager)

    monkeypatch.setattr(release.Pix2Pix, "_split_generators", recording)
    before = tqdm_utils._active
    tfds.display_progress_bar(shown)
    try:
        datasets.find_dataset("facades", str(tmp_path / "tfds"), manual_dir=str(archives))
        assert tqdm_utils._active is shown
        with pytest.raises(UsageError, match="holds no facades.tar.gz"):  # a failure puts it back too
            datasets.find_dataset("facades", str(tmp_path / "other"), manual_dir=str(tmp_path))
        assert tqdm_utils._active is shown
    finally:
        tfds.display_progress_bar(before)
    assert during and not any(during)  # our own progress lines, not tfds's bars, while it prepared


def test_names_that_moved_out_of_datasets_still_import_from_it():
    # They lived in datasets.py before downloads.py and release.py; code written against them runs.
    for module, names in (
        (downloads, ["ARCHIVE_ERRORS", "CHUNK_BYTES", "MAX_IMAGE_BYTES", "RETRY", "check_recorded", "download",
                     "safe_archive_files", "verify_archive"]),
        (release, ["ARCHIVE_SHA256", "CATALOG", "CATALOG_NAMES", "CITATION", "DEFAULT_DATASETS_URL", "Pix2Pix",
                   "Pix2PixConfig", "catalog_entry", "datasets_url"]),
        (data, ["IMAGE_EXTENSIONS"]),
    ):
        for name in names:
            assert getattr(datasets, name) is getattr(module, name), name


# --- hostile files: huge, fuzzed, truncated archives, a data directory that is a file ---------------


def test_huge_png_helper_writes_a_valid_png(tmp_path):
    image = tf.io.decode_png(open(huge_png(tmp_path / "small.png", 7, 5), "rb").read())
    assert image.shape == (5, 7, 3) and int(tf.reduce_max(image)) == 0


def test_fit_refuses_a_huge_image_from_its_header(tmp_path, capsys, huge):
    folder = tmp_path / "pairs"
    folder.mkdir()
    png(folder / "0.png", 32, 64)
    shutil.copy(huge, folder / "1.png")
    refused(capsys, r"1\.png is 20000x20000 \(400 megapixels\), over the limit of 50 megapixels \(--max-pixels",
            "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY)
    status, output = run_command(capsys, "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY,
                                 "--steps", "1", "--skip-bad")[:2]
    assert status == 0 and "skipped 1 bad file(s) of 2" in output


def test_a_truncated_manual_archive_is_one_line(tmp_path, capsys):
    manual = tmp_path / "manual"
    write_ab_folder(tmp_path / "facades", count=2, splits=("train", "val", "test"))
    manual.mkdir()
    archive = manual / "facades.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "facades", arcname="facades")
    os.truncate(archive, os.path.getsize(archive) // 2)
    before = snapshot(manual)
    refused(capsys, r"facades\.tar\.gz is damaged \(truncated or corrupt", "fit", "--dataset", "facades", "--manual-dir",
            manual, "--data-dir", tmp_path / "data", "--workdir", tmp_path / "run", *TINY)
    assert snapshot(manual) == before


def test_a_data_directory_that_is_a_file_is_named(tmp_path, capsys):
    (tmp_path / "data").write_text("mine")
    refused(capsys, r"the data directory .*data is a file, not a folder", "fit", "--dataset", "demo", "--data-dir",
            tmp_path / "data", "--workdir", tmp_path / "run", *TINY)


VALID = {
    "png": tf.io.encode_png(np.random.RandomState(0).randint(0, 256, (8, 16, 3)).astype(np.uint8)).numpy(),
    "jpeg": tf.io.encode_jpeg(np.random.RandomState(1).randint(0, 256, (8, 16, 3)).astype(np.uint8)).numpy(),
}


def _mutations():
    def mutate(draw_values):
        kind, positions, values, cut = draw_values
        data = bytearray(VALID[kind])
        for position, value in zip(positions, values):
            data[position % len(data)] = value
        return bytes(data[: max(1, int(len(data) * cut))])

    mutated = st.tuples(
        st.sampled_from(sorted(VALID)),
        st.lists(st.integers(0, 10_000), max_size=8),
        st.lists(st.integers(0, 255), max_size=8),
        st.one_of(st.just(1.0), st.floats(0.05, 1.0)),
    ).map(mutate)
    return st.one_of(st.binary(max_size=400), mutated)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=_mutations())
@example(contents=VALID["png"])
@example(contents=VALID["jpeg"])
@pytest.mark.slow
def test_fuzzed_files_get_the_clear_error_or_load(tmp_path, contents):
    path = tmp_path / "fuzz.png"
    path.write_bytes(contents)
    pairs = datasets.FilePairs((str(path),), ("",))
    try:
        checked = checking.check_pairs(pairs)
    except UsageError as error:
        assert str(error).startswith(str(path)) and "--skip-bad" in str(error)
        with pytest.raises(UsageError, match="every file is bad"):
            checking.check_pairs(pairs, skip_bad=True, log=lambda message: None)
        return
    # A file that passes the check must go through the training pipeline without an error.
    from keras_pix2pix import data

    batch = next(iter(data.train_dataset(checked, tiny_config(), "AtoB", seed=0)))
    assert batch[0].shape == (1, 32, 32, 3)
