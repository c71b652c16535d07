"""The optimization of a run: the paper's train step, its Adams and their learning-rate schedule.

The schedule is one function of the run's progress p in [0, 1]: the learning rate holds, then
falls linearly to zero over the run's last part (junyanz's "linear" policy). Progress is a
variable the run's checkpoint holds (checkpoints.make_checkpoint): step / total steps for a run
measured in steps, seconds trained / duration for a --duration run. The optimizers read it at
each step, so a restored checkpoint restores where the schedule stands, whatever the run's length
is measured in.
"""

import math
import warnings

import keras
import tensorflow as tf

from keras_pix2pix import fast, losses
from keras_pix2pix.config import DEFAULT_EPOCHS

# The share of a --duration run over which its learning rate decays: the second half of its time.
DURATION_DECAY_FRACTION = 0.5


def learning_rate_at(progress, learning_rate, decay_fraction):
    """The learning rate at `progress`: constant, then linear to zero over the last decay_fraction of the run.

    Args:
        progress: the share of the run done, in [0, 1] (a float or a float64 tensor).
        learning_rate: the initial rate.
        decay_fraction: the share of the run, at its end, over which the rate falls to zero; 0 keeps it constant.

    Returns:
        A float32 scalar tensor.

    Example:
    >>> [round(float(learning_rate_at(p, 2e-4, decay_fraction=0.5)), 6) for p in (0, 0.5, 0.75, 1)]
    [0.0002, 0.0002, 0.0001, 0.0]
    """
    if not decay_fraction:
        return tf.constant(learning_rate, tf.float32)
    # In float64, then rounded once: for progress = step / total this is the float32 rate of
    # (total - step) / decay_steps that earlier versions computed, bit for bit.
    # A Python float becomes a float64 constant at once: tf.cast would make it float32 first.
    progress = tf.cast(progress, tf.float64) if tf.is_tensor(progress) else tf.constant(progress, tf.float64)
    fraction_left = (1.0 - progress) / decay_fraction
    return learning_rate * tf.cast(tf.clip_by_value(fraction_left, 0.0, 1.0), tf.float32)


def progress_variable():
    """A float64 variable at 0 that holds a run's progress (the checkpoint holds it; the optimizers read it)."""
    return tf.Variable(0.0, dtype=tf.float64, trainable=False, name="progress")


def progress_of(config, step, total_steps, trained_seconds):
    """The share of a run done: step / total steps, or seconds trained / duration for a --duration run.

    Example:
    >>> from keras_pix2pix.config import Config
    >>> progress_of(Config(steps=200), step=50, total_steps=200, trained_seconds=0.0)
    0.25
    """
    if config.duration is not None:
        return min(trained_seconds / config.duration, 1.0)
    return step / total_steps


def decay_fraction(config, total_steps, decay_steps):
    """The share of the run over which its learning rate decays.

    Example:
    >>> from keras_pix2pix.config import Config
    >>> decay_fraction(Config(steps=200), total_steps=200, decay_steps=50)
    0.25
    """
    if config.duration is not None:
        return DURATION_DECAY_FRACTION
    return decay_steps / total_steps if decay_steps else 0.0


def run_length(config, train_pairs):
    """(total steps, decay steps) of a run, from steps or epochs over train_pairs pairs; (None, None) for a duration.

    Example:
    >>> from keras_pix2pix.config import Config
    >>> run_length(Config(steps=None, epochs=2, batch_size=4), 10)
    (6, 3)
    """
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


def make_optimizers(config, total_steps, decay_steps, progress=None, *, trained_seconds=None):
    """One Adam per network (paper: lr 2e-4, beta1 0.5, beta2 0.999; epsilon 1e-8 as PyTorch's) on the same schedule.

    With mixed_float16 each is wrapped in a LossScaleOptimizer: float16 gradients underflow
    without loss scaling, and a custom loop must scale the loss itself (see make_train_step).

    Args:
        config: gives the learning rate, the betas, the precision and (a duration run) the decay.
        total_steps, decay_steps: the run's length and decay in steps (see run_length); None for a duration run.
        progress: the float64 variable holding the run's progress, which the optimizers read at
            each step (see progress_of); None: a new one at 0.
        trained_seconds: deprecated; a float variable of the seconds a duration run has trained,
            read as progress = trained_seconds / duration.

    Example:
    >>> from keras_pix2pix.config import Config
    >>> progress = progress_variable()
    >>> generator_adam, _ = make_optimizers(Config(steps=200), 200, 100, progress)
    >>> _ = progress.assign(0.75)
    >>> round(float(generator_adam.learning_rate), 6)
    0.0001
    """
    fraction = decay_fraction(config, total_steps, decay_steps)
    if trained_seconds is not None:
        warnings.warn("make_optimizers(trained_seconds=...) is deprecated: pass progress, a variable of the share "
                      "of the run done", DeprecationWarning, stacklevel=2)
        seconds, duration = trained_seconds, config.duration
        read_progress = lambda: tf.cast(seconds, tf.float64) / duration  # noqa: E731
    else:
        progress = progress_variable() if progress is None else progress
        read_progress = progress.read_value
    optimizers = []
    for name in ("generator_adam", "discriminator_adam"):
        # A callable: Keras calls it for the rate of each step, and it reads the progress then.
        schedule = lambda: learning_rate_at(read_progress(), config.learning_rate, fraction)  # noqa: E731
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
    >>> from keras_pix2pix import models
    >>> from keras_pix2pix.config import Config
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


