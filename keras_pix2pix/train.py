"""Training: `fit`, the set-up of a run and the loop around the paper's train step.

The parts live beside it: keras_pix2pix.workdir (the work directory's layout, claiming it,
config.json and generator.keras, the rules of a resume), keras_pix2pix.optimization (the train
step, the optimizers and the learning-rate schedule), keras_pix2pix.checkpoints (what a checkpoint
holds) and keras_pix2pix.stopping (signals, the time limit and a duration's clock).
Running `fit` again on the same work directory resumes from the latest checkpoint.

The networks train in their fast form (keras_pix2pix.fast, "train"), which computes the same
function as the stock layers with the same variables; generator.keras is written in stock form.
"""

import contextlib
import dataclasses
import os
import random
import shutil
import time

import keras
import tensorflow as tf
from tensorflow.python.framework import config as framework_config  # op determinism's state: not in tf.config

from keras_pix2pix import checking, checkpoints, data, datasets, distribute, fast, files, models, plots, stopping
from keras_pix2pix import workdir as layout
from keras_pix2pix.config import Config, UsageError, duration_text
from keras_pix2pix.errors import NonFiniteLossError, Stopped, TrainingInterrupted
from keras_pix2pix.modes import translate, unchanged
from keras_pix2pix.optimization import make_optimizers, make_train_step, progress_of, progress_variable, run_length
from keras_pix2pix.progress import Progress, format_duration
from keras_pix2pix.workdir import default_workdir, resolve_config

# Names that moved out of this module, kept importable from it: keras_pix2pix.train.make_train_step and others.
__all__ = [
    "fit", "train_with", "sample_grid", "make_train_step", "make_optimizers", "run_length", "default_workdir",
    "resolve_config", "NonFiniteLossError", "MOST_SKIPS_IN_A_ROW",
]


def sample_grid(inputs, outputs, targets, border=2):
    """One uint8 image: a row per pair, input | output | target, with white borders.

    Args:
        inputs, outputs, targets: float batches in [-1, 1]; 1-channel images are shown gray.
    """

    def rgb(images):
        images = data.denormalize(images)
        return tf.image.grayscale_to_rgb(images) if images.shape[-1] == 1 else images

    columns = [rgb(inputs), rgb(outputs), rgb(targets)]
    rows = []
    for index in range(inputs.shape[0]):
        row = [tf.pad(column[index], [[border, border], [border, 0], [0, 0]], constant_values=255) for column in columns]
        row = tf.pad(tf.concat(row, axis=1), [[0, 0], [0, border], [0, 0]], constant_values=255)
        rows.append(row)
    return tf.concat(rows, axis=0)


def _printer(verbose):
    """print with flush when verbose, else a function that prints nothing."""
    return (lambda message: print(message, flush=True)) if verbose else (lambda message: None)


def fit(config=None, workdir=None, *, verbose=True, started=None, clock=time.monotonic, train_step_factory=None,
        **settings):
    """Trains pix2pix as the paper does and returns the trained generator.

    Resumes from the latest checkpoint when workdir already holds a run: settings not named here
    come from its config.json, and the run continues to the requested number of steps. The
    command line's `fit` calls this with its flags as `settings`.

    Args:
        config: a Config naming every setting; None: config.json's settings when resuming, else
            the defaults.
        workdir: the work directory (created if needed); None: runs/DATASET_NAME.
        verbose: print the summary and the progress line.
        started: when this command's time began, as clock() read it, for the time limit and a
            duration; default: now. The command line passes its own start, so that importing
            TensorFlow counts too.
        clock: the seconds of a monotonic clock, read for the time limit and a duration run's
            schedule (time.monotonic; tests pass a clock of their own, unaffected by load).
        train_step_factory: makes the train step, with make_train_step's arguments; None:
            make_train_step. A seam for tests that inject faults (a NaN loss) into the step.
        **settings: Config fields to set over config (or over config.json, or the defaults).

    Returns:
        The trained generator (also saved as workdir/generator.keras).

    Example:
    >>> tiny = dict(image_size=32, generator_filters=4, discriminator_filters=4, discriminator_layers=1)
    >>> generator = fit(dataset=pairs_folder, steps=2, workdir=tmp + "/run", verbose=False, **tiny)
    >>> generator = fit(workdir=tmp + "/run", steps=3, verbose=False)  # resume: the saved settings, 1 step more
    >>> sorted(os.listdir(tmp + "/run"))
    ['.lock', 'checkpoints', 'config.json', 'generator.keras', 'logs', 'losses.png', 'samples']
    """
    log = _printer(verbose)
    if workdir is None:
        dataset = settings.get("dataset") or (config.dataset if isinstance(config, Config) else Config.dataset)
        workdir = default_workdir(dataset)
    config = resolve_config(workdir, config, settings, log)
    return train_with(config, workdir, verbose=verbose, started=started, clock=clock,
                      train_step_factory=train_step_factory)


