"""Full disks, memory bounds and files named like temporaries: the previous good state survives, nothing is left behind.

Full-disk cases run on a small tmpfs that is filled just before the write under test (they need
the right to mount, and skip without it), or, for TensorFlow's own checkpoint write, make that write
fail. Memory cases measure the peak RSS of a child process. Kills and signals are in
tests/test_signals.py: the two files run on two workers under --dist loadfile.
"""

import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, huge_png, png, refused, run_command, snapshot, temporaries, tiny_config, write_ab_folder

from keras_pix2pix import checkpoints, config, exports, train
from keras_pix2pix.translation import load_generator

pytestmark = pytest.mark.slow


# --- a disk that fills ------------------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path):
    """A 48 MB tmpfs at tmp_path/disk, unmounted afterwards; skips where mounting is not allowed."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder):
    """Writes a filler file until the disk is full; returns its path (remove it to free the disk)."""
    path = os.path.join(folder, "filler")
    with open(path, "wb", buffering=0) as file:  # unbuffered: no flush at close to fail
        for size in (1 << 20, 4096, 1):
            try:
                while file.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return path


def filling_before(monkeypatch, owner, name, folder):
    """Makes owner.name fill the disk at folder before it runs; returns a list that gets the filler's path."""
    real = getattr(owner, name)
    filled = []

    def wrapper(*arguments, **keywords):
        filled.append(fill(folder))
        return real(*arguments, **keywords)

    monkeypatch.setattr(owner, name, wrapper)
    return filled


def full(name):
    """The one line of a full disk while writing the file called name."""
    return (
        rf"could not write .*{re.escape(name)}\)?: No space left on device \(.* MB free there\); "
        r"free some space and run the command again"
    )


def test_full_disk_while_writing_generator_keras(trained, disk, monkeypatch, capsys):
    workdir = str(disk / "run")
    subprocess.run(["cp", "-a", trained[1], workdir], check=True)
    before = snapshot(workdir)["/".join([workdir, "generator.keras"])]
    filled = filling_before(monkeypatch, keras.Model, "save", disk)
    refused(capsys, full("run/generator.keras"), "fit", "--workdir", workdir, "--steps", "3", status=1)
    assert snapshot(workdir)[os.path.join(workdir, "generator.keras")] == before
    assert temporaries(disk) == []
    monkeypatch.undo()
    os.remove(filled[0])
    status, out, err = run_command(capsys, "fit", "--workdir", workdir, "--steps", "3")
    assert status == 0, err
    assert "nothing to do" not in out  # generator.keras was older than the last checkpoint: written now
    assert snapshot(workdir)[os.path.join(workdir, "generator.keras")] != before
    assert keras.models.load_model(os.path.join(workdir, "generator.keras")).input_shape == (None, 32, 32, 3)
    assert temporaries(disk) == []


def test_full_disk_while_writing_config_json(trained, disk, monkeypatch, capsys):
    workdir = str(disk / "run")
    subprocess.run(["cp", "-a", trained[1], workdir], check=True)
    before = snapshot(workdir)
    filled = filling_before(monkeypatch, config.Config, "save", disk)
    refused(capsys, full("run/config.json"), "fit", "--workdir", workdir, "--steps", "3", status=1)
    assert snapshot(workdir) == before and temporaries(disk) == []
    monkeypatch.undo()
    os.remove(filled[0])
    status, out, err = run_command(capsys, "fit", "--workdir", workdir, "--steps", "3")
    assert status == 0 and f"resuming {workdir} at step 2 of 3" in out, err
    assert temporaries(disk) == []


def test_full_disk_while_writing_an_export(trained, disk, monkeypatch, capsys):
    output = disk / "exports"
    common = ["export", "--model", trained[1], "--output", output, "--format", "tflite", "--quantize", "none"]
    assert run_command(capsys, *common)[0] == 0
    before = snapshot(output)
    filled = filling_before(monkeypatch, exports, "run_tflite", disk)
    refused(capsys, full("generator_float32.tflite"), *common, "--version", "2", status=1)
    assert snapshot(output) == before and temporaries(disk) == []
    assert sorted(os.listdir(output / "run" / "tflite")) == ["1"]
    monkeypatch.undo()
    os.remove(filled[0])
    assert run_command(capsys, *common, "--version", "2")[0] == 0
    assert sorted(os.listdir(output / "run" / "tflite")) == ["1", "2"] and temporaries(disk) == []


def test_full_disk_while_writing_a_prediction(trained, disk, monkeypatch, capsys, tmp_path):
    png(tmp_path / "x.png")
    output = disk / "out"
    command = ["predict", "--model", trained[1], tmp_path / "x.png", "--output", output, "--overwrite"]
    assert run_command(capsys, *command)[0] == 0
    before = snapshot(output)
    filled = filling_before(monkeypatch, tf.io, "encode_png", disk)
    refused(capsys, full("out/x.png"), *command, "--seed", "3", status=1)
    assert snapshot(output) == before and temporaries(disk) == []
    monkeypatch.undo()
    os.remove(filled[0])
    assert run_command(capsys, *command, "--seed", "3")[0] == 0 and temporaries(disk) == []


