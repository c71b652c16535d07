"""Kills, full disks and huge images: the previous good state survives, nothing is left behind.

Full-disk cases run on a small tmpfs that is filled just before the write under test (they need
the right to mount, and skip without it); kill cases run a command in a child process that
SIGKILLs itself in the middle of the write, then run the command again. Memory cases measure the
peak RSS of a child process.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import keras
import pytest
import tensorflow as tf
from conftest import TINY, huge_png, png, refused, run_command, snapshot

from keras_pix2pix import config, exports, translation

pytestmark = pytest.mark.slow


def temporaries(folder):
    """Temporary files and folders (files.replacing's, and export staging) anywhere under folder."""
    found = []
    for root, folders, names in os.walk(folder):
        found += [os.path.join(root, name) for name in folders + names if ".tmp-" in name]
    return found


# --- a disk that fills ---------------------------------------------------------------------------


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
    return rf"could not write .*{re.escape(name)}\)?: No space left on device \(.* MB free there\); free some space and run the command again"


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
                   r"space and run the command again", "fit", "--workdir", workdir, "--steps", "3", status=1)  # fmt: skip
    assert "function_node" not in line and "Op:" not in line  # TensorFlow's internals stay out of the line
    assert snapshot(os.path.join(workdir, "checkpoints")) == before and temporaries(disk) == []
    assert not [name for name in os.listdir(os.path.join(workdir, "checkpoints")) if name.endswith("_temp")]


def test_full_disk_during_a_saved_model_export_is_named_and_leaves_nothing(trained, disk, capsys):
    fill(disk)
    refused(capsys, r"could not write .*/exports: No space left on device", "export", "--model", trained[1], "--output",
            disk / "exports", "--format", "saved_model", status=1)  # fmt: skip
    assert sorted(os.listdir(disk)) == ["filler"]  # no export folder, no staging


def test_full_disk_during_import_and_evaluate_is_named_and_leaves_nothing(trained, disk, capsys):
    pth = os.path.join(os.path.dirname(__file__), "fixtures", "pytorch", "unet_instance_zip.pth")
    fill(disk)
    refused(capsys, r"could not write .*No space left on device", "import", pth, "--workdir", disk / "imported",
            "--image-size", "64", status=1)  # fmt: skip
    refused(capsys, r"could not write .*/report.*: No space left on device", "evaluate", "--model", trained[1],
            "--dataset", trained[0], "--split", "val", "--output", disk / "report", status=1)  # fmt: skip
    assert sorted(os.listdir(disk)) == ["filler"]


# --- a kill in the middle of a write -------------------------------------------------------------

# Each child patches one writer to SIGKILL the process part-way, then runs the command line.
KILLERS = {
    "generator.keras": """
        import keras
        def save(self, path, *arguments, **keywords):
            open(path, "wb").write(b"PK half a zip")
            os.kill(os.getpid(), signal.SIGKILL)
        keras.Model.save = save
    """,
    # config.json and predictions: killed once the temporary file is written, before its rename.
    "config.json": """
        os.fsync = lambda descriptor: os.kill(os.getpid(), signal.SIGKILL)
    """,
    "prediction": """
        os.fsync = lambda descriptor: os.kill(os.getpid(), signal.SIGKILL)
    """,
    "export": """
        real_replace = os.replace
        def replace(source, destination):
            if ".export-" in str(source):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(source, destination)
        os.replace = replace
    """,
}


