"""A run measured in time (--duration): the paper's schedule by the clock, ending annealed, resumable."""

import os
import signal
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import tiny_config, write_ab_folder

from keras_pix2pix import plots
from keras_pix2pix.config import Config, UsageError
from keras_pix2pix.errors import TrainingInterrupted
from keras_pix2pix.optimization import DURATION_DECAY_FRACTION, learning_rate_at
from keras_pix2pix.train import fit, make_optimizers, resolve_config


def _checkpoint_value(workdir, name):
    return tf.train.load_variable(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")),
                                  f"{name}/.ATTRIBUTES/VARIABLE_VALUE")


def _learning_rates(workdir):
    steps, values = plots.read_scalars(os.path.join(workdir, "logs"))["learning_rate"]
    return steps.tolist(), values.tolist()


class _Clock:
    """A clock that moves 0.05 s each time it is read, whatever the machine's load: the run's time is its own."""

    def __init__(self):
        self.seconds = 1000.0

    def __call__(self):
        self.seconds += 0.05
        return self.seconds


def _duration_config(**changes):
    values = dict(steps=None, duration=12, save_every=10**6, sample_every=10**6, log_every=5)
    return tiny_config(**{**values, **changes})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_ab_folder(tmp_path_factory.mktemp("pairs"), 4)


def test_the_schedule_holds_half_the_duration_then_falls_to_zero_by_the_clock():
    rates = [float(learning_rate_at(now / 100, 2e-4, DURATION_DECAY_FRACTION)) for now in (0, 49, 50, 75, 99, 100, 130)]
    assert rates == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4, 4e-6, 0.0, 0.0], abs=1e-9)
    progress = tf.Variable(0.0, dtype=tf.float64)
    generator_adam, discriminator_adam = make_optimizers(_duration_config(duration=100), None, None, progress)
    progress.assign(0.75)
    assert float(generator_adam.learning_rate) == float(discriminator_adam.learning_rate) == pytest.approx(1e-4)


def test_the_old_trained_seconds_keyword_still_reads_the_seconds_with_a_warning():
    seconds = tf.Variable(75.0)
    with pytest.warns(DeprecationWarning, match=r"trained_seconds=\.\.\.\) is deprecated: pass progress"):
        generator_adam, _ = make_optimizers(_duration_config(duration=100), None, None, trained_seconds=seconds)
    assert float(generator_adam.learning_rate) == pytest.approx(1e-4)


def test_duration_is_a_length_of_its_own():
    assert Config(duration="15m").duration == 900.0
    with pytest.raises(UsageError, match=r"give steps or duration, not both; got steps=10, duration=60.0"):
        Config(steps=10, duration=60)
    with pytest.raises(UsageError, match=r"decay_steps sets the decay of a run measured in steps; .*duration=1m, decay_steps=5"):
        Config(duration=60, decay_steps=5)
    pattern = r"deterministic runs repeat exactly, and a duration run's learning rate follows the clock"
    with pytest.raises(UsageError, match=pattern):
        Config(duration=60, deterministic=True)
    with pytest.raises(UsageError, match=r"workers do not share: give steps or epochs with strategy multiworker"):
        Config(duration=60, strategy="multiworker")
    with pytest.raises(UsageError, match=r"duration must be a duration such as 2h30m, .*; got '2 hours'"):
        Config(duration="2 hours")


def test_naming_a_duration_on_resume_drops_the_saved_length_and_decay(tmp_path):
    tiny_config(steps=100, decay_steps=30).save(str(tmp_path / "config.json"))
    config = resolve_config(str(tmp_path), settings={"duration": 60}, log=lambda message: None)
    assert (config.steps, config.epochs, config.decay_steps, config.duration) == (None, None, None, 60.0)
    with pytest.raises(UsageError, match=r"decay_steps sets the decay of a run measured in steps"):
        resolve_config(str(tmp_path), settings={"duration": 60, "decay_steps": 5}, log=lambda message: None)