@dataclasses.dataclass
class _Run:
    """What one training run works with; made by _set_up, used by the loop's parts."""

    config: Config
    workdir: str
    chief: bool
    batches_from: object  # step -> the training stream from that step on
    sample_batch: tuple
    total_steps: int | None  # None: a duration run
    finished: bool  # all its steps, or all its duration, trained when it started
    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    train_step: object
    writer: object
    log: object


def _read_data(config, log):
    """(splits, training pairs, sample pairs), every file decoded once so that a bad one stops the run now."""
    splits = datasets.find_dataset(config.dataset, config.data_dir, config.manual_dir)
    # The files that pass are remembered in the data directory: a resume or a second run starts at once.
    data_dir = datasets.resolve_data_dir(config.data_dir)
    train_pairs = checking.check_pairs(splits.train, config.skip_bad, log, config.max_pixels, data_dir)
    sample_pairs = splits.validation.take(config.sample_count)
    sample_pairs = checking.check_pairs(sample_pairs, config.skip_bad, log, config.max_pixels, data_dir)
    return splits, train_pairs, sample_pairs


def _build_networks(config, strategy, total_steps, decay_steps):
    """The networks in their training form, their optimizers (built) and the run's checkpoint.

    The checkpoint holds the progress the optimizers' schedule reads (optimization.learning_rate_at).
    """
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"batch_size {config.batch_size} must be a multiple of the {replicas} replicas of strategy "
            f"{config.strategy} (it is the global batch)"
        )
    with strategy.scope():
        generator, discriminator = (fast.clone_as(model, "train") for model in models.build_models(config))
        progress = progress_variable()
        generator_optimizer, discriminator_optimizer = make_optimizers(config, total_steps, decay_steps, progress)
        # Built up front, so that a checkpoint restores their slots at once, not on the first step.
        generator_optimizer.build(generator.trainable_variables)
        discriminator_optimizer.build(discriminator.trainable_variables)
        return checkpoints.make_checkpoint(generator, discriminator, generator_optimizer, discriminator_optimizer,
                                           progress)


def _describe(config, splits, train_pairs, checkpoint, total_steps, decay_steps):
    """The run's summary line: data, sizes, networks and length."""
    patch = models.receptive_field(config.discriminator_layers)
    grid = models.patch_grid(config.image_size, config.discriminator_layers)
    return (
        f"{splits.name}: {len(train_pairs)} training pairs, {config.direction}; "
        f"{config.image_size[0]}x{config.image_size[1]} images, batch {config.batch_size}; "
        f"{config.generator} generator {models.trainable_parameters(checkpoint.generator):,} trainable parameters; "
        f"{patch}x{patch} PatchGAN ({grid[0]}x{grid[1]} logits) "
        f"{models.trainable_parameters(checkpoint.discriminator):,}; " + _length_text(config, total_steps, decay_steps)
    )


def _length_text(config, total_steps, decay_steps):
    """How long the run trains and when its learning rate decays."""
    if config.duration is None:
        return f"{total_steps} steps, the last {decay_steps} with a decaying learning rate"
    return (
        f"{duration_text(config.duration)} of training, the last {duration_text(config.duration / 2)} with a "
        "decaying learning rate"
    )


def _op_determinism(stack):
    """Turns TensorFlow's op determinism on for the run, and off again when it ends unless the caller had it on."""
    if framework_config.is_op_determinism_enabled():
        return
    tf.config.experimental.enable_op_determinism()
    stack.callback(framework_config.disable_op_determinism)


def _set_progress(run, step, seconds):
    """Sets what the schedule reads: the progress at `step` (a run in steps) or after `seconds` trained (a duration)."""
    if run.config.duration is not None:
        run.checkpoint.trained_seconds.assign(seconds)
    run.checkpoint.progress.assign(progress_of(run.config, step, run.total_steps, seconds))


def _batches(config, strategy, train_pairs, checkpoint):
    """The function of a step that gives the training stream from it; indexed by batch, skipped batches move it forward."""

    def batches_from(step):
        first_example = (step + int(checkpoint.skipped_batches.numpy())) * config.batch_size
        dataset = data.train_dataset(train_pairs, config, config.direction, config.seed, start_example=first_example)
        options = tf.data.Options()
        # Workers read the same stream and keep their own share of each global batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    return batches_from


