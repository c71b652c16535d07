import functools
import http.server
import io
import os
import tarfile
import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from conftest import SHARED_DATA, TINY, write_ab_folder
from keras_pix2pix import data, datasets
from keras_pix2pix.cli import main



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
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "facades", "0" * 64)
    with pytest.raises(ValueError, match=r"facades.tar.gz has SHA-256 [0-9a-f]{64}, not the known 0{64}"):
        datasets.find_dataset("facades", str(tmp_path / "tfds"), manual_dir=str(archives))


@pytest.mark.parametrize(
    "member, message",
    [
        ((tarfile.TarInfo("facades/train/../../../escaped.jpg"), None), r"entry 'facades/train/../../../escaped.jpg' points outside"),
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
        return {os.path.join(root, name) for root, _, names in os.walk(tmp_path) for name in names if not root.startswith(str(data_dir))}

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
    assert main(["fit", "--dataset", str(tmp_path / "ab"), "--workdir", workdir, "--steps", "1", "--input-channels", "1", *TINY]) == 0
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
    a, b = data.jitter(source, target, tf.constant([1, 2], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=True, preprocess=mode)
    assert a.shape == (32, 32, 3) and b.shape == (32, 32, 3)
    if mode == "crop":
        # The original (30x50) is smaller than the crop: scaled up to cover it, aspect kept (32x54),
        # then cropped: the input is one 32-pixel window of that, flipped or not.
        covered = data.resize(source, (32, 54)).numpy()
        windows = [covered[:, left : left + 32] for left in range(54 - 32 + 1)]
        assert min(np.abs(window - candidate).max() for window in windows for candidate in (a.numpy(), a.numpy()[:, ::-1])) < 1e-5
    with pytest.raises(ValueError, match=r"preprocess must be one of resize_and_crop, scale_width, crop, none; got 'zoom'"):
        data.jitter(source, target, tf.constant([1, 2], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=True, preprocess="zoom")


def test_crop_mode_crops_without_resizing():
    # A horizontal ramp: a crop of the original keeps steps of exactly 1/63 between columns.
    ramp = tf.tile(tf.reshape(tf.linspace(0.0, 1.0, 64), (1, 64, 1)), (48, 1, 3))
    a, _ = data.jitter(ramp, ramp, tf.constant([3, 4], tf.int64), image_size=(32, 32), load_size=(36, 36), flip=False, preprocess="crop")
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
    source, target = data.load_pair(splits.train.a[0], "BtoA")
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
