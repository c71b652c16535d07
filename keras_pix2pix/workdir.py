"""A run's work directory: its layout, claiming it, its config.json and generator.keras, and the rules of a resume.

A work directory holds everything a run makes:
    config.json       every setting (written once the networks are built and any checkpoint restored)
    checkpoints/      both models, both optimizers, the step, the progress and the dropout random states
    generator.keras   the final generator, stock Keras layers (keras.models.load_model, no import needed)
    samples/          PNG grids input | output | target for fixed validation pairs (paper mode)
    logs/             TensorBoard scalars (losses, learning rate, images/s) and sample images
    losses.png        the losses, the learning rate and the sample pairs' L1 over steps (with each sample grid)
    .lock             held by the running fit (flock), so that a second fit on the directory is refused
Every other module names these paths through the functions here.
"""

import dataclasses
import os
import sys
import zipfile

import keras

from keras_pix2pix import checkpoints, datasets, distribute, fast, files
from keras_pix2pix.config import ARCHITECTURE_FIELDS, Config, UsageError, duration_text
from keras_pix2pix.errors import first_line, unusable_path
from keras_pix2pix.models import generator_from_config

CONFIG = "config.json"
GENERATOR = "generator.keras"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
LOGS = "logs"
LOSSES = "losses.png"
LOCK = ".lock"  # the name files.locked gives its lock file


def config_path(workdir):
    """WORKDIR/config.json."""
    return os.path.join(workdir, CONFIG)


def generator_path(workdir):
    """WORKDIR/generator.keras."""
    return os.path.join(workdir, GENERATOR)


def checkpoints_folder(workdir):
    """WORKDIR/checkpoints, where the chief's checkpoints are."""
    return os.path.join(workdir, CHECKPOINTS)


def samples_folder(workdir):
    """WORKDIR/samples."""
    return os.path.join(workdir, SAMPLES)


def sample_path(workdir, step):
    """The sample grid of a step: WORKDIR/samples/step_0000040.png."""
    return os.path.join(samples_folder(workdir), f"step_{step:07d}.png")


def logs_folder(workdir):
    """WORKDIR/logs, the TensorBoard event files."""
    return os.path.join(workdir, LOGS)


def losses_plot(workdir):
    """WORKDIR/losses.png."""
    return os.path.join(workdir, LOSSES)


def checkpoint_directory(workdir, strategy):
    """Where this process writes checkpoints: every worker must save, but only the chief's count.

    The others write to a temporary folder of their own, as TensorFlow's multi-worker guide requires.

    Example:
    >>> import tensorflow as tf
    >>> checkpoint_directory("runs/facades", tf.distribute.get_strategy())
    'runs/facades/checkpoints'
    """
    folder = checkpoints_folder(workdir)
    if distribute.is_chief(strategy):
        return folder
    resolver = strategy.cluster_resolver
    return os.path.join(folder, f".worker-{resolver.task_type}-{resolver.task_id}")


def read_config(workdir):
    """The Config of WORKDIR/config.json, or None when it has none."""
    path = config_path(workdir)
    return Config.load(path) if os.path.exists(path) else None


def write_config(workdir, config):
    """Writes WORKDIR/config.json (atomically: Config.save)."""
    config.save(config_path(workdir))


def write_generator(workdir, generator):
    """Writes a generator (stock form) as WORKDIR/generator.keras, replacing any whole; returns the path."""
    path = generator_path(workdir)
    with files.replacing(path) as temporary:
        generator.save(temporary)
    return path


def generator_is_current(workdir, latest_checkpoint):
    """Whether generator.keras was written after the last checkpoint (a failed or killed save leaves it older)."""
    path = generator_path(workdir)
    return os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(latest_checkpoint + ".index")


def _load_keras_file(path):
    """A generator from a .keras file, in stock form; one UsageError for a file that is not one.

    Keras' safe mode stays on: a file holding Python code (a Lambda layer) is refused, not run.
    Files written before the networks were stock hold keras_pix2pix's training layers
    (registered by keras_pix2pix.fast): they load, and run in stock form.
    """
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is damaged or not a .keras file (a .keras file is a zip archive)")
    try:
        model = keras.models.load_model(path)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a bad file; each means: not loadable
        reason = first_line(error)
        if "Lambda" in reason or "safe_mode" in reason:
            reason = "it holds Python code (a Lambda layer), which keras-pix2pix does not run"
        raise UsageError(f"{path} cannot be loaded as a Keras model: {reason}") from None
    if not _is_generator(model):
        raise UsageError(
            f"{path} is not an image-to-image generator: it maps {model.input_shape} to {model.output_shape}, "
            "not one image batch to another of the same size"
        )
    return fast.clone_as(model, "keras")