def test_a_duration_run_stops_on_time_annealed_and_a_rerun_finds_it_finished(pairs, tmp_path):
    workdir = str(tmp_path / "run")
    clock = _Clock()
    start = clock.seconds
    fit(_duration_config(dataset=pairs), workdir, verbose=False, clock=clock)
    # It stops when one more step, a checkpoint and the 2 s kept for the exit no longer fit.
    assert 12 - 3 <= clock.seconds - start < 12, clock.seconds - start
    steps, rates = _learning_rates(workdir)
    assert len(steps) >= 10, steps
    assert rates[0] == pytest.approx(2e-4)
    assert all(later <= earlier + 1e-12 for earlier, later in zip(rates, rates[1:])), rates
    assert rates[-1] < 0.2 * 2e-4, rates  # ended annealed
    assert _checkpoint_value(workdir, "trained_seconds") == 12.0
    assert _checkpoint_value(workdir, "step") == steps[-1]
    modified = os.path.getmtime(os.path.join(workdir, "generator.keras"))
    fit(workdir=workdir, verbose=False, clock=_Clock())  # the same command again: nothing to do
    assert os.path.getmtime(os.path.join(workdir, "generator.keras")) == modified
    assert _checkpoint_value(workdir, "step") == steps[-1]


def test_a_duration_run_stopped_by_its_time_limit_resumes_with_the_time_left(pairs, tmp_path):
    workdir = str(tmp_path / "run")
    pattern = r"time limit of 13s reached: saved a checkpoint at step \d+ after (\d+s) of 20s in "
    with pytest.raises(TrainingInterrupted, match=pattern) as stop:
        fit(_duration_config(dataset=pairs, duration=20, time_limit=13), workdir, verbose=False, clock=_Clock())
    trained = float(_checkpoint_value(workdir, "trained_seconds"))
    assert 10.5 <= trained <= 13, trained  # past half the duration
    interrupted_steps, _ = _learning_rates(workdir)
    clock = _Clock()
    start = clock.seconds
    fit(workdir=workdir, time_limit=None, verbose=False, clock=clock)
    # The rest of the 20 seconds, not 20 more.
    assert clock.seconds - start < 20 - trained + 1
    steps, rates = _learning_rates(workdir)
    resumed = [rate for step, rate in zip(steps, rates) if step > stop.value.step]
    # Past half the duration when it stopped, so the schedule goes on decaying from where it was, not from 2e-4.
    assert resumed[0] < 0.95 * 2e-4 and resumed[-1] < 0.2 * 2e-4, resumed
    assert steps[-1] > interrupted_steps[-1]
    assert _checkpoint_value(workdir, "trained_seconds") == 20.0


# A child that trains a duration run on a clock of its own and kills itself with SIGKILL when that
# clock reaches 13 s: the kill lands at the same point of the run whatever the machine's load.
_KILLED_CHILD = """
import os, signal, sys
from keras_pix2pix.config import Config
from keras_pix2pix.train import fit

class KillingClock:
    def __init__(self):
        self.seconds = 1000.0
    def __call__(self):
        self.seconds += 0.05
        if self.seconds >= 1013.0:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.seconds

fit(Config.load(sys.argv[1]), sys.argv[2], verbose=False, clock=KillingClock())
"""


def test_a_duration_run_killed_with_sigkill_resumes_its_schedule_where_its_checkpoint_left_it(pairs, tmp_path):
    workdir = str(tmp_path / "run")
    settings = str(tmp_path / "settings.json")
    _duration_config(dataset=pairs, duration=20, save_every=1, log_every=1).save(settings)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, "-c", _KILLED_CHILD, settings, workdir], env=environment,
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    trained = float(_checkpoint_value(workdir, "trained_seconds"))
    killed_at = int(_checkpoint_value(workdir, "step"))
    assert 11 <= trained <= 13, trained  # past half the duration: the rate was decaying
    # The checkpoint holds where the schedule stood, as a share of the run.
    assert _checkpoint_value(workdir, "progress") == pytest.approx(trained / 20, abs=1e-6)
    clock = _Clock()
    start = clock.seconds
    fit(workdir=workdir, verbose=False, clock=clock)
    assert clock.seconds - start < 20 - trained + 1  # the time left, not 20 s more
    steps, rates = _learning_rates(workdir)
    resumed = [rate for step, rate in zip(steps, rates) if step > killed_at + 1]
    # The first resumed step reads the progress of the seconds the checkpoint recorded (and the
    # fraction of a second of its own start-up), not the undecayed 2e-4 of a fresh schedule.
    expected = float(learning_rate_at(trained / 20, 2e-4, DURATION_DECAY_FRACTION))
    assert resumed[0] == pytest.approx(expected, abs=0.05 * 2e-4), (resumed[0], expected)
    assert all(later <= earlier + 1e-12 for earlier, later in zip(resumed, resumed[1:])), resumed
    assert resumed[-1] < 0.2 * 2e-4, resumed
    assert _checkpoint_value(workdir, "trained_seconds") == 20.0
    assert _checkpoint_value(workdir, "progress") == 1.0
