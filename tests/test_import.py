"""Importing the authors' pix2pix generators (junyanz's .pth state_dicts) without PyTorch.

The fixtures were made by real PyTorch 2.13.0 (tests/fixtures/pytorch/make_checkpoints.py): junyanz's
UnetGenerator at a tiny width with random weights and running statistics, in the zip and legacy
formats, and PyTorch's own outputs for a fixed input.
"""

import functools
import http.server
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import refused, run_command, write_ab_folder

from keras_pix2pix import importing, state_dicts
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
                                   "--dataset", pairs)
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
            r"holds; nothing from it was run", "import", tmp_path / "evil.pth", "--workdir", tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()


def _text(value):
    return b"X" + len(value).to_bytes(4, "little") + value.encode()


def _integers(values):
    return b"(" + b"".join(b"J" + value.to_bytes(4, "little", signed=True) for value in values) + b"t"


def _crafted_checkpoint(path, tensors, storages, pickled=None):
    """A zip-format checkpoint, pickled opcode by opcode as torch.save writes it (pickling torch's globals needs torch).

    Args:
        path: the file to write.
        tensors: name -> (storage key, storage type such as "FloatStorage", its announced count, size, stride).
        storages: storage key -> its bytes, deflated in the zip.
        pickled: ARCHIVE/data.pkl itself, in place of the state_dict of `tensors`.
    """
    items = b""
    for name, (key, storage_type, count, size, stride) in tensors.items():
        storage = (b"(" + _text("storage") + f"ctorch\n{storage_type}\n".encode() + _text(key) + _text("cpu") + b"J"
                   + count.to_bytes(4, "little") + b"tQ")
        items += (_text(name) + b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + b"K\x00" + _integers(size)
                  + _integers(stride) + b"\x89ccollections\nOrderedDict\n)RtR")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickled or b"\x80\x02ccollections\nOrderedDict\n)R(" + items + b"u.")
        for key, values in storages.items():
            archive.writestr(f"archive/data/{key}", values)