def _reached(config, step, total_steps, trained_seconds):
    """Where a run stands, for its messages: "step 40 of 100", or "step 40 after 5m of 15m" for a duration run."""
    if total_steps is not None:
        return f"step {step} of {total_steps}"
    trained = duration_text(round(float(trained_seconds.numpy())))
    return f"step {step} after {trained} of {duration_text(config.duration)}"


def _set_up(config, workdir, log, stack, train_step_factory):
    """Everything before the first step: data, networks, the restored checkpoint, config.json."""
    # First: a multi-worker strategy must be set up before TensorFlow runs any op.
    strategy = distribute.make_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    layout.claim(workdir, config, chief, stack, log)
    splits, train_pairs, sample_pairs = _read_data(config, log)
    config = config.replace(
        seed=config.seed if config.seed is not None else random.SystemRandom().randrange(2**31 - 1),
        direction=config.direction or splits.direction,
    )
    total_steps, decay_steps = run_length(config, len(train_pairs))
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        _op_determinism(stack)
    checkpoint = _build_networks(config, strategy, total_steps, decay_steps)
    manager, start = checkpoints.restore_latest(checkpoint, layout.checkpoint_directory(workdir, strategy),
                                                config.keep_checkpoints, log, workdir=workdir)
    if chief:
        layout.check_progress(workdir, start, total_steps, manager.latest_checkpoint)
    trained_seconds = float(checkpoint.trained_seconds.numpy())
    finished = start >= total_steps if config.duration is None else trained_seconds >= config.duration
    if manager.latest_checkpoint and not finished:
        log(f"resuming {workdir} at {_reached(config, start, total_steps, checkpoint.trained_seconds)}")
    # Saved only now that the networks are built and the checkpoint fits them: a run refused
    # before this point leaves the work directory's config.json as it was.
    if chief and not finished:
        layout.write_config(workdir, config)
    log(_describe(config, splits, train_pairs, checkpoint, total_steps, decay_steps))
    if note := distribute.precision_note(config.precision, strategy):
        log(note)
    sample_batch = (None, None)
    if config.sample_count:
        sample_batch = next(iter(data.eval_dataset(sample_pairs, config, config.direction, batch_size=len(sample_pairs))))
    run = _Run(
        config=config, workdir=workdir, chief=chief, batches_from=_batches(config, strategy, train_pairs, checkpoint),
        sample_batch=sample_batch, total_steps=total_steps, finished=finished, checkpoint=checkpoint,
        manager=manager, log=log,
        train_step=train_step_factory(checkpoint.generator, checkpoint.discriminator, checkpoint.generator_optimizer,
                                      checkpoint.discriminator_optimizer, config, strategy),
        # A finished run writes nothing, not even an empty event file.
        writer=tf.summary.create_file_writer(layout.logs_folder(workdir)) if chief and not finished
        else tf.summary.create_noop_writer(),
    )
    # The length asked for may have changed since the checkpoint: its progress is recomputed.
    _set_progress(run, start, trained_seconds)
    return run


def _write_samples(run, step):
    """The sample grid of `step` (paper mode) as a PNG and in TensorBoard, with its L1."""
    inputs, targets = run.sample_batch
    if inputs is None or not run.chief:
        return
    # Paper mode draws dropout masks: `unchanged` puts the random states back, so that sampling
    # never shifts the training stream (a resumed run must match an uninterrupted one).
    with unchanged(run.checkpoint.generator):
        outputs = translate(run.checkpoint.generator, inputs, mode="paper")
    image = sample_grid(inputs, outputs, targets)
    os.makedirs(layout.samples_folder(run.workdir), exist_ok=True)
    files.write_atomically(layout.sample_path(run.workdir, step), tf.io.encode_png(image).numpy())
    with run.writer.as_default(step=step):
        tf.summary.image("samples", image[None], max_outputs=1)
        tf.summary.scalar("validation/l1_samples", tf.reduce_mean(tf.abs(outputs - targets)))
    # The curves beside the grid: losses.png, drawn from the logs just written.
    run.writer.flush()
    plots.plot_losses(layout.logs_folder(run.workdir), layout.losses_plot(run.workdir))


