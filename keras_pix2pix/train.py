"""Training: the paper's alternating D and G steps in one @tf.function, and the loop around it.

A work directory holds everything a run makes:
    config.json       every setting (written once the networks are built and any checkpoint restored)
    checkpoints/      both models, both optimizers, the step and the dropout random states
    generator.keras   the final generator, stock Keras layers (keras.models.load_model, no import needed)
    samples/          PNG grids input | output | target for fixed validation pairs (paper mode)
    logs/             TensorBoard scalars (losses, learning rate, images/s) and sample images
    losses.png        the losses, the learning rate and the sample pairs' L1 over steps (with each sample grid)
    .lock             held by the running fit (flock), so that a second fit on the directory is refused
Running `fit` again on the same work directory resumes from the latest checkpoint.

The networks train in their fast form (keras_pix2pix.fast, "train"), which computes the same
function as the stock layers with the same variables; generator.keras is written in stock form.
"""

import contextlib
import dataclasses
import math
import os
import random
import shutil
import time

import keras
import tensorflow as tf

from keras_pix2pix import checkpoints, data, datasets, distribute, fast, files, losses, models, plots, stopping
from keras_pix2pix.config import ARCHITECTURE_FIELDS, DEFAULT_EPOCHS, Config, UsageError, duration_text
from keras_pix2pix.modes import translate, unchanged
from keras_pix2pix.errors import NonFiniteLossError, Stopped, TrainingInterrupted
from keras_pix2pix.progress import Progress, format_duration


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate, then a linear decay to zero over the last decay_steps steps.

    junyanz's "linear" policy: 100 epochs at 2e-4, then 100 epochs decaying to 0.

    Args:
        learning_rate: the initial rate.
        total_steps: the length of the run.
        decay_steps: the final steps over which the rate falls to zero; 0 keeps it constant.

    Example:
    >>> schedule = ConstantThenLinearDecay(2e-4, total_steps=200, decay_steps=100)
    >>> [round(float(schedule(step)), 6) for step in (0, 100, 150, 200)]
    [0.0002, 0.0002, 0.0001, 0.0]
    """

    def __init__(self, learning_rate, total_steps, decay_steps):
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.decay_steps = decay_steps

    def __call__(self, step):
        if not self.decay_steps:
            return tf.constant(self.learning_rate, tf.float32)
        remaining = tf.cast(self.total_steps, tf.float32) - tf.cast(step, tf.float32)
        return self.learning_rate * tf.clip_by_value(remaining / self.decay_steps, 0.0, 1.0)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps, "decay_steps": self.decay_steps}


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class ConstantThenLinearDecayInTime(ConstantThenLinearDecay):
    """The same policy in seconds of training (a --duration run): constant for half the duration, then linear to 0.

    The optimizers call a schedule with their step; this one reads the seconds trained instead,
    from a variable the training loop sets before each step. So a run ends annealed when its time
    is up, however many steps the machine managed.

    Args:
        learning_rate: the initial rate.
        duration: the run's length in seconds.
        trained_seconds: a float32 variable holding the seconds trained; default: a new one at 0.

    Example:
    >>> seconds = tf.Variable(0.0)
    >>> schedule = ConstantThenLinearDecayInTime(2e-4, duration=600, trained_seconds=seconds)
    >>> rates = []
    >>> for now in (0, 300, 450, 600):
    ...     _ = seconds.assign(now)
    ...     rates.append(round(float(schedule(step=0)), 6))
    >>> rates
    [0.0002, 0.0002, 0.0001, 0.0]
    """

    def __init__(self, learning_rate, duration, trained_seconds=None):
        super().__init__(learning_rate, total_steps=duration, decay_steps=duration / 2)
        self.duration = duration
        self.trained_seconds = tf.Variable(0.0, trainable=False) if trained_seconds is None else trained_seconds

    def __call__(self, step):
        return super().__call__(self.trained_seconds)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "duration": self.duration}


def run_length(config, train_pairs):
    """(total steps, decay steps) of a run, from steps or epochs over train_pairs pairs; (None, None) for a duration."""
    if config.duration is not None:
        return None, None
    steps_per_epoch = math.ceil(train_pairs / config.batch_size)
    if config.steps is not None:
        total = config.steps
    else:
        total = max(1, math.ceil((config.epochs if config.epochs is not None else DEFAULT_EPOCHS) * steps_per_epoch))
    if config.decay_steps is not None:
        decay = config.decay_steps
    elif config.decay_epochs is not None:
        decay = math.ceil(config.decay_epochs * steps_per_epoch)
    else:
        decay = total // 2
    return total, min(decay, total)


def make_optimizers(config, total_steps, decay_steps, trained_seconds=None):
    """One Adam per network (paper: lr 2e-4, beta1 0.5, beta2 0.999; epsilon 1e-8 as PyTorch's) on the same schedule.

    With mixed_float16 each is wrapped in a LossScaleOptimizer: float16 gradients underflow
    without loss scaling, and a custom loop must scale the loss itself (see make_train_step).
    A config with a duration gets the schedule in seconds, read from trained_seconds (a variable).
    """
    if config.duration is not None:
        schedule = ConstantThenLinearDecayInTime(config.learning_rate, config.duration, trained_seconds)
    else:
        schedule = ConstantThenLinearDecay(config.learning_rate, total_steps, decay_steps)
    optimizers = []
    for name in ("generator_adam", "discriminator_adam"):
        optimizer = fast.adam(schedule, beta_1=config.beta_1, beta_2=config.beta_2, name=name)
        if config.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
        optimizers.append(optimizer)
    return tuple(optimizers)


def _scaled(optimizer, loss):
    """The loss to differentiate: scaled up under a LossScaleOptimizer, which unscales the gradients."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config, strategy=None):
    """The paper's training step: one gradient step on D, then one on G, for a batch.

    Args:
        generator, discriminator: the models.
        generator_optimizer, discriminator_optimizer: their optimizers, already built.
        config: gives lambda_l1, gan_loss and xla.
        strategy: the tf.distribute strategy the models were built under; None: the default.

    Returns:
        A tf.function (inputs, targets) -> dict of scalar losses over the global batch:
        generator_total, generator_gan, generator_l1, discriminator_real, discriminator_fake;
        and `finite`, whether all of them are finite. Under a strategy, inputs and targets are
        the per-replica values of a distributed dataset.

    Example:
    >>> config = Config(image_size=32, generator_filters=4, discriminator_filters=4, discriminator_layers=1)
    >>> generator, discriminator = models.build_models(config)
    >>> generator_optimizer, discriminator_optimizer = make_optimizers(config, total_steps=10, decay_steps=5)
    >>> step = make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
    >>> images = tf.zeros((1, 32, 32, 3))
    >>> sorted(step(images, images))
    ['discriminator_fake', 'discriminator_real', 'finite', 'generator_gan', 'generator_l1', 'generator_total']
    """

    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(inputs, targets):
        with tf.GradientTape() as generator_tape:
            generated = generator(inputs, training=True)
            # D's step sees the fake as a constant and must not leave its ops on G's tape.
            with generator_tape.stop_recording(), tf.GradientTape() as discriminator_tape:
                real_logits = discriminator([inputs, targets], training=True)
                fake_logits = discriminator([inputs, tf.stop_gradient(generated)], training=True)
                discriminator_total, discriminator_real, discriminator_fake = losses.discriminator_loss(
                    real_logits, fake_logits, gan_loss=config.gan_loss
                )
                # Scaled inside the tape, so that the scaling is part of what is differentiated.
                discriminator_objective = _scaled(discriminator_optimizer, discriminator_total)
            discriminator_gradients = discriminator_tape.gradient(
                discriminator_objective, discriminator.trainable_variables
            )
            discriminator_optimizer.apply_gradients(zip(discriminator_gradients, discriminator.trainable_variables))
            # G's step is taken against the discriminator it has just updated, as the paper
            # alternates (and junyanz's optimize_parameters does).
            fake_logits = discriminator([inputs, generated], training=True)
            generator_total, generator_gan, generator_l1 = losses.generator_loss(
                fake_logits, generated, targets, lambda_l1=config.lambda_l1, gan_loss=config.gan_loss
            )
            generator_objective = _scaled(generator_optimizer, generator_total)
        generator_gradients = generator_tape.gradient(generator_objective, generator.trainable_variables)
        generator_optimizer.apply_gradients(zip(generator_gradients, generator.trainable_variables))
        return {
            "generator_total": generator_total,
            "generator_gan": generator_gan,
            "generator_l1": generator_l1,
            "discriminator_real": discriminator_real,
            "discriminator_fake": discriminator_fake,
        }

    if config.xla:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_step(inputs, targets):
        per_replica = strategy.run(replica_step, args=(inputs, targets))
        # Each replica's loss is its share of the global-batch mean, so their sum is that mean.
        totals = {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for name, value in per_replica.items()
        }
        # One flag, fetched every step: the loop stops at the first non-finite loss.
        totals["finite"] = tf.reduce_all(tf.math.is_finite(tf.stack(list(totals.values()))))
        return totals

    return train_step


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


def default_workdir(dataset):
    """runs/NAME for a dataset: its catalog name, or the last part of its folder's path.

    Example:
    >>> default_workdir("demo"), default_workdir("data/facades/")
    ('runs/demo', 'runs/facades')
    """
    name = os.path.basename(os.path.abspath(dataset)) if dataset not in ("demo", *datasets.CATALOG_NAMES) else dataset
    return os.path.join("runs", name or "run")


# Each group is one choice: naming one member in a resumed run drops the saved others. A duration
# drops the decay settings too: its decay is the second half of its time.
_EXCLUSIVE_SETTINGS = (("steps", "epochs", "duration"), ("decay_steps", "decay_epochs"))


def _shown(name, value):
    """A setting's value as a note shows it: a duration as 2h30m, no value as "unset"."""
    if value is None:
        return "unset"
    return duration_text(value) if name in ("time_limit", "duration") else repr(value)


def resolve_config(workdir, config=None, settings=None, log=print):
    """The Config a run in workdir trains with: one rule for the command line and for Python.

    Settings the caller names override; the others come from the saved config.json when the work
    directory holds a run (resuming), else from the defaults. A Config names every setting; the
    `settings` keywords (the command line's flags) name only themselves. Resuming fills an unset
    seed and direction from the saved run, refuses a change to the networks' shape and says what
    else changed.

    Args:
        workdir: the work directory.
        config: a Config naming every setting, or None.
        settings: a dict of Config fields to set over config (or over config.json, or the defaults).
        log: where the notes about changed settings go.

    Example:
    >>> resolve_config("/nonexistent/run", settings={"image_size": 64}).resolved_load_size
    (72, 72)
    """
    settings = dict(settings or {})
    for group in _EXCLUSIVE_SETTINGS:
        for name in [name for name in group if name in settings]:
            for other in group:
                settings.setdefault(other, None)
    if settings.get("duration") is not None:
        settings.setdefault("decay_steps", None)
        settings.setdefault("decay_epochs", None)
    path = os.path.join(workdir, "config.json")
    saved = Config.load(path) if os.path.exists(path) else None
    base = config if config is not None else saved or Config()
    if not isinstance(base, Config):
        raise UsageError(f"config must be a keras_pix2pix.Config or None; got {type(base).__name__}")
    known = {field.name for field in dataclasses.fields(Config)}
    if set(settings) - known:
        unknown = ", ".join(sorted(set(settings) - known))
        raise UsageError(f"unknown setting(s) {unknown}; known: {', '.join(sorted(known))}")
    resolved = base.replace(**settings)
    if saved is None:
        return resolved
    resolved = resolved.replace(
        seed=resolved.seed if resolved.seed is not None else saved.seed,
        direction=resolved.direction or saved.direction,
    )
    changed = resolved.differences(saved)
    architecture = [change for change in changed if change[0] in ARCHITECTURE_FIELDS]
    if architecture:
        name, new, old = architecture[0]
        raise UsageError(
            f"{workdir} was trained with {name}={old!r} but this run asks for {name}={new!r}; "
            "use another --workdir, or the saved settings"
        )
    if "mixed_float16" in (resolved.precision, saved.precision) and resolved.precision != saved.precision:
        # mixed_float16 wraps each optimizer in a loss scaler: its checkpoint holds other variables.
        raise UsageError(
            f"{workdir} was trained with precision={saved.precision!r}, and a checkpoint cannot change to or "
            f"from mixed_float16 (its optimizers hold a loss scale); resume with --precision {saved.precision}, "
            "or use another --workdir"
        )
    for name, new, old in changed:
        log(f"note: {name} changed from {_shown(name, old)} (saved config.json) to {_shown(name, new)}")
    return resolved


def _printer(verbose):
    """print with flush when verbose, else a function that prints nothing."""
    return (lambda message: print(message, flush=True)) if verbose else (lambda message: None)


def fit(config=None, workdir=None, *, verbose=True, started=None, clock=time.monotonic, **settings):
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
    return train_with(config, workdir, verbose=verbose, started=started, clock=clock)



@dataclasses.dataclass
class _Run:
    """What one training run works with; made by _set_up, used by the loop's parts."""

    config: Config
    workdir: str
    strategy: object
    chief: bool
    train_pairs: object
    sample_batch: tuple
    total_steps: int | None  # None: a duration run
    finished: bool  # all its steps, or all its duration, trained when it started
    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    train_step: object
    writer: object
    log: object
    start: int


def _read_data(config, log):
    """(splits, training pairs, sample pairs), every file decoded once so that a bad one stops the run now."""
    splits = datasets.find_dataset(config.dataset, config.data_dir, config.manual_dir)
    train_pairs = datasets.check_pairs(splits.train, config.skip_bad, log, config.max_pixels)
    sample_pairs = splits.validation.take(config.sample_count)
    sample_pairs = datasets.check_pairs(sample_pairs, config.skip_bad, log, config.max_pixels)
    return splits, train_pairs, sample_pairs


def _build_networks(config, strategy, total_steps, decay_steps):
    """The networks in their training form, their optimizers (built) and the run's checkpoint.

    The checkpoint's trained_seconds (what a duration run's schedule reads) is attached after
    the restore (checkpoints.restore_latest): checkpoints written before it lack it.
    """
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"batch_size {config.batch_size} must be a multiple of the {replicas} replicas of strategy "
            f"{config.strategy} (it is the global batch)"
        )
    with strategy.scope():
        generator, discriminator = (fast.clone_as(model, "train") for model in models.build_models(config))
        trained_seconds = tf.Variable(0.0, trainable=False, name="trained_seconds")
        optimizers = make_optimizers(config, total_steps, decay_steps, trained_seconds)
        generator_optimizer, discriminator_optimizer = optimizers
        # Built up front, so that a checkpoint restores their slots at once, not on the first step.
        generator_optimizer.build(generator.trainable_variables)
        discriminator_optimizer.build(discriminator.trainable_variables)
        checkpoint = checkpoints.make_checkpoint(generator, discriminator, generator_optimizer, discriminator_optimizer)
    return checkpoint, trained_seconds


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


