"""A run's checkpoints: what they hold, writing one safely, and restoring the latest.

A checkpoint holds both networks, both optimizers, the step, the batches skipped after
non-finite losses, the generator's dropout random states (so that a resumed run draws the masks
an uninterrupted one would), the form of the networks, the seconds trained and the run's
progress (what the learning-rate schedule reads: keras_pix2pix.optimization).
The functions here take a run's checkpoints folder; keras_pix2pix.workdir says where it is.
tf.train.CheckpointManager writes new files and only then points `checkpoint` at them, so a
write that fails part-way leaves the previous checkpoint as the latest.
"""

import os
import re
import shutil

import tensorflow as tf

from keras_pix2pix.config import UsageError
from keras_pix2pix.errors import CheckpointWriteError, first_line
from keras_pix2pix.files import write_atomically
from keras_pix2pix.modes import dropout_states

# The form of the networks a checkpoint holds, saved in it: 2 since the U-Net is the authors'
# (pre-activation blocks, [skip, decoder] concatenations) and D's first convolution has a bias.
NETWORK_FORM = 2
_INDEX_NAME = re.compile(r"ckpt-(\d+)\.index")
_LEFT_BY_A_KILL = re.compile(r"ckpt-\d+_temp.*|checkpoint\.tmp.*")


# Variables a checkpoint of an older keras-pix2pix lacks: restored when it records them, else
# left at their start (the run sets them again from its step or its clock).
_OPTIONAL = ("trained_seconds", "progress")
_PARTS = (
    "generator", "discriminator", "generator_optimizer", "discriminator_optimizer", "step", "skipped_batches",
    "network_form", "generator_dropout_states", *_OPTIONAL,
)


def make_checkpoint(generator, discriminator, generator_optimizer, discriminator_optimizer, progress=None):
    """The checkpoint of a run, with its counters (create it under the strategy's scope).

    Args:
        generator, discriminator: the networks.
        generator_optimizer, discriminator_optimizer: their optimizers.
        progress: the float64 variable the optimizers' schedule reads (optimization.progress_variable);
            None: a new one.

    Returns:
        A tf.train.Checkpoint whose `step`, `skipped_batches` and `network_form` are int64
        variables, `trained_seconds` a float32 one and `progress` a float64 one.
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
        trained_seconds=tf.Variable(0.0, trainable=False, name="trained_seconds"),
        progress=progress if progress is not None else tf.Variable(0.0, dtype=tf.float64, trainable=False, name="progress"),
    )


def _recorded_parts(checkpoint, prefix):
    """What of checkpoint to restore from prefix: all of it, or, for an older checkpoint, the parts it records.

    A second tf.train.Checkpoint over the same objects restores into them; it leaves out the
    optional variables the files lack, which TensorFlow would otherwise count as unmatched.
    """
    reader = tf.train.load_checkpoint(prefix)
    missing = {name for name in _OPTIONAL if hasattr(checkpoint, name) and not reader.has_tensor(_key(name))}
    if not missing:
        return checkpoint
    return tf.train.Checkpoint(**{name: getattr(checkpoint, name) for name in _PARTS if name not in missing})


def _key(name):
    return f"{name}/.ATTRIBUTES/VARIABLE_VALUE"


def _written(directory):
    """Prefixes of the checkpoints in directory that have an index file, newest first.

    Read from the folder, not from its `checkpoint` state file, so that a damaged state file
    (garbage, empty, or naming files that are gone) never hides the checkpoints beside it.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    numbers = sorted((int(match.group(1)) for match in map(_INDEX_NAME.fullmatch, names) if match), reverse=True)
    return [os.path.join(directory, f"ckpt-{number}") for number in numbers]


def _check_network_form(form, path, workdir):
    """Refuses a checkpoint whose networks are of another form than this version builds.

    Read before restoring: the old and new generators have variables of the same shapes, so a
    restore could go on silently with networks that compute another function.
    """
    if form != NETWORK_FORM:
        raise UsageError(
            f"the checkpoint {path} in {workdir} holds networks of an older keras-pix2pix (before the U-Net "
            "took the authors' exact form); it cannot be resumed: train in another --workdir (its "
            "generator.keras still loads for predict)"
        )


