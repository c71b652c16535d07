"""Crash safety: SIGKILL and resume, SIGTERM, NaN losses, failed checkpoint writes, hostile bytes."""

import os
import pickle
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import TINY, tiny_config, write_ab_folder
from keras_pix2pix import checkpoints, datasets, train
from keras_pix2pix.config import UsageError
from keras_pix2pix.errors import TrainingInterrupted
from keras_pix2pix.translation import load_generator



def _fit_command(folder, workdir, steps):
    return [
        sys.executable, "-m", "keras_pix2pix", "fit", "--dataset", folder, "--workdir", workdir,
        "--steps", str(steps), "--save-every", "2", "--sample-every", "5", "--log-every", "1",
        "--seed", "3", "--deterministic", *TINY,
    ]  # fmt: skip


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


@pytest.fixture
def injected_nan():
    """A train_step_factory whose step's 4th call reports a NaN loss after wrecking a generator weight."""

    def factory(generator, *arguments):
        real = train.make_train_step(generator, *arguments)
        calls = []

        def step(inputs, targets):
            calls.append(1)
            result = real(inputs, targets)
            if len(calls) == 4:
                generator.trainable_variables[0].assign(tf.fill(generator.trainable_variables[0].shape, np.nan))
                result = {**result, "generator_total": tf.constant(np.nan), "finite": tf.constant(False)}
            return result

        return step

    return factory


def _checkpoint_bytes(workdir, name):
    folder = os.path.join(workdir, "checkpoints")
    return {file: open(os.path.join(folder, file), "rb").read() for file in os.listdir(folder) if file.startswith(name)}


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, injected_nan):
    folder = write_ab_folder(tmp_path / "pairs", count=3)
    workdir = str(tmp_path / "run")
    with pytest.raises(train.NonFiniteLossError, match=r"non-finite loss at step 4 \(generator_total nan, .*\); the last good checkpoint, .*ckpt-2, is untouched"):
        train.fit(tiny_config(dataset=folder, steps=8, save_every=2), workdir, verbose=False,
                  train_step_factory=injected_nan)  # fmt: skip
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")
    generator, _ = load_generator(workdir)
    assert all(np.isfinite(weight.numpy()).all() for weight in generator.weights)


def test_nan_loss_skip_rolls_back_and_goes_on(tmp_path, injected_nan, capsys):
    folder = write_ab_folder(tmp_path / "pairs", count=3)
    workdir = str(tmp_path / "run")
    generator = train.fit(tiny_config(dataset=folder, steps=8, save_every=2, on_nan="skip"), workdir,
                          train_step_factory=injected_nan)
    output = capsys.readouterr().out
    assert "non-finite loss at step 4 (generator_total nan" in output
    assert "rolled back to step 2, skipping that batch" in output
    assert all(np.isfinite(weight.numpy()).all() for weight in generator.weights)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 8
    assert reader.get_tensor("skipped_batches/.ATTRIBUTES/VARIABLE_VALUE") == 2  # batches 3 and 4


@pytest.mark.slow
def test_failed_checkpoint_write_leaves_the_previous_one_restorable(tmp_path, monkeypatch):
    folder = write_ab_folder(tmp_path / "pairs", count=3)
    workdir = str(tmp_path / "run")
    train.fit(tiny_config(dataset=folder, steps=2, save_every=2), workdir, verbose=False)
    before = _checkpoint_bytes(workdir, "ckpt-2")
    real_write = tf.train.Checkpoint._write

    def full_disk(self, prefix, options=None):
        # Half a data file on disk, then the device fills up.
        with open(f"{prefix}.data-00000-of-00001", "wb") as file:
            file.write(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "_write", full_disk)
    with pytest.raises(checkpoints.CheckpointWriteError, match=r"could not write the checkpoint of step 4 .*No space left on device.*ckpt-2, is untouched"):
        train.fit(tiny_config(dataset=folder, steps=4, save_every=2), workdir, verbose=False)
    monkeypatch.setattr(tf.train.Checkpoint, "_write", real_write)
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")
    assert _checkpoint_bytes(workdir, "ckpt-2") == before
    os.remove(os.path.join(workdir, "generator.keras"))
    generator, _ = load_generator(workdir)  # restores from ckpt-2
    assert all(np.isfinite(weight.numpy()).all() for weight in generator.weights)
    # And training resumes from it.
    train.fit(tiny_config(dataset=folder, steps=4, save_every=2), workdir, verbose=False)
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-4")


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
        checked = datasets.check_pairs(pairs)
    except UsageError as error:
        assert str(error).startswith(str(path)) and "--skip-bad" in str(error)
        with pytest.raises(UsageError, match="every file is bad"):
            datasets.check_pairs(pairs, skip_bad=True, log=lambda message: None)
        return
    # A file that passes the check must go through the training pipeline without an error.
    from keras_pix2pix import data

    batch = next(iter(data.train_dataset(checked, tiny_config(), "AtoB", seed=0)))
    assert batch[0].shape == (1, 32, 32, 3)


def test_a_time_limit_or_signal_stop_crosses_process_boundaries_with_its_step():
    # A process pool returns a worker's exception pickled: fit stopped by its time limit in a
    # worker must reach the caller as itself, not break the pool.
    error = pickle.loads(pickle.dumps(TrainingInterrupted("time limit of 15m reached: saved a checkpoint at step 7", step=7)))
    assert isinstance(error, TrainingInterrupted) and error.step == 7
    assert str(error) == "time limit of 15m reached: saved a checkpoint at step 7"