def _claim_workdir(workdir, config, chief, stack, log):
    """Makes the work directory, locks it for this run (the chief) and sweeps what killed runs left."""
    if config.dataset not in ("demo", *datasets.CATALOG_NAMES) and files.is_inside(workdir, config.dataset):
        raise UsageError(
            f"--workdir {workdir} is inside the dataset folder {config.dataset}: the run's files would mix with "
            "its images; pass a --workdir outside it"
        )
    # A run refused at start-up leaves no work directory it made (not even its .lock).
    stack.enter_context(files.output_folder(workdir, "--workdir", own=(".lock",)))
    if not chief:
        return
    stack.enter_context(files.locked(workdir, "fit"))
    for folder in (workdir, os.path.join(workdir, "samples")):
        files.sweep_leftovers(folder, log)
    checkpoints.sweep(os.path.join(workdir, "checkpoints"), log)


def _reached(config, step, total_steps, trained_seconds):
    """Where a run stands, for its messages: "step 40 of 100", or "step 40 after 5m of 15m" for a duration run."""
    if total_steps is not None:
        return f"step {step} of {total_steps}"
    trained = duration_text(round(float(trained_seconds.numpy())))
    return f"step {step} after {trained} of {duration_text(config.duration)}"


def _check_progress(workdir, start, total_steps, restored):
    """Refuses a run that would undo work: fewer steps than done, or a new run over a trained generator."""
    if total_steps is not None and start > total_steps:
        raise UsageError(
            f"{workdir} has trained {start} steps, more than the {total_steps} this run asks for: ask for more "
            f"(--steps above {start}) to train on, or use another --workdir"
        )
    if restored is None and os.path.exists(os.path.join(workdir, "generator.keras")):
        raise UsageError(
            f"{workdir} holds a generator.keras but no checkpoint to resume: a new run would replace it; use "
            "another --workdir (or move generator.keras away to train afresh here)"
        )