def _recorded(prefix, name, default):
    """The value of a checkpoint's counter `name`, or default when it records none; reading it reads the files."""
    reader = tf.train.load_checkpoint(prefix)
    return reader.get_tensor(_key(name)) if reader.has_tensor(_key(name)) else default


def _network_form(prefix):
    """The network form a checkpoint records (1 when it records none)."""
    return int(_recorded(prefix, "network_form", 1))


# How a damaged checkpoint fails to read: TensorFlow's errors, and the IndexError its reader
# raises for a data file cut short ("Read less bytes than requested").
_DAMAGE = (tf.errors.OpError, IndexError)


def _restore_newest_intact(checkpoint, prefixes, workdir):
    """Restores the newest of prefixes that reads whole into checkpoint.

    A checkpoint that cannot be read (a truncated or missing file) is damaged: the next older one
    is tried. One that reads but does not fit the networks is a change of settings, which no
    older checkpoint would fit either: that is refused at once.

    Returns:
        (the prefix restored or None, [(damaged prefix, why)]).
    """
    damaged = []
    for prefix in prefixes:
        try:
            form = _network_form(prefix)
        except (*_DAMAGE, ValueError) as error:
            damaged.append((prefix, first_line(error)))
            continue
        _check_network_form(form, prefix, workdir)
        try:
            status = _recorded_parts(checkpoint, prefix).restore(prefix)
        except (tf.errors.InvalidArgumentError, ValueError) as error:
            if isinstance(error, tf.errors.InvalidArgumentError) and "dtype" not in str(error):
                damaged.append((prefix, first_line(error)))
                continue
            raise _misfit(workdir, error) from None
        except _DAMAGE as error:
            damaged.append((prefix, first_line(error)))
            continue
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise _misfit(workdir, error) from None
        status.expect_partial()  # a generator alone restores a part of a run's checkpoint
        return prefix, damaged
    return None, damaged


def _misfit(workdir, error):
    return UsageError(
        f"the checkpoint in {workdir} does not fit this run's settings (was config.json edited, or did "
        f"--precision change to or from mixed_float16?): {first_line(error)}"
    )


def _set_aside(damaged, directory, log):
    """Moves damaged checkpoints' files into DIRECTORY/damaged/, so that they are neither tried again nor lost."""
    if not damaged:
        return
    aside = os.path.join(directory, "damaged")
    os.makedirs(aside, exist_ok=True)
    for prefix, why in damaged:
        name = os.path.basename(prefix)
        for file_name in os.listdir(directory):
            if file_name == f"{name}.index" or file_name.startswith(f"{name}.data-"):
                os.replace(os.path.join(directory, file_name), os.path.join(aside, file_name))
        log(f"warning: checkpoint {prefix} is damaged ({why}); moved to {aside}")


def _repair_state(directory, restored, prefixes):
    """Points the `checkpoint` state file at the checkpoint restored, when it names another or cannot be read.

    Written as TensorFlow writes it (a text CheckpointState with names relative to the folder),
    so that the manager rotates the older checkpoints as before.
    """
    state_path = os.path.join(directory, "checkpoint")
    try:
        state = tf.train.get_checkpoint_state(directory)
        latest = os.path.basename(state.model_checkpoint_path) if state else None
    except (ValueError, tf.errors.OpError):
        latest = None
    if restored is None:
        if os.path.exists(state_path):
            os.remove(state_path)  # names only checkpoints that are gone: the manager would refuse it
        return
    if latest == os.path.basename(restored):
        return
    number = int(restored.rsplit("-", 1)[1])
    kept = [os.path.basename(prefix) for prefix in reversed(prefixes) if int(prefix.rsplit("-", 1)[1]) <= number]
    lines = [f'model_checkpoint_path: "{os.path.basename(restored)}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in kept]
    write_atomically(state_path, "\n".join(lines) + "\n")


def make_manager(checkpoint, directory, keep):
    """The CheckpointManager of a checkpoints folder (workdir.checkpoint_directory says which)."""
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=keep)