def _saved(path, state):
    """Writes a state_dict of numpy arrays as torch.save would, each tensor in a storage of its own; returns path."""
    storage_types = {np.dtype(dtype): name for name, dtype in state_dicts.STORAGE_DTYPES.items()}
    tensors, storages = {}, {}
    for index, (name, value) in enumerate(state.items()):
        value = np.array(value, order="C")  # not ascontiguousarray, which makes a scalar 1-D
        stride = [step // value.itemsize for step in value.strides]
        tensors[name] = (str(index), storage_types[value.dtype], value.size, value.shape, stride)
        storages[str(index)] = value.astype(value.dtype.newbyteorder("<")).tobytes()
    _crafted_checkpoint(path, tensors, storages)
    return path


def _tensor_checkpoint(path, size, stride, storage_bytes=b"\0\0\0\0"):
    """A zip-format checkpoint of one float tensor with the size and stride given, in a storage of one value."""
    _crafted_checkpoint(path, {"model.model.0.weight": ("0", "FloatStorage", 1, size, stride)}, {"0": storage_bytes})


def test_a_tensor_that_claims_more_than_its_storage_is_refused(tmp_path):
    _tensor_checkpoint(tmp_path / "fine.pth", [1], [1])
    assert read_state_dict(str(tmp_path / "fine.pth"))["model.model.0.weight"].tolist() == [0.0]
    _tensor_checkpoint(tmp_path / "broadcast.pth", [100_000, 100_000], [0, 0])  # 40 GB from 4 bytes
    with pytest.raises(UsageError, match=r"holds more values than its storage's 1"):
        read_state_dict(str(tmp_path / "broadcast.pth"))
    _tensor_checkpoint(tmp_path / "outside.pth", [1], [1], storage_bytes=b"")
    with pytest.raises(UsageError, match=r"storage 0 holds 0 values of the 1 announced"):
        read_state_dict(str(tmp_path / "outside.pth"))


def _traced_peak(function, *arguments):
    """The most memory Python and numpy held while function ran (tracemalloc sees numpy's arrays too), and its result."""
    tracemalloc.start()
    try:
        result = function(*arguments)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_a_storage_that_many_keys_view_is_held_once(tmp_path):
    values = np.arange(2**20, dtype=np.float32)  # 4 MB, which 50 keys view whole: 200 MB were each copied
    tensors = {f"model.{index}.weight": ("0", "FloatStorage", values.size, [values.size], [1]) for index in range(50)}
    _crafted_checkpoint(tmp_path / "shared.pth", tensors, {"0": values.tobytes()})
    peak, state = _traced_peak(read_state_dict, str(tmp_path / "shared.pth"))
    assert peak < 4 * values.nbytes, peak
    assert all(np.array_equal(array, values) for array in state.values())
    assert np.shares_memory(state["model.0.weight"], state["model.49.weight"])


def _refused_reading(path):
    with pytest.raises(UsageError) as refusal:
        read_state_dict(str(path))
    return str(refusal.value)


@pytest.mark.parametrize(
    "tensors, storages, pickled, pattern",
    [
        # 100 keys view one storage of 64 MB: 6.7 GB of tensors from a few kilobytes.
        ({f"model.{index}.weight": ("0", "FloatStorage", 2**24, [2**24], [1]) for index in range(100)}, {"0": b""}, None,
         r"refusing .*many\.pth: its 100 tensors add up to 6,710,886,400 bytes, more than the 536,870,912 any pix2pix"),
        # One storage past the cap, refused from its announced size: its member holds 4 bytes.
        ({"model.0.weight": ("0", "FloatStorage", state_dicts.MAX_CHECKPOINT_BYTES // 4 + 1, [1], [1])}, {"0": b"\0" * 4},
         None,
         r"its storage 0 announces 536,870,916 bytes, more than the 536,870,912"),
        # A 9-byte pickle whose PUT names memo entry 2**24: the C unpickler allocates 256 MB for it.
        ({}, {}, b"\x80\x02Nr" + (2**24).to_bytes(4, "little") + b".", r"holds a NoneType, not a state_dict of tensors"),
        ({}, {}, b"\x80\x02" + b"N0" * 2**23 + b"N.", r"archive/data\.pkl inflates to more than 16777216 bytes"),
    ],
    ids=["one storage, many keys", "one storage past the cap", "memo index", "pickle past its cap"],
)
def test_what_a_file_announces_is_refused_before_it_is_inflated(tmp_path, tensors, storages, pickled, pattern):
    _crafted_checkpoint(tmp_path / "many.pth", tensors, storages, pickled)
    assert os.path.getsize(tmp_path / "many.pth") < 100_000
    peak, message = _traced_peak(_refused_reading, tmp_path / "many.pth")
    assert peak < 2**20, peak
    assert re.search(pattern, message), message


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from Linux's /proc")
def test_a_tiny_file_naming_one_storage_from_many_keys_is_refused_in_little_memory(tmp_path):
    # The hostile tester's file: one deflated storage of 64 MB of zeros, which 100 keys view.
    tensors = {f"model.model.{index}.weight": ("0", "FloatStorage", 2**24, [2**24], [1]) for index in range(100)}
    _crafted_checkpoint(tmp_path / "tiny.pth", tensors, {"0": bytes(2**26)})
    assert os.path.getsize(tmp_path / "tiny.pth") < 100_000
    # VmHWM, the peak of the child's own memory: getrusage's ru_maxrss would also count this
    # process's, which a child spawned by vfork inherits.
    script = (
        "import sys\n"
        "from keras_pix2pix import cli\n"
        "status = cli.main(sys.argv[1:])\n"
        "peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
        "print(status, peak)\n"  # in kB
    )
    result = subprocess.run([sys.executable, "-c", script, "import", "tiny.pth", "--workdir", "run"], capture_output=True,
                            text=True, check=False, cwd=tmp_path,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    status, peak_kilobytes = map(int, result.stdout.split())
    lines = [line for line in result.stderr.splitlines() if line.startswith("keras-pix2pix:")]
    assert status == 2 and len(lines) == 1, result.stderr
    # Python with TensorFlow imported holds some 650 MB here; a copy of the storage per key was 6.4 GB more.
    assert peak_kilobytes < 2**20, peak_kilobytes
    assert re.search(r"refusing tiny\.pth: its 100 tensors add up to 6,710,886,400 bytes", lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


@functools.cache
def _fixture_state(file_name):
    return read_state_dict(os.path.join(FIXTURES, file_name))


def _malformed(file_name, **changes):
    """A fixture's state_dict with tensors replaced (name -> value) or, where the value is None, left out."""
    state = dict(_fixture_state(file_name))
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            del state[name]
        else:
            state[name] = value
    return state


BATCH, INSTANCE = "unet_batch_zip.pth", "unet_instance_zip.pth"
BATCH_UNET = r"a U-Net of 8 levels, 2 base filters, batch norm and biases on the output convolution"
INSTANCE_UNET = r"a U-Net of 6 levels, 2 base filters, instance norm and biases on every convolution"
FIRST_CONVOLUTION = r"a U-Net's first convolution"
ZEROS = functools.partial(np.zeros, dtype=np.float32)
FIRST, SECOND, NORM = "model__model__0__weight", "model__model__1__model__1__weight", "model__model__1__model__2__"
INNERMOST_UP = "model__model__1__model__" + "3__model__" * 6 + "3__weight"


@pytest.mark.parametrize(
    "state, pattern",
    [
        (_malformed(BATCH, **{FIRST: ZEROS(96)}),
         rf"model\.model\.0\.weight has shape \(96,\), where {FIRST_CONVOLUTION} has \(filters, input channels, 4, 4\)"),
        (_malformed(BATCH, **{FIRST: ZEROS((2, 3, 3, 3))}), r"model\.model\.0\.weight has shape \(2, 3, 3, 3\), where"),
        (_malformed(BATCH, **{FIRST: ZEROS((0, 3, 4, 4))}), r"model\.model\.0\.weight has shape \(0, 3, 4, 4\), where"),
        (_malformed(BATCH, **{FIRST: 1.0}), rf"model\.model\.0\.weight is a float, where {FIRST_CONVOLUTION} has an array"),
        (_malformed(BATCH, **{FIRST: np.ones((2, 3, 4, 4), bool)}),
         rf"model\.model\.0\.weight holds bool values, where {FIRST_CONVOLUTION} has floating-point ones"),
        (_malformed(BATCH, **{NORM + "running_var": None}),
         rf"model\.model\.1\.model\.2\.running_var is missing, where {BATCH_UNET} has one of shape \(4,\)"),
        (_malformed(BATCH, **{NORM + "running_var": ZEROS(())}),
         rf"model\.model\.1\.model\.2\.running_var has shape \(\), where {BATCH_UNET} has \(4,\)"),
        (_malformed(BATCH, **{NORM + "running_mean": np.zeros(4, np.int64)}),
         rf"model\.model\.1\.model\.2\.running_mean holds int64 values, where {BATCH_UNET} has floating-point ones"),
        (_malformed(BATCH, **{SECOND: ZEROS((4, 32))}),
         rf"model\.model\.1\.model\.1\.weight has shape \(4, 32\), where {BATCH_UNET} has \(4, 2, 4, 4\)"),
        (_malformed(BATCH, **{SECOND: ZEROS((4, 3, 4, 4))}), r"model\.model\.1\.model\.1\.weight has shape \(4, 3, 4, 4\)"),
        (_malformed(BATCH, **{SECOND: ZEROS((4, 2, 4, 4)).tolist()}),
         rf"model\.model\.1\.model\.1\.weight is a list, where {BATCH_UNET} has an array of shape \(4, 2, 4, 4\)"),
        (_malformed(BATCH, model__model__3__weight=ZEROS((6, 3, 4, 4))),
         rf"model\.model\.3\.weight has shape \(6, 3, 4, 4\), where {BATCH_UNET} has \(4, 3, 4, 4\)"),
        (_malformed(BATCH, **{INNERMOST_UP: None}),
         rf"model\.model\.1(\.model\.3){{7}}\.weight is missing, where {BATCH_UNET} has one of shape \(16, 16, 4, 4\)"),
        (_malformed(BATCH, model__model__1__model__3__model__1__bias=ZEROS(8)),
         rf"model\.model\.1\.model\.3\.model\.1\.bias is no tensor of {BATCH_UNET}$"),
        (_malformed(BATCH, model__model__1__model__7__weight=ZEROS(4), model__model__9__weight=ZEROS(4)),
         rf"model\.model\.1\.model\.7\.weight is no tensor of {BATCH_UNET} \(nor are 1 more\)"),
        (_malformed(INSTANCE, model__model__1__model__5__bias=None),
         rf"model\.model\.1\.model\.5\.bias is missing, where {INSTANCE_UNET} has one of shape \(2,\)"),
        (_malformed(INSTANCE, model__model__1__model__2__num_batches_tracked=np.array(3)),
         rf"model\.model\.1\.model\.2\.num_batches_tracked is no tensor of {INSTANCE_UNET}"),
    ],
    ids=["first conv 1-D", "first conv 3x3", "no filters", "a number", "bool", "no running_var", "scalar statistic",
         "integer statistic", "conv 2-D", "channels that do not chain", "a list", "output conv", "no innermost up conv",
         "a bias batch norm cancels", "unknown tensors", "instance: no bias", "instance: counter"],
)
def test_a_malformed_state_dict_is_refused_naming_the_tensor(state, pattern):
    with pytest.raises(UsageError, match=rf"^the checkpoint is not a pix2pix U-Net generator: {pattern}") as refusal:
        importing.generator_from_state_dict(state)
    assert "\n" not in str(refusal.value)


def test_the_fixtures_pass_the_checks_in_any_float_precision():
    for file_name in (BATCH, INSTANCE):
        state = _fixture_state(file_name)
        for dtype in (np.float16, np.float64):
            importing.check_state_dict({name: value.astype(dtype) for name, value in state.items()},
                                       importing.unet_layout(state))


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({FIRST: ZEROS(96)}, r"model\.model\.0\.weight has shape \(96,\)"),  # was an IndexError
        ({NORM + "running_var": None}, r"model\.model\.1\.model\.2\.running_var is missing"),  # was a KeyError
    ],
)
def test_a_malformed_checkpoint_is_one_line_through_the_command_line(tmp_path, capsys, changes, pattern):
    state = _malformed(BATCH, **changes)
    path = _saved(tmp_path / "malformed.pth", state)
    assert all(np.array_equal(read_state_dict(str(path))[name], value) for name, value in state.items())
    status, _, err = run_command(capsys, "import", path, "--workdir", tmp_path / "run")
    assert status == 2 and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(rf"^keras-pix2pix: error: .*malformed\.pth is not a pix2pix U-Net generator: {pattern}", err), err
    assert not (tmp_path / "run").exists()


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
)
def test_a_damaged_or_other_checkpoint_is_one_line(tmp_path, capsys, make, pattern):
    make(str(tmp_path / "model.pth"))
    refused(capsys, pattern, "import", tmp_path / "model.pth", "--workdir", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_import_never_writes_over_a_run(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    refused(capsys, r"--workdir .*run exists and is not an empty folder", "import",
            os.path.join(FIXTURES, "unet_instance_zip.pth"), "--workdir", tmp_path / "run")
    assert os.listdir(tmp_path / "run") == ["notes.txt"]


@pytest.mark.slow
def test_an_imported_run_exports_and_fine_tunes(tmp_path, capsys, pairs):
    workdir = tmp_path / "imported"
    assert run_command(capsys, "import", os.path.join(FIXTURES, "unet_batch_zip.pth"), "--workdir", workdir,
                       "--dataset", pairs)[0] == 0
    status, out, err = run_command(capsys, "export", "--model", workdir, "--output", tmp_path / "exports",
                                   "--format", "saved_model,tflite", "--quantize", "none")
    # One TFLite form is enough here: the quantized ones of a full-size U-Net take a minute to
    # calibrate, and test_export covers each of them on a small generator.
    assert status == 0, err
    for kind in ("saved_model", "tflite_float32"):
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
                                   data_dir, "--dataset", pairs)
    assert status == 0, err
    assert "downloading http://127.0.0.1" in out and "BtoA" in out
    assert os.path.isfile(importing.pretrained_path("day2night", str(data_dir)))
    os.remove(models_server / "day2night.pth")  # the second import reads the cached copy
    assert run_command(capsys, "import", "day2night", "--workdir", tmp_path / "again", "--data-dir", data_dir)[0] == 0
    refused(capsys, r"the download of .*sat2map\.pth is not a complete PyTorch checkpoint", "import", "sat2map",
            "--workdir", tmp_path / "map", "--data-dir", data_dir)
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