def _report(run, step, step_losses, progress):
    """The progress line and the TensorBoard scalars of `step`."""
    values = {name: float(value) for name, value in step_losses.items() if name != "finite"}
    images_per_second = None
    if progress:
        details = (
            f"G {values['generator_total']:.3f} (gan {values['generator_gan']:.3f}, l1 {values['generator_l1']:.4f})  "
            f"D real {values['discriminator_real']:.3f} fake {values['discriminator_fake']:.3f}"
        )
        if run.total_steps is None:  # a duration run: the time left, which Progress cannot know
            left = run.config.duration - float(run.checkpoint.trained_seconds.numpy())
            details += f"  left {format_duration(max(left, 0.0))}"
        images_per_second = progress.update(step, details)
    with run.writer.as_default(step=step):
        for name, value in values.items():
            tf.summary.scalar(f"losses/{name}", value)
        tf.summary.scalar("learning_rate", run.checkpoint.generator_optimizer.learning_rate)
        if images_per_second:
            tf.summary.scalar("images_per_second", images_per_second)


# Rollbacks in a row (no step saved between them) after which --on-nan skip gives up: a loss that
# is non-finite batch after batch means the networks diverged, and skipping would go on forever.
MOST_SKIPS_IN_A_ROW = 10


def _roll_back(run, step, step_losses, skips_in_a_row):
    """The non-finite-loss policy: stop, or roll back to the last checkpoint past the bad batch.

    Returns:
        The step to go on from.
    """
    values = ", ".join(f"{name} {float(value):.4g}" for name, value in step_losses.items() if name != "finite")
    latest = run.manager.latest_checkpoint
    if run.config.on_nan == "stop" or not latest:
        raise NonFiniteLossError(
            f"non-finite loss at step {step} ({values}); the last good checkpoint, {latest or 'none'}, is "
            "untouched (--on-nan skip rolls back to it and goes on with the next batch)"
        )
    if skips_in_a_row >= MOST_SKIPS_IN_A_ROW:
        raise NonFiniteLossError(
            f"non-finite loss {skips_in_a_row + 1} times since {latest}, rolled back each time (the last: {values}): "
            "the networks have diverged; the checkpoint is untouched: lower --learning-rate, or check the data"
        )
    skipped = run.checkpoint.skipped_batches
    bad_batch = step - 1 + int(skipped.numpy())
    # It fitted when this run restored or wrote it (one of an older version may lack the progress:
    # it is set again below; a duration run's seconds come from the clock: time spent stays spent).
    run.checkpoint.restore(latest).expect_partial()
    restored = int(run.checkpoint.step.numpy())
    skipped.assign(bad_batch + 1 - restored)
    _set_progress(run, restored, float(run.checkpoint.trained_seconds.numpy()))
    run.log(f"non-finite loss at step {bad_batch + 1} ({values}): rolled back to step {restored}, skipping that batch")
    return restored


def _interrupted(run, reason, current):
    """Saves the step reached and says how to go on, for a stop asked by a signal or the time limit."""
    checkpoints.save(run.manager, current)
    run.writer.flush()
    reached = _reached(run.config, current, run.total_steps, run.checkpoint.trained_seconds)
    return TrainingInterrupted(
        f"{reason}: saved a checkpoint at {reached} in {run.workdir}; run the same command to resume "
        "(generator.keras is written when the run finishes)",
        step=current,
    )


def _unfinished(run, reason, saved):
    """A stop after the last step's checkpoint: the training is kept, generator.keras is not written."""
    step = int(run.checkpoint.step.numpy())
    reached = _reached(run.config, step, run.total_steps, run.checkpoint.trained_seconds)
    kept = f"saved a checkpoint at {reached} in {run.workdir}" if saved else f"the checkpoint of {reached} is kept"
    return TrainingInterrupted(
        f"{reason}: {kept}; generator.keras was not written: run the same command to write it", step=step
    )