def _set_up(config, workdir, log, stack):
    """Everything before the first step: data, networks, the restored checkpoint, config.json."""
    # First: a multi-worker strategy must be set up before TensorFlow runs any op.
    strategy = distribute.make_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    _claim_workdir(workdir, config, chief, stack, log)
    splits, train_pairs, sample_pairs = _read_data(config, log)
    config = config.replace(
        seed=config.seed if config.seed is not None else random.SystemRandom().randrange(2**31 - 1),
        direction=config.direction or splits.direction,
    )
    total_steps, decay_steps = run_length(config, len(train_pairs))
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    checkpoint, trained_seconds = _build_networks(config, strategy, total_steps, decay_steps)
    manager, start = checkpoints.restore_latest(checkpoint, workdir, strategy, config.keep_checkpoints, log,
                                                trained_seconds=trained_seconds)  # fmt: skip
    if chief:
        _check_progress(workdir, start, total_steps, manager.latest_checkpoint)
    if config.duration is None:
        finished = start >= total_steps
    else:
        finished = float(trained_seconds.numpy()) >= config.duration
    if manager.latest_checkpoint and not finished:
        log(f"resuming {workdir} at {_reached(config, start, total_steps, trained_seconds)}")
    # Saved only now that the networks are built and the checkpoint fits them: a run refused
    # before this point leaves the work directory's config.json as it was.
    if chief and not finished:
        config.save(os.path.join(workdir, "config.json"))
    log(_describe(config, splits, train_pairs, checkpoint, total_steps, decay_steps))
    sample_batch = (None, None)
    if config.sample_count:
        sample_batch = next(iter(data.eval_dataset(sample_pairs, config, config.direction, batch_size=len(sample_pairs))))
    logs = os.path.join(workdir, "logs")
    return _Run(
        config=config, workdir=workdir, strategy=strategy, chief=chief, train_pairs=train_pairs,
        sample_batch=sample_batch, total_steps=total_steps, finished=finished, checkpoint=checkpoint,
        manager=manager, log=log, start=start,
        train_step=make_train_step(checkpoint.generator, checkpoint.discriminator, checkpoint.generator_optimizer,
                                   checkpoint.discriminator_optimizer, config, strategy),
        # A finished run writes nothing, not even an empty event file.
        writer=tf.summary.create_file_writer(logs) if chief and not finished else tf.summary.create_noop_writer(),
    )  # fmt: skip


