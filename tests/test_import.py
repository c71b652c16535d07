"""Importing the authors' pix2pix generators (junyanz's .pth state_dicts) without PyTorch.

The fixtures were made by real PyTorch 2.13.0 (tests/fixtures/pytorch/make_checkpoints.py): junyanz's
UnetGenerator at a tiny width with random weights and running statistics, in the zip and legacy
formats, and PyTorch's own outputs for a fixed input.
"""

import functools
import http.server
import os
import pickle
import shutil
import threading
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import refused, run_command, write_ab_folder

from keras_pix2pix import importing
from keras_pix2pix.errors import UsageError
from keras_pix2pix.modes import prepare, translate
from keras_pix2pix.state_dicts import LEGACY_MAGIC, read_state_dict
from keras_pix2pix.translation import load_generator

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "pytorch")
EXPECTED = np.load(os.path.join(FIXTURES, "expected.npz"))


def pytorch_output(key):
    """PyTorch's output, decoded from its uint16 codes (steps of 3.1e-5)."""
    return EXPECTED[key].astype(np.float64) / 32767.5 - 1.0


def fixed_input(size):
    """The input the fixtures' outputs were computed for, as a Keras batch (NHWC)."""
    return np.random.RandomState(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """A tiny dataset at 256x256 for calibration and fine-tuning."""
    return write_ab_folder(tmp_path_factory.mktemp("import") / "pairs", count=2, size=256)


@pytest.mark.parametrize(
    "file_name, size, modes",
    [
        ("unet_batch_zip.pth", 256, {"inference": "batch_eval", "export": "batch_per_image"}),
        ("unet_batch_legacy.pth", 256, {"inference": "batch_eval", "export": "batch_per_image"}),
        ("unet_instance_zip.pth", 64, {"inference": "instance_eval", "export": "instance_eval"}),
    ],
)
def test_imported_generators_compute_what_pytorch_computed(tmp_path, capsys, pairs, file_name, size, modes):
    workdir = tmp_path / "imported"
    status, out, err = run_command(capsys, "import", os.path.join(FIXTURES, file_name), "--workdir", workdir,
                                   "--dataset", pairs)  # fmt: skip
    assert status == 0, err
    assert "the discriminator starts fresh" in out
    generator, config = load_generator(str(workdir))  # generator.keras, stock layers
    assert config.dropout_placement == "authors" and generator.input_shape == (None, size, size, 3)
    for mode, key in modes.items():
        ours = translate(prepare(generator, mode), tf.constant(fixed_input(size)), mode)[0].numpy()
        assert np.abs(ours - pytorch_output(key)).max() < 1e-4, (mode, np.abs(ours - pytorch_output(key)).max())


def test_the_architecture_is_read_from_the_tensors():
    batch = importing.unet_layout(read_state_dict(os.path.join(FIXTURES, "unet_batch_legacy.pth")))
    assert (batch.depth, batch.filters, batch.norm, batch.biases) == (8, 2, "batch", "normless")
    instance = importing.unet_layout(read_state_dict(os.path.join(FIXTURES, "unet_instance_zip.pth")))
    assert (instance.depth, instance.filters, instance.norm, instance.biases) == (6, 2, "instance", "all")
    generator, _ = importing.generator_from_state_dict(read_state_dict(os.path.join(FIXTURES, "unet_batch_zip.pth")))
    # junyanz's dropout: the three 8x-filter blocks after the innermost one, not the paper's first three.
    assert [layer.name for layer in generator.layers if "dropout" in layer.name] == ["up2_dropout", "up3_dropout", "up4_dropout"]


def test_the_legacy_file_lacks_num_batches_tracked_and_reads_the_same():
    modern = read_state_dict(os.path.join(FIXTURES, "unet_batch_zip.pth"))
    legacy = read_state_dict(os.path.join(FIXTURES, "unet_batch_legacy.pth"))
    assert not any(name.endswith("num_batches_tracked") for name in legacy)
    assert set(modern) - set(legacy) == {name for name in modern if name.endswith("num_batches_tracked")}
    assert all(np.array_equal(modern[name], legacy[name]) for name in legacy)


class _System:
    """Pickles as a call of os.system, as a malicious .pth would."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _malicious(path, marker, legacy):
    payload = {"model.model.0.weight": _System(f"touch {marker}")}
    if legacy:
        with open(path, "wb") as file:
            for header in (LEGACY_MAGIC, 1001, {}):
                pickle.dump(header, file)
            pickle.dump(payload, file)
        return
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys, legacy):
    marker = tmp_path / "ran"
    _malicious(tmp_path / "evil.pth", marker, legacy)
    assert pickle.loads(pickle.dumps(_System("true"))) == 0  # the payload does run when unpickled freely
    refused(capsys, r"refusing .*evil\.pth: its pickle asks for posix\.system, which a state_dict of tensors never "
            r"holds; nothing from it was run", "import", tmp_path / "evil.pth", "--workdir", tmp_path / "run")  # fmt: skip
    assert not marker.exists() and not (tmp_path / "run").exists()


def _tensor_checkpoint(path, size, stride, storage_bytes=b"\0\0\0\0"):
    """A zip-format checkpoint of one float tensor with the size and stride given, pickled opcode by opcode.

    By hand, since pickling PyTorch's globals needs PyTorch.
    """

    def text(value):
        return b"X" + len(value).to_bytes(4, "little") + value.encode()

    def integers(values):
        return b"(" + b"".join(b"J" + value.to_bytes(4, "little", signed=True) for value in values) + b"t"

    storage = b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text("0") + text("cpu") + b"K\x01tQ"
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + b"K\x00" + integers(size) + integers(stride)
              + b"\x89ccollections\nOrderedDict\n)RtR")  # fmt: skip
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}" + text("model.model.0.weight") + tensor + b"s.")
        archive.writestr("archive/data/0", storage_bytes)


def test_a_tensor_that_claims_more_than_its_storage_is_refused(tmp_path):
    _tensor_checkpoint(tmp_path / "fine.pth", [1], [1])
    assert read_state_dict(str(tmp_path / "fine.pth"))["model.model.0.weight"].tolist() == [0.0]
    _tensor_checkpoint(tmp_path / "broadcast.pth", [100_000, 100_000], [0, 0])  # 40 GB from 4 bytes
    with pytest.raises(UsageError, match=r"holds more values than its storage's 1"):
        read_state_dict(str(tmp_path / "broadcast.pth"))
    _tensor_checkpoint(tmp_path / "outside.pth", [1], [1], storage_bytes=b"")
    with pytest.raises(UsageError, match=r"storage 0 holds 0 values of the 1 announced"):
        read_state_dict(str(tmp_path / "outside.pth"))


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda path: shutil.copy(os.path.join(FIXTURES, "unet_batch_zip.pth"), path) and os.truncate(path, 100_000),
         r"is not a readable PyTorch checkpoint \(truncated or corrupt"),
        (lambda path: shutil.copy(os.path.join(FIXTURES, "unet_batch_legacy.pth"), path) and os.truncate(path, 100_000),
         r"is not a readable PyTorch checkpoint \(truncated or corrupt: storage .* is cut short"),
        (lambda path: open(path, "w").write("not a checkpoint\n"), r"is not a readable PyTorch checkpoint"),
        (lambda path: shutil.copy(os.path.join(FIXTURES, "resnet_generator.pth"), path),
         r"is not a pix2pix U-Net generator: it holds a ResNet generator"),
        (lambda path: shutil.copy(os.path.join(FIXTURES, "patchgan.pth"), path),
         r"is not a pix2pix U-Net generator: it holds a PatchGAN discriminator \(its first convolution takes 6"),
        (lambda path: shutil.copy(os.path.join(FIXTURES, "cyclegan_pair.pth"), path),
         r"holds several networks \(G_A, G_B\): save and import one generator's state_dict"),
    ],
    ids=["truncated zip", "truncated legacy", "text", "resnet", "patchgan", "cyclegan pair"],
)  # fmt: skip
def test_a_damaged_or_other_checkpoint_is_one_line(tmp_path, capsys, make, pattern):
    make(str(tmp_path / "model.pth"))
    refused(capsys, pattern, "import", tmp_path / "model.pth", "--workdir", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_import_never_writes_over_a_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    refused(capsys, r"--workdir .*run exists and is not an empty folder", "import",
            os.path.join(FIXTURES, "unet_instance_zip.pth"), "--workdir", tmp_path / "run")  # fmt: skip
    assert os.listdir(tmp_path / "run") == ["notes.txt"]


@pytest.mark.slow
def test_an_imported_run_exports_and_fine_tunes(tmp_path, capsys, pairs):
    workdir = tmp_path / "imported"
    assert run_command(capsys, "import", os.path.join(FIXTURES, "unet_batch_zip.pth"), "--workdir", workdir,
                       "--dataset", pairs)[0] == 0  # fmt: skip
    status, out, err = run_command(capsys, "export", "--model", workdir, "--output", tmp_path / "exports",
                                   "--format", "saved_model,tflite")  # fmt: skip
    assert status == 0, err
    for kind in ("saved_model", "tflite_float32", "tflite_float16", "tflite_int8"):
        assert f"{kind}: " in out
    imported = [weight.numpy() for weight in load_generator(str(workdir))[0].trainable_weights]
    status, out, err = run_command(capsys, "fit", "--workdir", workdir, "--steps", "1")
    assert status == 0, err
    assert f"resuming {workdir} at step 0 of 1" in out
    tuned = [weight.numpy() for weight in load_generator(str(workdir))[0].trainable_weights]
    # One Adam step of about 2e-4 from the imported weights, not a fresh network (whose weights
    # differ from these by ~0.15); BatchNorm's moving statistics move further, and are left out.
    assert max(float(np.abs(a - b).max()) for a, b in zip(imported, tuned)) < 1e-3


@pytest.fixture
def models_server(tmp_path, monkeypatch):
    """A local HTTP server of the pretrained folder, named as the authors name their files."""
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(os.path.join(FIXTURES, "unet_instance_zip.pth"), folder / "day2night.pth")
    with open(os.path.join(FIXTURES, "unet_instance_zip.pth"), "rb") as file:
        (folder / "sat2map.pth").write_bytes(file.read()[:50_000])  # a download cut short
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *arguments: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("KERAS_PIX2PIX_MODELS_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield folder
    server.shutdown()


def test_a_pretrained_name_is_downloaded_once_and_checked_whole(tmp_path, capsys, models_server, pairs):
    data_dir = tmp_path / "data"
    status, out, err = run_command(capsys, "import", "day2night", "--workdir", tmp_path / "night", "--data-dir",
                                   data_dir, "--dataset", pairs)  # fmt: skip
    assert status == 0, err
    assert "downloading http://127.0.0.1" in out and "BtoA" in out
    assert os.path.isfile(importing.pretrained_path("day2night", str(data_dir)))
    os.remove(models_server / "day2night.pth")  # the second import reads the cached copy
    assert run_command(capsys, "import", "day2night", "--workdir", tmp_path / "again", "--data-dir", data_dir)[0] == 0
    refused(capsys, r"the download of .*sat2map\.pth is not a complete PyTorch checkpoint", "import", "sat2map",
            "--workdir", tmp_path / "map", "--data-dir", data_dir)  # fmt: skip
    assert not os.path.exists(importing.pretrained_path("sat2map", str(data_dir)))
    status, out, _ = run_command(capsys, "pretrained", "--data-dir", data_dir)
    assert status == 0 and [line.split()[0] for line in out.splitlines()] == list(importing.PRETRAINED_NAMES)
    assert "day2night" in out and "downloaded" in out.splitlines()[-1]


def test_a_manual_folder_is_read_as_the_download_would_be(tmp_path, capsys):
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(os.path.join(FIXTURES, "unet_instance_zip.pth"), manual / "edges2shoes.pth")
    status, out, err = run_command(capsys, "import", "edges2shoes", "--workdir", tmp_path / "shoes", "--manual-dir", manual)
    assert status == 0, err
    assert load_generator(str(tmp_path / "shoes"))[1].dataset == "edges2shoes"
    with pytest.raises(UsageError, match=r"--manual-dir .* holds no map2sat\.pth"):
        importing.import_checkpoint("map2sat", str(tmp_path / "sat"), manual_dir=str(manual))
