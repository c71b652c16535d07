"""Training: the paper's alternating D and G steps in one @tf.function, and the step loop.

A work directory holds everything a run makes:
    config.json       every setting (written once the networks are built and any checkpoint restored)
    checkpoints/      both models, both optimizers, the step and the dropout random states
    generator.keras   the final generator (keras.models.load_model, once keras_pix2pix is imported)
    samples/          PNG grids input | output | target for fixed validation pairs (paper mode)
    logs/             TensorBoard scalars (losses, learning rate, images/s) and sample images
Running `fit` again on the same work directory resumes from the latest checkpoint.
"""

import contextlib
import dataclasses
import math
import os
import random
import shutil
import signal
import sys
import threading
import time

import keras
import tensorflow as tf

from keras_pix2pix import data, datasets, distribute, losses, models
from keras_pix2pix.config import ARCHITECTURE_FIELDS, Config, UsageError
from keras_pix2pix.predict import translate


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


def run_length(config, train_pairs):
    """(total steps, decay steps) of a run, from steps or epochs over train_pairs pairs."""
    steps_per_epoch = math.ceil(train_pairs / config.batch_size)
    if config.steps is not None:
        total = config.steps
    else:
        total = max(1, math.ceil((config.epochs if config.epochs is not None else 200) * steps_per_epoch))
    if config.decay_steps is not None:
        decay = config.decay_steps
    elif config.decay_epochs is not None:
        decay = math.ceil(config.decay_epochs * steps_per_epoch)
    else:
        decay = total // 2
    return total, min(decay, total)


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose update of each variable is TensorFlow's fused Adam kernel.

    The same variables and checkpoints as Keras' Adam (m and v per variable; the step size
    lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)), computed by ResourceApplyAdam in one pass over the
    memory instead of about ten elementwise ops. For the 54M-parameter U-Net that is 26 ms instead
    of 94 ms a step on the 2-core CPU of bench/README.md. epsilon is added where PyTorch's Adam
    (the paper's code) adds it, to the bias-corrected sqrt(v_t / (1 - beta_2^t)), not to sqrt(v_t)
    as Keras does; the difference shows only while v is tiny. amsgrad and weight decay take Keras'
    path (and its epsilon).

    Args:
        The arguments of keras.optimizers.Adam.

    Example:
    >>> optimizer = FusedAdam(2e-4, beta_1=0.5, epsilon=1e-8)
    >>> weights = keras.Variable([1.0, 2.0])
    >>> _ = optimizer.apply_gradients([(tf.constant([0.5, -0.5]), weights)])
    >>> [round(float(value), 4) for value in weights.numpy()]
    [0.9998, 2.0002]
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or self.weight_decay or not isinstance(variable, tf.Variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta2_power = tf.pow(tf.cast(self.beta_2, dtype), step)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=beta2_power,
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            # The kernel divides by sqrt(v) + epsilon with the bias correction in its step size;
            # this epsilon makes that PyTorch's m_hat / (sqrt(v_hat) + self.epsilon).
            epsilon=tf.cast(self.epsilon, dtype) * tf.sqrt(1.0 - beta2_power),
            grad=tf.cast(gradient, dtype),
        )


def make_optimizers(config, total_steps, decay_steps):
    """One Adam per network (paper: lr 2e-4, beta1 0.5, beta2 0.999; epsilon 1e-8 as PyTorch's) on the same schedule.

    With mixed_float16 each is wrapped in a LossScaleOptimizer: float16 gradients underflow
    without loss scaling, and a custom loop must scale the loss itself (see make_train_step).
    """
    schedule = ConstantThenLinearDecay(config.learning_rate, total_steps, decay_steps)
    optimizers = []
    for name in ("generator_adam", "discriminator_adam"):
        optimizer = FusedAdam(schedule, beta_1=config.beta_1, beta_2=config.beta_2, epsilon=1e-8, name=name)
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
    >>> step = make_train_step(generator, discriminator, g_adam, d_adam, config)  # doctest: +SKIP
    >>> step(inputs, targets)["generator_l1"]  # doctest: +SKIP
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


def dropout_states(model):
    """The random states of the model's dropout layers, which tf.train.Checkpoint misses alone."""
    return [layer.seed_generator.state for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def make_checkpoint(generator, discriminator, generator_optimizer, discriminator_optimizer, step):
    return tf.train.Checkpoint(
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        step=step,
        generator_dropout_states=dropout_states(generator),
    )


def restore_generator(workdir, config):
    """The generator of a work directory's latest checkpoint (for runs without generator.keras)."""
    generator = models.generator_from_config(config)
    checkpoint = tf.train.Checkpoint(generator=generator)
    checkpoint.restore(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))).expect_partial()
    return generator


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