def _batches_from(run, step):
    """The training stream from a step on; it is indexed by batch, so skipped batches move it forward."""
    config = run.config
    first_example = (step + int(run.checkpoint.skipped_batches.numpy())) * config.batch_size
    dataset = data.train_dataset(run.train_pairs, config, config.direction, config.seed, start_example=first_example)
    options = tf.data.Options()
    # Workers read the same stream and keep their own share of each global batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(run.strategy.experimental_distribute_dataset(dataset.with_options(options)))


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
    os.makedirs(os.path.join(run.workdir, "samples"), exist_ok=True)
    path = os.path.join(run.workdir, "samples", f"step_{step:07d}.png")
    files.write_atomically(path, tf.io.encode_png(image).numpy())
    with run.writer.as_default(step=step):
        tf.summary.image("samples", image[None], max_outputs=1)
        tf.summary.scalar("validation/l1_samples", tf.reduce_mean(tf.abs(outputs - targets)))
    # The curves beside the grid: losses.png, drawn from the logs just written.
    run.writer.flush()
    plots.plot_losses(os.path.join(run.workdir, "logs"), os.path.join(run.workdir, "losses.png"))


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
    # It fitted when this run restored or wrote it; one written before checkpoints recorded
    # trained_seconds lacks that variable (the loop sets it again from the clock: time spent stays spent).
    run.checkpoint.restore(latest).expect_partial()
    restored = int(run.checkpoint.step.numpy())
    skipped.assign(bad_batch + 1 - restored)
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