def test_full_disk_while_tensorflow_writes_a_checkpoint_is_named_and_leaves_no_half_checkpoint(trained, disk, capsys):
    workdir = str(disk / "run")
    subprocess.run(["cp", "-a", trained[1], workdir], check=True)
    fill(disk)  # config.json is refused before training; a little room lets it through to the checkpoint
    os.truncate(os.path.join(disk, "filler"), os.path.getsize(os.path.join(disk, "filler")) - 64 * 1024)
    before = snapshot(os.path.join(workdir, "checkpoints"))
    line = refused(capsys, r"could not write .*/run/checkpoints: No space left on device \(.* MB free there\); free some "
                   r"space and run the command again", "fit", "--workdir", workdir, "--steps", "3", status=1)
    assert "function_node" not in line and "Op:" not in line  # TensorFlow's internals stay out of the line
    assert snapshot(os.path.join(workdir, "checkpoints")) == before and temporaries(disk) == []
    assert not [name for name in os.listdir(os.path.join(workdir, "checkpoints")) if name.endswith("_temp")]


def test_full_disk_during_a_saved_model_export_is_named_and_leaves_nothing(trained, disk, capsys):
    fill(disk)
    refused(capsys, r"could not write .*/exports: No space left on device", "export", "--model", trained[1], "--output",
            disk / "exports", "--format", "saved_model", status=1)
    assert sorted(os.listdir(disk)) == ["filler"]  # no export folder, no staging


def test_full_disk_during_import_and_evaluate_is_named_and_leaves_nothing(trained, disk, capsys):
    pth = os.path.join(os.path.dirname(__file__), "fixtures", "pytorch", "unet_instance_zip.pth")
    fill(disk)
    refused(capsys, r"could not write .*No space left on device", "import", pth, "--workdir", disk / "imported",
            "--image-size", "64", status=1)
    refused(capsys, r"could not write .*/report.*: No space left on device", "evaluate", "--model", trained[1],
            "--dataset", trained[0], "--split", "val", "--output", disk / "report", status=1)
    assert sorted(os.listdir(disk)) == ["filler"]


def _checkpoint_bytes(workdir, name):
    folder = os.path.join(workdir, "checkpoints")
    return {file: open(os.path.join(folder, file), "rb").read() for file in os.listdir(folder) if file.startswith(name)}