def restore_latest(checkpoint, directory, keep, log=print, *, workdir=None):
    """Restores the newest intact checkpoint of a folder into `checkpoint` and makes its manager.

    A damaged newest checkpoint (truncated, missing files) is set aside in its folder's damaged/
    with a warning and the one before it is resumed; a damaged `checkpoint` state file is
    rewritten. Nothing readable at all, when checkpoints were written, is refused. A checkpoint
    of an older keras-pix2pix that lacks `trained_seconds` or `progress` restores the rest; those
    keep their start values.

    Args:
        checkpoint: the run's tf.train.Checkpoint (see make_checkpoint).
        directory: the checkpoints folder (see workdir.checkpoint_directory).
        keep: checkpoints the manager keeps.
        log: where the warnings go.
        workdir: the work directory, named in refusals; default: the folder above directory.

    Returns:
        (the tf.train.CheckpointManager of the folder, the step restored or 0).
    """
    workdir = workdir or os.path.dirname(directory)
    prefixes = _written(directory)
    restored, damaged = _restore_newest_intact(checkpoint, prefixes, workdir)
    if restored is None and damaged:
        prefix, why = damaged[0]
        raise UsageError(
            f"no checkpoint in {directory} can be read (the newest, {os.path.basename(prefix)}: {why}); "
            f"move {directory} away to train afresh, or put back a copy"
        )
    _set_aside(damaged, directory, log)
    _repair_state(directory, restored, [prefix for prefix in prefixes if prefix not in dict(damaged)])
    return make_manager(checkpoint, directory, keep), int(checkpoint.step.numpy()) if restored else 0


def save(manager, step):
    """Writes the checkpoint of `step`; a failure leaves the previous one as the latest."""
    try:
        manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as error:
        # TensorFlow leaves the shards it had written in ckpt-N_temp/: half a checkpoint, ours to remove.
        shutil.rmtree(os.path.join(manager.directory, f"ckpt-{step}_temp"), ignore_errors=True)
        raise CheckpointWriteError(
            f"could not write the checkpoint of step {step} ({first_line(error)}); "
            f"the last good one, {manager.latest_checkpoint or 'none'}, is untouched"
        ) from None


def sweep(directory, log):
    """Removes what a killed save left in a checkpoints folder: ckpt-N_temp/ folders and checkpoint.tmp* files.

    TensorFlow writes a checkpoint's shards into ckpt-N_temp/ and the state file through
    checkpoint.tmpXXXX before renaming them into place; a kill in between leaves them. Call it
    only while holding the work directory's lock: a running save's files look the same.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    left = [name for name in names if _LEFT_BY_A_KILL.fullmatch(name)]
    for name in left:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    if left:
        log(f"removed {len(left)} unfinished checkpoint file(s) left by an interrupted run in {directory}")


def has_checkpoint(directory):
    """Whether a checkpoints folder holds a checkpoint file (intact or not)."""
    return bool(_written(directory))


def restore_generator(generator, directory, workdir):
    """Restores the generator of a checkpoints folder's newest intact checkpoint into `generator` (stock layers).

    Every form of the networks has the same variables, so the stock generator restores a
    checkpoint written by the training form. Every variable of the generator must be restored:
    a config.json edited by hand into other shapes is refused, not half restored.

    Args:
        generator: the generator to restore into.
        directory: the checkpoints folder.
        workdir: the work directory, named in refusals.
    """
    restored, damaged = _restore_newest_intact(tf.train.Checkpoint(generator=generator), _written(directory), workdir)
    if restored is None:
        why = f": {damaged[0][1]}" if damaged else ""
        raise UsageError(f"{workdir} holds no readable checkpoint{why}")
    return generator