# Kept back from the time limit for the process to end after its last checkpoint: TensorFlow's
# teardown took 1.2 s after a 64 px run on the 2-core CPU of bench/README.md.
EXIT_SECONDS = 2.0


class _Clock:
    """The time limit and a run's duration: whether one more step, a checkpoint and the exit still fit in them."""

    def __init__(self, started, limit, now):
        self.now = now
        self.started = started
        self.deadline = started + limit - EXIT_SECONDS if limit else None
        self.limit = limit
        self.step_seconds = self.save_seconds = 0.0
        self.trained_before = 0.0  # seconds the run trained in earlier commands (its checkpoint's)

    def trained_seconds(self):
        """The seconds the run has trained: earlier commands' and this one's since it started."""
        return self.trained_before + self.now() - self.started

    def duration_spent(self, duration):
        """Whether a run of `duration` seconds has no time left for one more step and its closing checkpoint."""
        return self.trained_seconds() + self.step_seconds + self.save_seconds + EXIT_SECONDS >= duration

    def timed(self, work, *arguments):
        """(work(*arguments), the seconds it took)."""
        start = self.now()
        result = work(*arguments)
        return result, self.now() - start

    def stop_reason(self, signals):
        """Why the loop must stop now (a signal's name, or the time limit), or None."""
        if signals:
            return signals[0]
        if self.deadline and self.now() + self.step_seconds + self.save_seconds >= self.deadline:
            return f"time limit of {duration_text(self.limit)} reached"
        return None