# The form of the networks a checkpoint holds, saved in it: 2 since the U-Net is the authors'
# (pre-activation blocks, [skip, decoder] concatenations) and D's first convolution has a bias.
NETWORK_FORM = 2


def _check_network_form(path, workdir):
    """Refuses a checkpoint whose networks are of another form than this version builds.

    Read before restoring: the old and new generators have variables of the same shapes, so a
    restore could go on silently with networks that compute another function.
    """
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        raise UsageError(f"the checkpoint {path} cannot be read: {str(error).splitlines()[0][:200]}") from None
    key = "network_form/.ATTRIBUTES/VARIABLE_VALUE"
    form = int(reader.get_tensor(key)) if reader.has_tensor(key) else 1
    if form != NETWORK_FORM:
        raise UsageError(
            f"the checkpoint in {workdir} holds networks of an older keras-pix2pix (before the U-Net took "
            "the authors' exact form); it cannot be resumed: train in another --workdir (its "
            "generator.keras still loads for predict)"
        )


def default_workdir(dataset):
    """runs/NAME for a dataset: its catalog name, or the last part of its folder's path.

    Example:
    >>> default_workdir("demo"), default_workdir("data/facades/")
    ('runs/demo', 'runs/facades')
    """
    name = os.path.basename(os.path.abspath(dataset)) if dataset not in ("demo", *datasets.CATALOG_NAMES) else dataset
    return os.path.join("runs", name or "run")


# Each pair is one choice: naming one member of a pair in a resumed run drops the saved other.
_EXCLUSIVE_SETTINGS = (("steps", "epochs"), ("decay_steps", "decay_epochs"))


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
    for pair in _EXCLUSIVE_SETTINGS:
        for name, other in (pair, pair[::-1]):
            if name in settings:
                settings.setdefault(other, None)
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
    for name, new, old in changed:
        log(f"note: {name} changed from {old!r} (saved config.json) to {new!r}")
    return resolved


class TrainingInterrupted(Exception):
    """SIGTERM or SIGINT stopped training after a checkpoint at `step`; the same command resumes."""

    def __init__(self, message, step):
        super().__init__(message)
        self.step = step


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is untouched."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the last good checkpoint is untouched."""