def killed(what, arguments):
    script = "import os, signal, sys\n" + textwrap.dedent(KILLERS[what]) + textwrap.dedent(f"""
        from keras_pix2pix.cli import main
        sys.exit(main({[str(argument) for argument in arguments]!r}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]


@pytest.mark.parametrize("what", ["generator.keras", "config.json"])
def test_a_kill_while_writing_a_run_file_keeps_the_previous_one(trained, tmp_path, capsys, what):
    workdir = str(tmp_path / "run")
    subprocess.run(["cp", "-a", trained[1], workdir], check=True)
    before = snapshot(workdir)
    killed(what, ["fit", "--workdir", workdir, "--steps", "3"])
    after = snapshot(workdir)
    assert after[os.path.join(workdir, what)] == before[os.path.join(workdir, what)]
    assert temporaries(workdir)  # the kill left its temporary file ...
    status, out, err = run_command(capsys, "fit", "--workdir", workdir, "--steps", "3")
    assert status == 0, err
    assert temporaries(workdir) == []  # ... and the next run swept it
    generator, saved = translation.load_generator(workdir)
    assert saved.steps == 3 and generator.input_shape == (None, 32, 32, 3)


def test_a_kill_while_writing_a_prediction_keeps_the_previous_one(trained, tmp_path, capsys):
    png(tmp_path / "x.png")
    output = tmp_path / "out"
    command = ["predict", "--model", trained[1], tmp_path / "x.png", "--output", output, "--overwrite"]
    assert run_command(capsys, *command)[0] == 0
    before = snapshot(output)
    killed("prediction", [*command, "--seed", "5"])
    assert {path: digest for path, digest in snapshot(output).items() if ".tmp-" not in path} == before
    assert temporaries(output)
    assert run_command(capsys, *command, "--seed", "5")[0] == 0
    assert temporaries(output) == []


def test_a_kill_while_moving_an_export_into_place_keeps_the_previous_one(trained, tmp_path, capsys):
    output = tmp_path / "exports"
    command = ["export", "--model", trained[1], "--output", output, "--format", "tflite", "--quantize", "none"]
    assert run_command(capsys, *command)[0] == 0
    before = snapshot(output)
    killed("export", [*command, "--version", "2"])
    assert {path: digest for path, digest in snapshot(output).items() if ".tmp-" not in path} == before
    assert temporaries(output)
    assert run_command(capsys, *command, "--version", "2")[0] == 0
    assert temporaries(output) == [] and sorted(os.listdir(output / "run" / "tflite")) == ["1", "2"]


# --- SIGTERM at start-up, and two fits on one work directory ------------------------------------

SLOW_START = textwrap.dedent("""
    import sys, time
    from keras_pix2pix import datasets
    from keras_pix2pix.cli import main
    real = datasets.check_pairs
    def slow(*arguments, **keywords):
        print("checking", flush=True)
        time.sleep(120)
        return real(*arguments, **keywords)
    datasets.check_pairs = slow
    sys.exit(main(sys.argv[1:]))
""")


def test_sigterm_during_start_up_exits_0_and_a_second_fit_is_refused_meanwhile(trained, tmp_path, capsys):
    workdir = str(tmp_path / "run")
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_START, "fit", "--dataset", trained[0], "--workdir", workdir, *TINY, "--steps", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "checking"  # in start-up, holding the lock
        refused(capsys, rf"is in use by fit \(process {child.pid}\): wait for it", "fit", "--dataset", trained[0],
                "--workdir", workdir, *TINY, "--steps", "2")  # fmt: skip
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert time.monotonic() - started < 30  # at once here; room for a machine twice as slow and busy
    assert "SIGTERM: stopped during start-up, before any step; nothing was lost" in err and "Traceback" not in err
    assert not os.path.exists(workdir)  # it made the folder, and nothing was written in it
    status, out, err = run_command(capsys, "fit", "--dataset", trained[0], "--workdir", workdir, *TINY, "--steps", "2")
    assert status == 0, err  # the lock went with the process


# --- memory: a huge image is refused from its header -------------------------------------------

MEASURED = textwrap.dedent("""
    import resource, subprocess, sys
    result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.returncode, round(peak), result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
""")


def peak_megabytes(*arguments):
    """(exit status, peak RSS in MB, last stderr line) of a command run in a fresh child process."""
    result = subprocess.run([sys.executable, "-c", MEASURED, *map(str, arguments)], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
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


# --- what a command removes: only what it can prove it made ------------------------------------

# Named like every temporary this package has ever written (files.replacing before and after the
# package's mark, export staging, TensorFlow's checkpoint temporaries), and like ours without the
# marker that proves a staging folder: none of them is the package's to remove.
LOOK_ALIKE_FILES = [".thesis.tmp-999999.tex", ".report.tmp-777777.md", ".generator.tmp-999999999.keras",
                    "checkpoint.tmp0123abcd", ".notes.tmp-999999"]  # fmt: skip
LOOK_ALIKE_FOLDERS = [".photos.tmp-888888", ".dataset.tmp-31337", ".export-run.tmp-999999999", "ckpt-9_temp",
                      ".photos.tmp-keras-pix2pix-999999999"]  # fmt: skip


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


# --- SIGTERM whenever it comes ------------------------------------------------------------------

# Each child sends itself SIGTERM at one moment of a command, printing "sent" first, then runs the command line.
SIGNALLERS = {
    # The last step's checkpoint (the run has 4 steps and saves only at its end).
    "the closing checkpoint": """
        import tensorflow as tf
        real = tf.train.CheckpointManager.save
        def save(self, checkpoint_number=None, **keywords):
            if checkpoint_number == 4:
                print("sent", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
            return real(self, checkpoint_number=checkpoint_number, **keywords)
        tf.train.CheckpointManager.save = save
    """,
    "the closing samples": """
        import tensorflow as tf
        real = tf.io.encode_png
        def encode_png(*arguments, **keywords):
            print("sent", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            return real(*arguments, **keywords)
        tf.io.encode_png = encode_png
    """,
    "generator.keras": """
        import keras
        real = keras.Model.save
        def save(self, *arguments, **keywords):
            print("sent", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            return real(self, *arguments, **keywords)
        keras.Model.save = save
    """,
    "a prediction": """
        real = os.fsync
        def fsync(descriptor):
            print("sent", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            return real(descriptor)
        os.fsync = fsync
    """,
    # Every format written and checked in the staging folder, as it is moved into place.
    "an export": """
        real = os.replace
        def replace(source, destination):
            if ".export-" in str(source):
                print("sent", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)
            return real(source, destination)
        os.replace = replace
    """,
}


def signalled(moment, arguments):
    """Runs the command line in a child that sends itself SIGTERM at `moment`.

    Returns:
        (exit status, its output lines, seconds from the signal to the first line after it).
    """
    script = "import os, signal, sys\n" + textwrap.dedent(SIGNALLERS[moment]) + textwrap.dedent(f"""
        from keras_pix2pix.cli import main
        sys.exit(main({[str(argument) for argument in arguments]!r}))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, sent, answered = [], None, None
    try:
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if sent is not None and answered is None:
                answered = time.monotonic() - sent
            if line.strip() == "sent":
                sent = time.monotonic()
        status = child.wait(timeout=120)
    finally:
        child.kill()
    assert "Traceback" not in "\n".join(lines), "\n".join(lines)
    return status, lines, answered


# Honest bounds: the answer comes at once (within a second here); these leave room for a machine
# twice as slow and busy. A grace period is what a scheduler gives before SIGKILL (Kubernetes: 30 s).
ANSWER_SECONDS, GRACE_SECONDS = 5, 30
STOPPED_AFTER_THE_CHECKPOINT = "generator.keras was not written: run the same command to write it"


@pytest.mark.parametrize("moment", ["the closing checkpoint", "the closing samples", "generator.keras"])
def test_sigterm_during_the_closing_saves_keeps_the_checkpoint_and_says_generator_keras_is_not_written(
    trained, tmp_path, capsys, moment
):
    workdir = str(tmp_path / "run")
    command = ["fit", "--dataset", trained[0], "--workdir", workdir, *TINY, "--steps", "4", "--save-every", "100"]
    started = time.monotonic()
    status, lines, answered = signalled(moment, command)
    assert status == 0 and answered < ANSWER_SECONDS, lines
    assert time.monotonic() - started < 120
    [last] = [line for line in lines if line.startswith("keras-pix2pix:")]
    if moment == "the closing checkpoint":  # acknowledged at once, then the checkpoint is finished
        assert "SIGTERM received: stopping after the step in progress, with a checkpoint" in lines, lines
        assert last == f"keras-pix2pix: SIGTERM: saved a checkpoint at step 4 of 4 in {workdir}; {STOPPED_AFTER_THE_CHECKPOINT}"
    else:  # the checkpoint was written already: the stop is at once
        assert last == f"keras-pix2pix: SIGTERM: the checkpoint of step 4 of 4 is kept; {STOPPED_AFTER_THE_CHECKPOINT}"
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-4")
    assert not os.path.exists(os.path.join(workdir, "generator.keras")) and temporaries(workdir) == []
    status, out, err = run_command(capsys, *command)  # the same command writes it
    assert status == 0 and f"saved {workdir}/generator.keras" in out, err
    assert "resuming" not in out and keras.models.load_model(os.path.join(workdir, "generator.keras"))


def test_sigterm_mid_run_is_acknowledged_and_the_step_reached_is_saved(trained, tmp_path):
    workdir = str(tmp_path / "run")
    child = subprocess.Popen(
        [sys.executable, "-m", "keras_pix2pix", "fit", "--dataset", trained[0], "--workdir", workdir, *TINY,
         "--steps", "100000", "--log-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines, sent, answered = [], None, None
    try:
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if sent is None and line.startswith("step 5/"):
                child.send_signal(signal.SIGTERM)
                sent = time.monotonic()
            elif sent is not None and "SIGTERM" in line and answered is None:
                answered = time.monotonic() - sent
        assert child.wait(timeout=GRACE_SECONDS) == 0, lines
    finally:
        child.kill()
    assert answered is not None and answered < ANSWER_SECONDS, lines
    assert lines[lines.index("SIGTERM received: stopping after the step in progress, with a checkpoint") + 1:] != []
    step = int(re.search(r"SIGTERM: saved a checkpoint at step (\d+) of 100000 in ", lines[-1]).group(1))
    assert step >= 5 and "(generator.keras is written when the run finishes)" in lines[-1], lines[-1]
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith(f"ckpt-{step}")
    assert not os.path.exists(os.path.join(workdir, "generator.keras"))


def test_sigterm_as_the_last_step_is_reported_leaves_a_consistent_work_directory(trained, tmp_path):
    """As a scheduler would send it, at no chosen moment: when the progress shows the last step."""
    workdir = str(tmp_path / "run")
    child = subprocess.Popen(
        [sys.executable, "-m", "keras_pix2pix", "fit", "--dataset", trained[0], "--workdir", workdir, *TINY,
         "--steps", "6", "--log-every", "1", "--save-every", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("step 6/6"):
                child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=GRACE_SECONDS) == 0, lines
    finally:
        child.kill()
    checkpoint = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    assert checkpoint.endswith("ckpt-6"), lines  # nothing trained is lost
    generator = os.path.join(workdir, "generator.keras")
    if STOPPED_AFTER_THE_CHECKPOINT in lines[-1]:
        assert not os.path.exists(generator), lines
    else:  # the stop came after generator.keras was written: it is the checkpoint's
        assert os.path.getmtime(generator) >= os.path.getmtime(checkpoint + ".index"), lines
    assert temporaries(workdir) == []


def test_sigterm_during_predict_removes_the_unfinished_file_and_says_so(trained, tmp_path):
    png(tmp_path / "x.png")
    output = tmp_path / "out"
    command = ["predict", "--model", trained[1], tmp_path / "x.png", "--output", output]
    status, lines, answered = signalled("a prediction", command)
    assert status == 128 + signal.SIGTERM and answered < ANSWER_SECONDS, lines
    assert re.fullmatch(rf"keras-pix2pix: SIGTERM: stopped; removed its unfinished {output}/\.x\.tmp-keras-pix2pix-\d+\.png",
                        lines[-1]), lines  # fmt: skip
    assert not output.exists()  # predict made it, and it is empty


def test_sigterm_during_export_removes_its_staging_and_says_so(trained, tmp_path):
    output = tmp_path / "exports"
    status, lines, answered = signalled("an export", ["export", "--model", trained[1], "--output", output,
                                                      "--format", "saved_model"])  # fmt: skip
    assert status == 128 + signal.SIGTERM and answered < ANSWER_SECONDS, lines
    assert re.fullmatch(rf"keras-pix2pix: SIGTERM: stopped; removed its unfinished {output}/\.export-run\.tmp-keras-pix2pix-\d+",
                        lines[-1]), lines  # fmt: skip
    assert not output.exists()  # the export made it, and it is empty


def test_sigterm_during_import_removes_its_staging_and_the_new_work_directory(tmp_path):
    pth = os.path.join(os.path.dirname(__file__), "fixtures", "pytorch", "unet_instance_zip.pth")
    workdir = tmp_path / "imported"
    status, lines, answered = signalled("generator.keras", ["import", pth, "--workdir", workdir, "--image-size", "64"])
    assert status == 128 + signal.SIGTERM and answered < ANSWER_SECONDS, lines
    assert re.fullmatch(rf"keras-pix2pix: SIGTERM: stopped; removed its unfinished {workdir}/\.import\.tmp-keras-pix2pix-\d+",
                        lines[-1]), lines  # fmt: skip
    assert os.listdir(tmp_path) == []
