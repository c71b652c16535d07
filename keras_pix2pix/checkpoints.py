"""A run's checkpoints: what they hold, writing one safely, and restoring the latest.

A checkpoint holds both networks, both optimizers, the step, the batches skipped after
non-finite losses, the generator's dropout random states (so that a resumed run draws the masks
an uninterrupted one would) and the form of the networks. tf.train.CheckpointManager writes new
files and only then points `checkpoint` at them, so a write that fails part-way leaves the
previous checkpoint as the latest.
"""

import os

import tensorflow as tf

from keras_pix2pix import distribute
from keras_pix2pix.config import UsageError
from keras_pix2pix.models import generator_from_config
from keras_pix2pix.modes import dropout_states

# The form of the networks a checkpoint holds, saved in it: 2 since the U-Net is the authors'
# (pre-activation blocks, [skip, decoder] concatenations) and D's first convolution has a bias.
NETWORK_FORM = 2


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the last good checkpoint is untouched."""


def make_checkpoint(generator, discriminator, generator_optimizer, discriminator_optimizer):
    """The checkpoint of a run, with its counters (create it under the strategy's scope).

    Returns:
        A tf.train.Checkpoint whose `step`, `skipped_batches` and `network_form` are int64
        variables.
    """

    def counter(name, value=0):
        return tf.Variable(value, dtype=tf.int64, trainable=False, name=name)

    return tf.train.Checkpoint(
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        step=counter("step"),
        skipped_batches=counter("skipped_batches"),
        network_form=counter("network_form", NETWORK_FORM),
        generator_dropout_states=dropout_states(generator),
    )


def make_manager(checkpoint, workdir, strategy, keep):
    """The CheckpointManager of WORKDIR/checkpoints (a worker's own folder off the chief)."""
    return tf.train.CheckpointManager(checkpoint, distribute.checkpoint_directory(workdir, strategy), max_to_keep=keep)


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


def restore_latest(manager, checkpoint, workdir):
    """Restores the latest checkpoint into `checkpoint`; returns its step (0 when there is none)."""
    if not manager.latest_checkpoint:
        return 0
    _check_network_form(manager.latest_checkpoint, workdir)
    try:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
        raise UsageError(
            f"the checkpoint in {workdir} does not fit this run's settings (did --precision change "
            f"to or from mixed_float16?): {str(error).splitlines()[0][:200]}"
        ) from None
    return int(checkpoint.step.numpy())


def save(manager, step):
    """Writes the checkpoint of `step`; a failure leaves the previous one as the latest."""
    try:
        manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as error:
        raise CheckpointWriteError(
            f"could not write the checkpoint of step {step} ({str(error).splitlines()[0]}); "
            f"the last good one, {manager.latest_checkpoint or 'none'}, is untouched"
        ) from None


def restore_generator(workdir, config):
    """The generator (stock layers) of a work directory's latest checkpoint, for runs without generator.keras.

    Every form of the networks has the same variables, so the stock generator restores a
    checkpoint written by the training form.
    """
    generator = generator_from_config(config)
    checkpoint = tf.train.Checkpoint(generator=generator)
    checkpoint.restore(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))).expect_partial()
    return generator