def _train_loop(run, stop, clock, verbose):
    """Steps from the restored step to the last, with samples, reports and checkpoints on their intervals.

    Args:
        run: the _Run.
        stop: the signals' requests (a list that SIGTERM or SIGINT appends to).
        clock: the stopping.Clock of the time limit and the duration.
        verbose: show the progress line.
    """
    config, total = run.config, run.total_steps
    current = int(run.checkpoint.step.numpy())
    progress = Progress(total, "step", items_per_unit=config.batch_size, start=current) if verbose else None
    batches = run.batches_from(current)
    skips_in_a_row, first, last = 0, True, run.finished
    while not last:
        current += 1
        if total is None:  # a duration run's schedule reads the seconds trained before the step
            _set_progress(run, current - 1, clock.trained_seconds())
        step_losses, step_seconds = clock.measure(run.train_step, *next(batches))
        # The first step traces the graph: it says nothing of how long the next ones take.
        clock.step_seconds, first = (0.0 if first else step_seconds), False
        if not bool(step_losses["finite"]):
            current = _roll_back(run, current, step_losses, skips_in_a_row)
            skips_in_a_row += 1
            if reason := clock.stop_reason(stop):  # a stop during a run of rollbacks is honoured too
                raise _interrupted(run, reason, current)
            batches = run.batches_from(current)
            continue
        run.checkpoint.step.assign(current)
        if total is None:
            last = clock.duration_spent(config.duration)
            if last:  # the time is used up: running the command again finds the run finished
                _set_progress(run, current, config.duration)
        else:
            last = current == total
            _set_progress(run, current, 0.0)
        if current % config.log_every == 0 or last:
            _report(run, current, step_losses, progress)
        if current % config.save_every == 0 or last:
            _, clock.save_seconds = clock.measure(checkpoints.save, run.manager, current)
            skips_in_a_row = 0
        if last:  # the training is safe in its checkpoint: the closing samples come after any stop
            break
        if current % config.sample_every == 0:
            _write_samples(run, current)
        if reason := clock.stop_reason(stop):
            raise _interrupted(run, reason, current)
    run.writer.flush()
    if stop:  # a stop asked for while the last checkpoint was written
        raise _unfinished(run, stop[0], saved=True)


def _save_generator(run):
    """The trained generator in stock form, written as generator.keras by the chief.

    Other workers drop their temporary checkpoints, which only took part in the collective save.
    """
    generator = fast.clone_as(run.checkpoint.generator, "keras")
    if not run.chief:
        shutil.rmtree(run.manager.directory, ignore_errors=True)
        return generator
    run.log(f"saved {layout.write_generator(run.workdir, generator)}")
    return generator


def train_with(config, workdir, verbose=True, started=None, clock=time.monotonic, train_step_factory=None):
    """Trains with exactly this Config in workdir (fit resolves it first), resuming a checkpoint there.

    Args:
        config: the resolved Config (see resolve_config).
        workdir: the work directory.
        verbose: print the summary and the progress line.
        started: when this command's time began (as clock() read it), for the time limit and a duration; default: now.
        clock: the seconds of a monotonic clock (see fit).
        train_step_factory: makes the train step (see fit); None: make_train_step.

    Returns:
        The trained generator, in stock form.

    Example:
    >>> config = resolve_config(tmp + "/again", settings=dict(dataset=pairs_folder, steps=1, image_size=32,
    ...     generator_filters=4, discriminator_filters=4, discriminator_layers=1), log=lambda line: None)
    >>> train_with(config, tmp + "/again", verbose=False).input_shape
    (None, 32, 32, 3)
    """
    log = _printer(verbose)
    # Start-up (reading and checking the data, tracing the step) uses the time limit and the duration too.
    timer = stopping.Clock(clock() if started is None else started, config.time_limit, clock)
    # Installed before anything else: a stop is never the default handler's sudden death. At
    # start-up and in the closing writes it raises Stopped at once (every file there is written
    # through files.replacing); while steps run, it waits for the step and a checkpoint. The
    # ExitStack gives back what the run holds (the lock, op determinism) when it ends.
    with stopping.stop_requests(acknowledge=log) as stops, contextlib.ExitStack() as held:
        try:
            run = _set_up(config, workdir, log, held, train_step_factory or make_train_step)
        except Stopped as stop:
            raise TrainingInterrupted(f"{stop}: stopped during start-up, before any step; nothing was lost", None) from None
        timer.trained_before = float(run.checkpoint.trained_seconds.numpy())
        if run.finished and layout.generator_is_current(workdir, run.manager.latest_checkpoint):
            reached = _reached(config, int(run.checkpoint.step.numpy()), run.total_steps, run.checkpoint.trained_seconds)
            log(
                f"{workdir} is finished ({reached}, generator.keras written): nothing to do; to train longer, "
                "run it again with more --steps, --epochs or --duration"
            )
            return fast.clone_as(run.checkpoint.generator, "keras")
        with stops.deferring("stopping after the step in progress, with a checkpoint"):
            _train_loop(run, stops.requested, timer, verbose)
        try:
            if not run.finished:
                _write_samples(run, int(run.checkpoint.step.numpy()))
            return _save_generator(run)
        except Stopped as stop:
            raise _unfinished(run, str(stop), saved=False) from None