@pytest.mark.slow
def test_failed_checkpoint_write_leaves_the_previous_one_restorable(tmp_path, monkeypatch):
    folder = write_ab_folder(tmp_path / "pairs", count=3)
    workdir = str(tmp_path / "run")
    train.fit(tiny_config(dataset=folder, steps=2, save_every=2), workdir, verbose=False)
    before = _checkpoint_bytes(workdir, "ckpt-2")
    real_save = tf.train.CheckpointManager.save

    def full_disk(self, checkpoint_number=None, check_interval=True, options=None):
        # Half a data file on disk, then the device fills up. Injected at CheckpointManager.save,
        # TensorFlow's public method that checkpoints.save calls; TensorFlow's own half-written
        # shards on a real full disk are test_full_disk_while_tensorflow_writes_a_checkpoint_...'s.
        with open(os.path.join(self.directory, f"ckpt-{checkpoint_number}.data-00000-of-00001"), "wb") as file:
            file.write(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    pattern = r"could not write the checkpoint of step 4 .*No space left on device.*ckpt-2, is untouched"
    with pytest.raises(checkpoints.CheckpointWriteError, match=pattern):
        train.fit(tiny_config(dataset=folder, steps=4, save_every=2), workdir, verbose=False)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")
    assert _checkpoint_bytes(workdir, "ckpt-2") == before
    os.remove(os.path.join(workdir, "generator.keras"))
    generator, _ = load_generator(workdir)  # restores from ckpt-2
    assert all(np.isfinite(weight.numpy()).all() for weight in generator.weights)
    # And training resumes from it.
    train.fit(tiny_config(dataset=folder, steps=4, save_every=2), workdir, verbose=False)
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-4")


# --- memory bounded by the header, measured ---------------------------------------------------------


MEASURED = textwrap.dedent("""
    import resource, subprocess, sys
    result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.returncode, round(peak), result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
""")


def peak_megabytes(*arguments):
    """(exit status, peak RSS in MB, last stderr line) of a command run in a fresh child process."""
    result = subprocess.run([sys.executable, "-c", MEASURED, *map(str, arguments)], capture_output=True, text=True,
                            timeout=300)
    status, peak, line = result.stdout.strip().split(" ", 2)
    return int(status), int(peak), line


def test_fit_and_predict_refuse_a_20000_pixel_square_png_in_under_1_gb(trained, tmp_path, huge):
    folder = tmp_path / "pairs"
    folder.mkdir()
    os.symlink(huge, folder / "huge.png")
    command = [sys.executable, "-m", "keras_pix2pix"]
    status, peak, line = peak_megabytes(*command, "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY)
    assert status == 2 and "huge.png is 20000x20000 (400 megapixels), over the limit of 50 megapixels" in line
    assert peak < 1024, f"fit peaked at {peak} MB"
    status, peak, line = peak_megabytes(*command, "predict", "--model", trained[1], huge, "--output", tmp_path / "out")
    assert status == 2 and "huge.png is 20000x20000 (400 megapixels)" in line
    assert peak < 1024, f"predict peaked at {peak} MB"


SERVE = textwrap.dedent("""
    import sys
    import tensorflow as tf
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    try:
        serve(image_bytes=tf.constant([open(sys.argv[2], "rb").read()]))
    except tf.errors.InvalidArgumentError as error:
        lines = str(error).splitlines()
        sys.stderr.write("refused: " + next((line for line in lines if "pixels" in line), lines[0]) + "\\n")
        sys.exit(2)
""")


def test_the_serving_signature_refuses_a_10000_pixel_square_png_in_under_1_gb(trained, tmp_path):
    image = huge_png(tmp_path / "large.png", 10000, 10000)
    folder = str(tmp_path / "saved_model")
    exports.write_saved_model(keras.models.load_model(os.path.join(trained[1], "generator.keras")), folder)
    status, peak, line = peak_megabytes(sys.executable, "-c", SERVE, folder, image)
    assert status == 2 and "larger than the limit of 50000000 pixels" in line, line
    assert peak < 1024, f"the serving signature peaked at {peak} MB"


# --- files named like temporaries -------------------------------------------------------------------


# Named like every temporary this package has ever written (files.replacing before and after the
# package's mark, export staging, TensorFlow's checkpoint temporaries), and like ours without the
# marker that proves a staging folder: none of them is the package's to remove.
LOOK_ALIKE_FILES = [".thesis.tmp-999999.tex", ".report.tmp-777777.md", ".generator.tmp-999999999.keras",
                    "checkpoint.tmp0123abcd", ".notes.tmp-999999"]


LOOK_ALIKE_FOLDERS = [".photos.tmp-888888", ".dataset.tmp-31337", ".export-run.tmp-999999999", "ckpt-9_temp",
                      ".photos.tmp-keras-pix2pix-999999999"]


def plant(folder):
    """Writes the look-alikes into folder; returns the folder."""
    os.makedirs(folder, exist_ok=True)
    for name in LOOK_ALIKE_FILES:
        with open(os.path.join(folder, name), "w") as file:
            file.write(f"the user's {name}")
    for name in LOOK_ALIKE_FOLDERS:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        with open(os.path.join(folder, name, "kept.txt"), "w") as file:
            file.write(f"the user's {name}/kept.txt")
    return folder


def look_alikes(*folders):
    """{path: SHA-256} of every planted file still there."""
    planted = LOOK_ALIKE_FILES + [os.path.join(name, "kept.txt") for name in LOOK_ALIKE_FOLDERS]
    paths = [os.path.join(folder, name) for folder in folders for name in planted]
    return {path: digest for path, digest in snapshot(*folders).items() if path in paths}


def test_files_named_like_temporaries_survive_every_command(trained, demo_data_dir, tmp_path, capsys, monkeypatch):
    here = plant(str(tmp_path / "here"))  # the current folder, and the parent of every folder named below
    monkeypatch.chdir(here)
    data_dir = plant(str(tmp_path / "data_dir"))
    subprocess.run(["cp", "-a", f"{demo_data_dir}/.", data_dir], check=True)
    dataset = plant(str(tmp_path / "pairs"))
    subprocess.run(["cp", "-a", f"{trained[0]}/.", dataset], check=True)
    folders = [here, data_dir, dataset, *(plant(os.path.join(here, name)) for name in ("run", "out", "report", "exports"))]
    before = look_alikes(*folders)
    assert len(before) == len(folders) * (len(LOOK_ALIKE_FILES) + len(LOOK_ALIKE_FOLDERS))
    png(os.path.join(here, "x.png"))
    pth = os.path.join(os.path.dirname(__file__), "fixtures", "pytorch", "unet_instance_zip.pth")
    commands = [
        ["fit", "--dataset", dataset, "--workdir", "run", *TINY, "--steps", "2"],
        ["fit", "--workdir", "run", "--steps", "3"],  # a resume
        ["fit", "--dataset", "demo", "--data-dir", data_dir, "--workdir", "demo_run", *TINY, "--steps", "1"],
        ["predict", "--model", "run", "x.png", "--output", "out"],
        ["evaluate", "--model", "run", "--dataset", dataset, "--split", "val", "--output", "report"],
        ["export", "--model", "run", "--output", "exports", "--format", "tflite", "--quantize", "none"],
        ["import", pth, "--workdir", "imported", "--image-size", "64"],  # staged inside imported/, not in here/
    ]
    for command in commands:
        status, out, err = run_command(capsys, *command)
        assert status == 0, (command, err)
        assert "removed" not in out + err, (command, out + err)
    assert look_alikes(*folders) == before
    assert not [path for path in temporaries(here) if "tmp-keras-pix2pix" in path and "kept.txt" not in path
                and not path.endswith(".photos.tmp-keras-pix2pix-999999999")]  # nothing of ours left either