@contextlib.contextmanager
def _stop_on_signals():
    """Turns SIGTERM and SIGINT into a request (the yielded list gets the signal's name)."""
    requested = []
    if threading.current_thread() is not threading.main_thread():
        yield requested  # signal handlers can only be set from the main thread
        return

    def request(number, frame):
        requested.append(signal.Signals(number).name)

    previous = {number: signal.signal(number, request) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield requested
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _format_duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Progress:
    """One status line: rewritten in place on a terminal, a new line per update in a log."""

    def __init__(self, total, start, batch_size):
        self.total, self.batch_size, self.stream = total, batch_size, sys.stdout
        self.interactive = self.stream.isatty()
        self.last_step, self.last_time = start, time.perf_counter()

    def update(self, step, values):
        now = time.perf_counter()
        seconds_per_step = (now - self.last_time) / max(step - self.last_step, 1)
        self.last_step, self.last_time = step, now
        line = (
            f"step {step}/{self.total}  "
            f"G {values['generator_total']:.3f} (gan {values['generator_gan']:.3f}, l1 {values['generator_l1']:.4f})  "
            f"D real {values['discriminator_real']:.3f} fake {values['discriminator_fake']:.3f}  "
            f"{self.batch_size / seconds_per_step:.2f} img/s  {seconds_per_step:.3f} s/step  "
            f"left {_format_duration(seconds_per_step * (self.total - step))}"
        )
        if self.interactive:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if step == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        return self.batch_size / seconds_per_step


def _printer(verbose):
    """print with flush when verbose, else a function that prints nothing."""
    return (lambda message: print(message, flush=True)) if verbose else (lambda message: None)


def fit(config=None, workdir=None, *, verbose=True, **settings):
    """Trains pix2pix as the paper does and returns the trained generator.

    Resumes from the latest checkpoint when workdir already holds a run: settings not named here
    come from its config.json, and the run continues to the requested number of steps. The
    command line's `fit` calls this with its flags as `settings`.

    Args:
        config: a Config naming every setting; None: config.json's settings when resuming, else
            the defaults.
        workdir: the work directory (created if needed); None: runs/DATASET_NAME.
        verbose: print the summary and the progress line.
        **settings: Config fields to set over config (or over config.json, or the defaults).

    Returns:
        The trained generator (also saved as workdir/generator.keras).

    Example:
    >>> generator = fit(dataset="demo", image_size=64, steps=300, workdir="/tmp/pix2pix-demo")  # doctest: +SKIP
    >>> generator = fit(workdir="/tmp/pix2pix-demo", steps=600)  # resume, 300 steps more  # doctest: +SKIP
    """
    log = _printer(verbose)
    if workdir is None:
        dataset = settings.get("dataset") or (config.dataset if isinstance(config, Config) else Config.dataset)
        workdir = default_workdir(dataset)
    return train_with(resolve_config(workdir, config, settings, log), workdir, verbose=verbose)


def train_with(config, workdir, verbose=True):
    """Trains with exactly this Config in workdir (fit resolves it first), resuming a checkpoint there.

    Args:
        config: the resolved Config (see resolve_config).
        workdir: the work directory.
        verbose: print the summary and the progress line.
    """
    log = _printer(verbose)
    # First: a multi-worker strategy must be set up before TensorFlow runs any op.
    strategy = distribute.make_strategy(config.strategy)
    splits = datasets.find_dataset(config.dataset, config.data_dir, config.manual_dir)
    # Every file is decoded now, so that a bad one stops the run before it starts, not hours in.
    train_pairs = datasets.check_pairs(splits.train, config.skip_bad, log)
    sample_pairs = datasets.check_pairs(splits.validation.take(config.sample_count), config.skip_bad, log)
    os.makedirs(workdir, exist_ok=True)
    config_path = os.path.join(workdir, "config.json")
    config = config.replace(
        seed=config.seed if config.seed is not None else random.SystemRandom().randrange(2**31 - 1),
        direction=config.direction or splits.direction,
    )
    total_steps, decay_steps = run_length(config, len(train_pairs))

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"batch_size {config.batch_size} must be a multiple of the {replicas} replicas of strategy "
            f"{config.strategy} (it is the global batch)"
        )
    chief = distribute.is_chief(strategy)
    with strategy.scope():
        generator, discriminator = models.build_models(config)
        generator_optimizer, discriminator_optimizer = make_optimizers(config, total_steps, decay_steps)
        # Built up front, so that a checkpoint restores their slots at once, not on the first step.
        generator_optimizer.build(generator.trainable_variables)
        discriminator_optimizer.build(discriminator.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        skipped_batches = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_batches")
        network_form = tf.Variable(NETWORK_FORM, dtype=tf.int64, trainable=False, name="network_form")
    checkpoint = make_checkpoint(generator, discriminator, generator_optimizer, discriminator_optimizer, step)
    checkpoint.skipped_batches = skipped_batches
    checkpoint.network_form = network_form
    manager = tf.train.CheckpointManager(
        checkpoint, distribute.checkpoint_directory(workdir, strategy), max_to_keep=config.keep_checkpoints
    )
    if manager.latest_checkpoint:
        _check_network_form(manager.latest_checkpoint, workdir)
        try:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (AssertionError, ValueError) as error:
            raise UsageError(
                f"the checkpoint in {workdir} does not fit this run's settings (did --precision change "
                f"to or from mixed_float16?): {str(error).splitlines()[0][:200]}"
            ) from None
        log(f"resuming {workdir} at step {int(step.numpy())} of {total_steps}")
    start = int(step.numpy())
    # Saved only now that the networks are built and the checkpoint fits them: a run refused
    # before this point leaves the work directory's config.json as it was.
    if chief:
        config.save(config_path)

    patch = models.receptive_field(config.discriminator_layers)
    grid = models.patch_grid(config.image_size, config.discriminator_layers)
    log(
        f"{splits.name}: {len(train_pairs)} training pairs, {config.direction}; "
        f"{config.image_size[0]}x{config.image_size[1]} images, batch {config.batch_size}; "
        f"{config.generator} generator {models.trainable_parameters(generator):,} trainable parameters; "
        f"{patch}x{patch} PatchGAN ({grid[0]}x{grid[1]} logits) {models.trainable_parameters(discriminator):,}; "
        f"{total_steps} steps, the last {decay_steps} with a decaying learning rate"
    )

    train_step = make_train_step(
        generator, discriminator, generator_optimizer, discriminator_optimizer, config, strategy
    )

    def batches_from(step_number):
        # The stream is indexed by batch: skipped batches (--on-nan skip) move it forward.
        first_example = (step_number + int(skipped_batches.numpy())) * config.batch_size
        dataset = data.train_dataset(train_pairs, config, config.direction, config.seed, start_example=first_example)
        options = tf.data.Options()
        # Workers read the same stream and keep their own share of each global batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    batches = batches_from(start)
    sample_inputs, sample_targets = (
        next(iter(data.eval_dataset(sample_pairs, config, config.direction, batch_size=len(sample_pairs))))
        if config.sample_count
        else (None, None)
    )
    writer = tf.summary.create_file_writer(os.path.join(workdir, "logs")) if chief else tf.summary.create_noop_writer()
    progress = _Progress(total_steps, start, config.batch_size) if verbose else None

    def write_samples(current):
        if sample_inputs is None or not chief:
            return
        # Paper mode draws dropout masks; put the random states back so that sampling never
        # shifts the training stream (a resumed run must match an uninterrupted one).
        states = dropout_states(generator)
        saved = [state.numpy() for state in states]
        outputs = translate(generator, sample_inputs, mode="paper")
        for state, value in zip(states, saved):
            state.assign(value)
        image = sample_grid(sample_inputs, outputs, sample_targets)
        os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
        tf.io.write_file(os.path.join(workdir, "samples", f"step_{current:07d}.png"), tf.io.encode_png(image))
        with writer.as_default(step=current):
            tf.summary.image("samples", image[None], max_outputs=1)
            tf.summary.scalar("validation/l1_samples", tf.reduce_mean(tf.abs(outputs - sample_targets)))

    def save_checkpoint(current):
        # CheckpointManager writes new files and only then points `checkpoint` at them, so a
        # write that fails part-way leaves the previous checkpoint as the latest.
        try:
            manager.save(checkpoint_number=current)
        except (OSError, tf.errors.OpError) as error:
            raise CheckpointWriteError(
                f"could not write the checkpoint of step {current} ({str(error).splitlines()[0]}); "
                f"the last good one, {manager.latest_checkpoint or 'none'}, is untouched"
            ) from None

    with _stop_on_signals() as stop:
        current = start
        while current < total_steps:
            current += 1
            inputs, targets = next(batches)
            step_losses = train_step(inputs, targets)
            if not bool(step_losses["finite"]):
                values = ", ".join(f"{name} {float(value):.4g}" for name, value in step_losses.items() if name != "finite")
                if config.on_nan == "stop" or not manager.latest_checkpoint:
                    raise NonFiniteLossError(
                        f"non-finite loss at step {current} ({values}); the last good checkpoint, "
                        f"{manager.latest_checkpoint or 'none'}, is untouched (--on-nan skip rolls back to it "
                        "and goes on with the next batch)"
                    )
                # Roll back to the last good state and go on past the batch that broke it.
                bad_batch = current - 1 + int(skipped_batches.numpy())
                checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
                current = int(step.numpy())
                skipped_batches.assign(bad_batch + 1 - current)
                log(f"non-finite loss at step {bad_batch + 1} ({values}): rolled back to step {current}, skipping that batch")
                batches = batches_from(current)
                continue
            step.assign(current)
            if current % config.log_every == 0 or current == total_steps:
                values = {name: float(value) for name, value in step_losses.items() if name != "finite"}
                images_per_second = progress.update(current, values) if progress else None
                with writer.as_default(step=current):
                    for name, value in values.items():
                        tf.summary.scalar(f"losses/{name}", value)
                    tf.summary.scalar("learning_rate", generator_optimizer.learning_rate)
                    if images_per_second:
                        tf.summary.scalar("images_per_second", images_per_second)
            if current % config.sample_every == 0 or current == total_steps:
                write_samples(current)
            if current % config.save_every == 0 or current == total_steps:
                save_checkpoint(current)
            if stop and current < total_steps:
                save_checkpoint(current)
                writer.flush()
                raise TrainingInterrupted(
                    f"{stop[0]}: saved a checkpoint at step {current} of {total_steps} in {workdir}; "
                    "run the same command to resume",
                    step=current,
                )
    writer.flush()
    if not chief:
        # This worker's checkpoints only took part in the collective save.
        shutil.rmtree(manager.directory, ignore_errors=True)
        return generator

    generator_path = os.path.join(workdir, "generator.keras")
    # Written beside, then renamed: a reader never sees half a model.
    temporary = os.path.join(workdir, f"generator.tmp-{os.getpid()}.keras")
    generator.save(temporary)
    os.replace(temporary, generator_path)
    log(f"saved {generator_path}")
    return generator