def _is_generator(model):
    shapes = (getattr(model, "input_shape", None), getattr(model, "output_shape", None))
    if not all(isinstance(shape, tuple) and len(shape) == 4 for shape in shapes):
        return False
    (_, *input_size, input_channels), (_, *output_size, output_channels) = shapes
    return input_size == output_size and None not in input_size and input_channels in (1, 3) and output_channels in (1, 3)


def restore_generator(workdir, config):
    """The generator (stock layers) of a work directory's newest intact checkpoint, for runs without generator.keras."""
    return checkpoints.restore_generator(generator_from_config(config), checkpoints_folder(workdir), workdir)


def _from_workdir(model):
    """The generator and Config of a work directory: generator.keras, else (or when it is damaged) the latest checkpoint."""
    config = read_config(model)
    damaged = None
    if os.path.exists(generator_path(model)):
        try:
            return _load_keras_file(generator_path(model)), config
        except UsageError as error:
            damaged = error
    if config is None or not checkpoints.has_checkpoint(checkpoints_folder(model)):
        if damaged:
            raise damaged
        raise UsageError(f"{model} holds neither {GENERATOR} nor a checkpoint with its {CONFIG}")
    generator = restore_generator(model, config)
    if damaged:
        print(f"warning: {damaged}; using the generator of the latest checkpoint instead", file=sys.stderr)
    return generator, config


def load_generator(model):
    """Loads a trained generator and its run's Config (None when there is no config.json).

    Args:
        model: a work directory (its generator.keras, or its latest checkpoint when training
            stopped before writing generator.keras or the file is damaged) or a .keras file.

    Example:
    >>> generator, config = load_generator(workdir)
    >>> generator.input_shape, config.image_size
    ((None, 32, 32, 3), (32, 32))
    """
    if os.path.isdir(model):
        return _from_workdir(model)
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise UsageError(f"model must be a work directory or a .keras file; got {model}")
        return _load_keras_file(model), read_config(os.path.dirname(model))
    raise unusable_path("model", model, "a work directory or a .keras file")


def claim(workdir, config, chief, stack, log):
    """Makes the work directory, locks it for this run (the chief) and sweeps what killed runs left.

    Args:
        workdir: the work directory.
        config: the run's Config (its dataset folder must not hold the work directory).
        chief: whether this process is the one that writes the run's files.
        stack: a contextlib.ExitStack that holds the folder and the lock until the run ends.
        log: where the notes about swept files go.
    """
    if config.dataset not in ("demo", *datasets.CATALOG_NAMES) and files.is_inside(workdir, config.dataset):
        raise UsageError(
            f"--workdir {workdir} is inside the dataset folder {config.dataset}: the run's files would mix with "
            "its images; pass a --workdir outside it"
        )
    # A run refused at start-up leaves no work directory it made (not even its .lock).
    stack.enter_context(files.output_folder(workdir, "--workdir", own=(LOCK,)))
    if not chief:
        return
    stack.enter_context(files.locked(workdir, "fit"))
    for folder in (workdir, samples_folder(workdir)):
        files.sweep_leftovers(folder, log)
    checkpoints.sweep(checkpoints_folder(workdir), log)


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
        if any(name in settings for name in group):
            for other in group:
                settings.setdefault(other, None)
    if settings.get("duration") is not None:
        settings.setdefault("decay_steps", None)
        settings.setdefault("decay_epochs", None)
    saved = read_config(workdir)
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


def check_progress(workdir, start, total_steps, restored):
    """Refuses a run that would undo work: fewer steps than done, or a new run over a trained generator.

    Args:
        workdir: the work directory.
        start: the step its checkpoint restored (0 for none).
        total_steps: the steps this run asks for; None for a duration run.
        restored: the checkpoint restored, or None.
    """
    if total_steps is not None and start > total_steps:
        raise UsageError(
            f"{workdir} has trained {start} steps, more than the {total_steps} this run asks for: ask for more "
            f"(--steps above {start}) to train on, or use another --workdir"
        )
    if restored is None and os.path.exists(generator_path(workdir)):
        raise UsageError(
            f"{workdir} holds a generator.keras but no checkpoint to resume: a new run would replace it; use "
            "another --workdir (or move generator.keras away to train afresh here)"
        )


