"""Kills and signals: SIGKILL in the middle of a write or of a run, SIGTERM at every moment of a command.

Kill cases run a command in a child process that SIGKILLs itself in the middle of the write, or
SIGKILL a training child at random steps, then run the command again. Full disks and memory bounds
are in tests/test_processes.py.
"""

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, png, refused, run_command, snapshot, temporaries, write_ab_folder

from keras_pix2pix import translation
from keras_pix2pix.translation import load_generator

pytestmark = pytest.mark.slow


# --- a kill in the middle of a write ----------------------------------------------------------------


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


# --- SIGKILL at random steps, then resume -----------------------------------------------------------


def _fit_command(folder, workdir, steps):
    return [
        sys.executable, "-m", "keras_pix2pix", "fit", "--dataset", folder, "--workdir", workdir,
        "--steps", str(steps), "--save-every", "2", "--sample-every", "5", "--log-every", "1",
        "--seed", "3", "--deterministic", *TINY,
    ]


def _environment():
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run_until(command, kill_at=None, kill_signal=signal.SIGKILL):
    """Runs command; with kill_at, sends kill_signal once the progress line of that step appears."""
    # stderr joins stdout: one pipe, read to the end, so a chatty stderr can never fill and block.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_environment())
    seen = []
    for line in process.stdout:
        seen.append(line)
        if kill_at is not None and line.startswith("step ") and int(line.split()[1].split("/")[0]) >= kill_at:
            process.send_signal(kill_signal)
            break
    rest, _ = process.communicate(timeout=300)
    return process.returncode, "".join(seen) + rest


def _final_weights(workdir):
    generator, config = load_generator(workdir)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    discriminator = {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith("discriminator/") or "discriminator_optimizer" in name
    }
    return [weight.numpy() for weight in generator.weights], discriminator


@pytest.mark.slow
def test_sigkill_at_random_steps_then_resume_is_bit_identical(tmp_path):
    folder = write_ab_folder(tmp_path / "pairs", count=5)
    steps = 12
    straight = str(tmp_path / "straight")
    code, error = _run_until(_fit_command(folder, straight, steps))
    assert code == 0, error[-2000:]

    resumed = str(tmp_path / "resumed")
    kills = sorted(random.Random(11).sample(range(2, steps), 2))
    for kill_at in kills:
        code, _ = _run_until(_fit_command(folder, resumed, steps), kill_at=kill_at)
        assert code == -signal.SIGKILL
    code, error = _run_until(_fit_command(folder, resumed, steps))
    assert code == 0, error[-2000:]

    straight_generator, straight_discriminator = _final_weights(straight)
    resumed_generator, resumed_discriminator = _final_weights(resumed)
    for a, b in zip(straight_generator, resumed_generator):
        np.testing.assert_array_equal(a, b)
    assert straight_discriminator.keys() == resumed_discriminator.keys() and straight_discriminator
    for name, value in straight_discriminator.items():
        np.testing.assert_array_equal(value, resumed_discriminator[name], err_msg=name)


# --- SIGTERM ----------------------------------------------------------------------------------------


SLOW_START = textwrap.dedent("""
    import sys, time
    from keras_pix2pix import checking
    from keras_pix2pix.cli import main
    real = checking.check_pairs
    def slow(*arguments, **keywords):
        print("checking", flush=True)
        time.sleep(120)
        return real(*arguments, **keywords)
    checking.check_pairs = slow
    sys.exit(main(sys.argv[1:]))
""")


def test_sigterm_during_start_up_exits_0_and_a_second_fit_is_refused_meanwhile(trained, tmp_path, capsys):
    workdir = str(tmp_path / "run")
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_START, "fit", "--dataset", trained[0], "--workdir", workdir, *TINY, "--steps", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "checking"  # in start-up, holding the lock
        refused(capsys, rf"is in use by fit \(process {child.pid}\): wait for it", "fit", "--dataset", trained[0],
                "--workdir", workdir, *TINY, "--steps", "2")
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
    )
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
    )
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
                        lines[-1]), lines
    assert not output.exists()  # predict made it, and it is empty


def test_sigterm_during_export_removes_its_staging_and_says_so(trained, tmp_path):
    output = tmp_path / "exports"
    status, lines, answered = signalled("an export", ["export", "--model", trained[1], "--output", output,
                                                      "--format", "saved_model"])
    assert status == 128 + signal.SIGTERM and answered < ANSWER_SECONDS, lines
    assert re.fullmatch(rf"keras-pix2pix: SIGTERM: stopped; removed its unfinished {output}/\.export-run\.tmp-keras-pix2pix-\d+",
                        lines[-1]), lines
    assert not output.exists()  # the export made it, and it is empty


def test_sigterm_during_import_removes_its_staging_and_the_new_work_directory(tmp_path):
    pth = os.path.join(os.path.dirname(__file__), "fixtures", "pytorch", "unet_instance_zip.pth")
    workdir = tmp_path / "imported"
    status, lines, answered = signalled("generator.keras", ["import", pth, "--workdir", workdir, "--image-size", "64"])
    assert status == 128 + signal.SIGTERM and answered < ANSWER_SECONDS, lines
    assert re.fullmatch(rf"keras-pix2pix: SIGTERM: stopped; removed its unfinished {workdir}/\.import\.tmp-keras-pix2pix-\d+",
                        lines[-1]), lines
    assert os.listdir(tmp_path) == []