def _train_loop(run, stop, clock, verbose):
    """Steps from the restored step to the last, with samples, reports and checkpoints on their intervals.

    Args:
        run: the _Run.
        stop: the signals' requests (a list that SIGTERM or SIGINT appends to).
        clock: the _Clock of the time limit.
        verbose: show the progress line.
    """
    config, total, trained_seconds = run.config, run.total_steps, run.checkpoint.trained_seconds
    current = int(run.checkpoint.step.numpy())
    progress = Progress(total, "step", items_per_unit=config.batch_size, start=current) if verbose else None
    batches = _batches_from(run, current)
    skips_in_a_row, first, last = 0, True, run.finished
    while not last:
        current += 1
        trained_seconds.assign(clock.trained_seconds())  # what a duration run's schedule reads
        step_losses, clock.step_seconds = clock.timed(run.train_step, *next(batches))
        if first:  # the first step traces the graph: no estimate of the next ones
            clock.step_seconds, first = 0.0, False
        if not bool(step_losses["finite"]):
            current = _roll_back(run, current, step_losses, skips_in_a_row)
            skips_in_a_row += 1
            if reason := clock.stop_reason(stop):  # a stop during a run of rollbacks is honoured too
                raise _interrupted(run, reason, current)
            batches = _batches_from(run, current)
            continue
        run.checkpoint.step.assign(current)
        if total is None:
            last = clock.duration_spent(config.duration)
            if last:  # the time is used up: running the command again finds the run finished
                trained_seconds.assign(config.duration)
        else:
            last = current == total
        if current % config.log_every == 0 or last:
            _report(run, current, step_losses, progress)
        if current % config.save_every == 0 or last:
            _, clock.save_seconds = clock.timed(checkpoints.save, run.manager, current)
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
    path = os.path.join(run.workdir, "generator.keras")
    with files.replacing(path) as temporary:
        generator.save(temporary)
    run.log(f"saved {path}")
    return generator


def _generator_is_current(run):
    """Whether generator.keras was written after the last checkpoint (a failed or killed save leaves it older)."""
    path = os.path.join(run.workdir, "generator.keras")
    latest = run.manager.latest_checkpoint
    return os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(latest + ".index")


def train_with(config, workdir, verbose=True, started=None, clock=time.monotonic):
    """Trains with exactly this Config in workdir (fit resolves it first), resuming a checkpoint there.

    Args:
        config: the resolved Config (see resolve_config).
        workdir: the work directory.
        verbose: print the summary and the progress line.
        started: when this command's time began (as clock() read it), for the time limit and a duration; default: now.
        clock: the seconds of a monotonic clock (see fit).

    Returns:
        The trained generator, in stock form.
    """
    log = _printer(verbose)
    # Start-up (reading and checking the data, tracing the step) uses the time limit and the duration too.
    timer = _Clock(clock() if started is None else started, config.time_limit, clock)
    # Installed before anything else: a stop is never the default handler's sudden death. At
    # start-up and in the closing writes it raises Stopped at once (every file there is written
    # through files.replacing); while steps run, it waits for the step and a checkpoint.
    with stopping.stop_requests(acknowledge=log) as stops, contextlib.ExitStack() as held:
        try:
            run = _set_up(config, workdir, log, held)
        except Stopped as stop:
            raise TrainingInterrupted(f"{stop}: stopped during start-up, before any step; nothing was lost", None) from None
        timer.trained_before = float(run.checkpoint.trained_seconds.numpy())
        if run.finished and _generator_is_current(run):
            reached = _reached(config, run.start, run.total_steps, run.checkpoint.trained_seconds)
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
