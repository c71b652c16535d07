"""One validated configuration for a pix2pix run, saved as WORKDIR/config.json.

Every setting is a field of `Config` with its default, its help text and, where it has them, its
allowed values and bounds, all in the field's declaration. The command line generates its flags
from these (keras_pix2pix.cli), the notebooks and the Python API build a `Config`, so a setting is
added in one place.
"""

import dataclasses
import json
import math
import re

from keras_pix2pix.errors import UsageError  # noqa: F401  (re-exported: keras_pix2pix.config.UsageError)
from keras_pix2pix.files import write_atomically

DIRECTIONS = ("AtoB", "BtoA")
NORMS = ("batch", "instance", "none")
GENERATORS = ("unet", "encoder-decoder")
GAN_LOSSES = ("vanilla", "lsgan")
ON_NAN = ("stop", "skip")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
BIAS_PLACEMENTS = ("normless", "all")
DROPOUT_PLACEMENTS = ("paper", "authors")
UPSAMPLINGS = ("transpose", "resize")
PREPROCESS_MODES = ("resize_and_crop", "scale_width", "crop", "none")
# The largest image accepted by default, in pixels: a 50-megapixel photo decodes to 600 MB of
# float32. Read from the file's header before decoding, so that a small file claiming a huge
# image (a 1.2 MB PNG of 20000x20000 zeros decodes to 4.8 GB) is refused at once.
MAX_PIXELS = 50_000_000
# The run length when neither steps nor epochs is given: junyanz's 100 + 100 epochs.
DEFAULT_EPOCHS = 200

def check_choice(name, value, allowed):
    """Raises a UsageError naming the argument, the allowed values and the value received.

    Example:
    >>> check_choice("norm", "layer", NORMS)
    Traceback (most recent call last):
    ...
    keras_pix2pix.errors.UsageError: norm must be one of batch, instance, none; got 'layer'
    """
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")
    return value


def parse_size(value, name="image_size"):
    """Turns 256, "256", "256x512", (256, 512) or [256, 512] into a (height, width) tuple.

    Args:
        value: the size as an int, a "HEIGHTxWIDTH" string or a pair.
        name: the argument name used in the error message.

    Example:
    >>> parse_size("128x256")
    (128, 256)
    """
    if isinstance(value, str):
        try:
            numbers = tuple(int(part) for part in value.lower().split("x"))
        except ValueError:
            numbers = ()
    elif isinstance(value, int) and not isinstance(value, bool):
        numbers = (value,)
    elif isinstance(value, (tuple, list)):
        numbers = tuple(value)
    else:
        numbers = ()
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers):
        raise UsageError(
            f"{name} must be a positive size such as 256 or 256x512 (height x width), got {value!r}"
        )
    return numbers


_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value, name="time_limit"):
    """Turns 90, "90", "90s", "2h30m", "1.5h" or "1d" into seconds (a float).

    Example:
    >>> parse_duration("2h30m"), parse_duration("45s"), parse_duration(600)
    (9000.0, 45.0, 600.0)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower() if isinstance(value, str) else ""
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)\s*([dhms]?)", text)
    if not text or not parts or re.sub(r"(\d+(?:\.\d*)?|\.\d+)\s*([dhms]?)", "", text).strip():
        raise UsageError(f"{name} must be a duration such as 2h30m, 45m, 90s or a number of seconds; got {value!r}")
    return float(sum(float(number) * _DURATION_UNITS[unit or "s"] for number, unit in parts))


def duration_text(seconds):
    """A duration as the command line writes it.

    Example:
    >>> duration_text(9000), duration_text(45), duration_text(3601.5)
    ('2h30m', '45s', '1h0m1.5s')
    """
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{int(hours)}h" if hours else "") + (f"{int(minutes)}m" if minutes or hours and seconds else "")
    return text + (f"{seconds:g}s" if seconds or not text else "")


def default_load_size(image_size):
    """The paper's resize-before-crop size: 286 for 256, scaled for other sizes."""
    return tuple(int(round(side * 286 / 256)) for side in image_size)


def setting(default, help, kind, *, choices=None, minimum=None, maximum=None, open_low=False,
            optional=False, flag=None, group=None, architecture=False):
    """A Config field: its default and everything the command line and the validation need.

    Args:
        default: the default value.
        help: what the setting does, shown by `keras-pix2pix fit --help`.
        kind: "str", "bool", "int", "number", "size", "duration" (seconds, or text such as 2h30m)
            or "choice".
        choices: the allowed values of a "choice".
        minimum, maximum: bounds of an "int" or "number".
        open_low: the minimum itself is not allowed.
        optional: None is allowed.
        flag: the command line flag, when not --the-field-name.
        group: settings of one group are given one at a time on the command line.
        architecture: the setting shapes the networks (a checkpoint cannot be resumed with another).
    """
    metadata = dict(
        help=help, kind=kind, choices=choices, minimum=minimum, maximum=maximum, open_low=open_low,
        optional=optional, flag=flag, group=group, architecture=architecture,
    )
    return dataclasses.field(default=default, metadata=metadata)


# The bound of every number without its own: a step count or size past it is a typo, and it
# overflows the int64 counters and float32 schedules long before it could be trained.
LARGEST_NUMBER = 2**53


def _check_number(name, value, spec):
    integer = spec["kind"] == "int"
    valid = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    valid = valid and math.isfinite(value)
    minimum, maximum = spec["minimum"], spec["maximum"] if spec["maximum"] is not None else LARGEST_NUMBER
    if valid and minimum is not None:
        valid = value > minimum if spec["open_low"] else value >= minimum
    if valid and maximum is not None:
        valid = value <= maximum
    if valid:
        return
    # The default bound is named only to a value past it: "an integer >= 1" reads better.
    too_large = isinstance(value, (int, float)) and not isinstance(value, bool) and value > maximum
    if integer:
        bounds = f"between {minimum} and {maximum}" if spec["maximum"] is not None or too_large else f">= {minimum}"
        raise UsageError(f"{name} must be an integer {bounds}; got {value!r}")
    low = f"> {float(minimum)}" if spec["open_low"] else f">= {float(minimum)}"
    high = f" and <= {maximum:g}" if spec["maximum"] is not None or too_large else ""
    raise UsageError(f"{name} must be a number {low}{high}; got {value!r}")


def check_field(field, value, name=None):
    """Validates one field's value against its declaration; the message calls it name (default: the field's).

    Used for Config's settings here and for the commands' options (keras_pix2pix.options).
    """
    spec, name = field.metadata, name or field.name
    if value is None and spec["optional"]:
        return
    if spec["kind"] == "choice":
        check_choice(name, value, spec["choices"])
    elif spec["kind"] == "bool" and not isinstance(value, bool):
        raise UsageError(f"{name} must be True or False; got {value!r}")
    elif spec["kind"] in ("int", "number", "duration"):
        _check_number(name, value, spec)
    elif spec["kind"] == "str" and (not isinstance(value, str) or not value):
        raise UsageError(f"{name} must be a non-empty string; got {value!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a pix2pix run. Defaults follow the paper and junyanz's code.

    Each field is declared with `setting(default, help, kind, ...)`: the help text is the
    setting's documentation, here and in `keras-pix2pix fit --help`.

    Example:
    >>> config = Config(dataset="demo", image_size=64, steps=300)
    >>> config.image_size, config.load_size, config.resolved_load_size
    ((64, 64), None, (72, 72))
    >>> config.replace(image_size=128).resolved_load_size
    (143, 143)
    """

    # --- data ---
    dataset: str = setting(
        "demo",
        "demo (embedded, no network), a dataset of the pix2pix release (facades, cityscapes, maps, "
        "edges2shoes, edges2handbags, night2day: downloaded once through tensorflow-datasets), or a folder "
        "of AB images or A/ and B/ folders, with train/ val/ test/ split folders or none",
        "str",
    )
    direction: str | None = setting(
        None, "which half of an AB image is the input; default: the dataset's usual one", "choice",
        choices=DIRECTIONS, optional=True,
    )
    data_dir: str | None = setting(
        None, "where prepared datasets are kept; default: $KERAS_PIX2PIX_DATA_DIR, else ~/tensorflow_datasets",
        "str", optional=True,
    )
    manual_dir: str | None = setting(
        None, "a folder holding release archives (NAME.tar.gz) downloaded by hand", "str", optional=True
    )
    skip_bad: bool = setting(False, "skip unreadable or malformed images (and say how many)", "bool")
    max_pixels: int = setting(
        MAX_PIXELS, "largest image accepted, in pixels (height x width), read from each file's header before "
        "it is decoded; a larger one is refused (skipped with --skip-bad)", "int", minimum=1,
    )
    preprocess: str = setting(
        "resize_and_crop",
        "training augmentation: resize_and_crop (the paper's: resize to the load size, random crop), "
        "scale_width (width to the load size, aspect kept, random crop), crop (random crop from the "
        "original size) or none (resize to the image size)",
        "choice",
        choices=PREPROCESS_MODES,
    )
    image_size: tuple = setting(
        (256, 256), "HEIGHTxWIDTH the networks see, or one number for a square; each a multiple of 2**depth",
        "size", architecture=True,
    )
    load_size: tuple | None = setting(
        None,
        "training images are resized to this, then randomly cropped to the image size; default: the "
        "paper's ratio (286 for 256), worked out on use; equal to the image size: no random crop",
        "size",
        optional=True,
    )
    flip: bool = setting(True, "random horizontal flips of training pairs (the same for input and target)", "bool",
                         flag="--no-flip")
    input_channels: int = setting(3, "channels of the input images: 1 (grayscale) or 3", "choice", choices=(1, 3),
                                  architecture=True)
    output_channels: int = setting(3, "channels of the target images: 1 or 3", "choice", choices=(1, 3),
                                   architecture=True)

    # --- models ---
    generator: str = setting(
        "unet", "unet (the paper's generator) or encoder-decoder (its baseline without skips)", "choice",
        choices=GENERATORS, architecture=True,
    )
    depth: int | None = setting(
        None, "generator downsamplings; default: log2 of the shorter side (256 -> 8, a 1x1 bottleneck)", "int",
        minimum=1, optional=True, architecture=True,
    )
    generator_filters: int = setting(
        64, "filters of the first generator block, doubled per block up to 8x", "int", minimum=1, architecture=True
    )
    upsample: str = setting(
        "transpose", "generator decoder: transpose (the paper's 4x4 transposed convolutions) or resize (bilinear "
        "resize then 3x3 convolution: no checkerboard artifacts, no transposed convolution for quantizers and "
        "GPU delegates)", "choice", choices=UPSAMPLINGS, architecture=True,
    )
    discriminator_layers: int = setting(
        3, "PatchGAN depth: 0 = 1x1 PixelGAN, 1 = 16x16, 3 = 70x70 (the paper's), 5 = 286x286", "int",
        minimum=0, maximum=8, architecture=True,
    )
    discriminator_filters: int = setting(
        64, "filters of the first discriminator block", "int", minimum=1, architecture=True
    )
    norm: str = setting("batch", "normalization in both networks", "choice", choices=NORMS, architecture=True)
    dropout: float = setting(
        0.5, "dropout rate of the decoder blocks --dropout-placement names, in training and at paper test time",
        "number", minimum=0.0, maximum=0.99,
    )
    dropout_placement: str = setting(
        "paper", "which decoder blocks have dropout: paper (the first three from the bottleneck) or authors "
        "(junyanz's code: the 8x-filter blocks after the innermost one, three at depth 8)", "choice",
        choices=DROPOUT_PLACEMENTS,
    )
    generator_biases: str = setting(
        "normless", "which generator convolutions have a bias: normless (those no normalization follows) or all "
        "(junyanz's networks with instance norm)", "choice", choices=BIAS_PLACEMENTS, architecture=True,
    )

    # --- objective ---
    gan_loss: str = setting(
        "vanilla", "vanilla (the paper's cross-entropy GAN loss) or lsgan (least squares)", "choice",
        choices=GAN_LOSSES,
    )
    lambda_l1: float = setting(100.0, "weight of the L1 term in the generator loss", "number", minimum=0.0)

    # --- optimization ---
    learning_rate: float = setting(2e-4, "Adam learning rate of both networks", "number", minimum=0.0,
                                   open_low=True, flag="--lr")
    beta_1: float = setting(0.5, "Adam beta 1", "number", minimum=0.0, maximum=1.0, flag="--beta1")
    beta_2: float = setting(0.999, "Adam beta 2", "number", minimum=0.0, maximum=1.0, flag="--beta2")
    batch_size: int = setting(1, "pairs per step, the global batch (the paper: 1 to 10)", "int", minimum=1)
    precision: str = setting(
        "float32",
        "compute precision: float32, mixed_bfloat16 (CPUs with AVX-512 BF16 or AMX, TPUs, recent GPUs) or "
        "mixed_float16 (GPUs, with loss scaling); weights, output layers and losses stay float32",
        "choice",
        choices=PRECISIONS,
    )
    xla: bool = setting(False, "compile the train step with XLA (slower on CPUs here)", "bool")
    strategy: str = setting(
        "auto",
        "tf.distribute strategy: auto (mirrored with several GPUs, else default), default, mirrored, "
        "multiworker (from TF_CONFIG) or tpu",
        "choice",
        choices=STRATEGIES,
    )
    sync_batchnorm: bool = setting(False, "BatchNorm over the global batch across replicas", "bool")
    steps: int | None = setting(
        None, f"training steps; default: {DEFAULT_EPOCHS} epochs", "int", minimum=1, optional=True, group="length"
    )
    epochs: float | None = setting(
        None, f"epochs over the training split; default: {DEFAULT_EPOCHS}", "number", minimum=0.0, open_low=True,
        optional=True, group="length",
    )
    duration: float | None = setting(
        None, "train for this wall-clock time instead of a number of steps, such as 15m or 2h (start-up, samples "
        "and checkpoints count; a resumed run goes on with the time left): the learning rate holds for the first "
        "half and decays linearly to 0 at its end, by the clock, so the run ends annealed whatever the "
        "machine's speed", "duration", minimum=0, open_low=True, optional=True, group="length",
    )
    decay_steps: int | None = setting(
        None, "final steps over which the learning rate decays linearly to 0; default: half the run", "int",
        minimum=0, optional=True, group="decay",
    )
    decay_epochs: float | None = setting(
        None, "the same in epochs", "number", minimum=0.0, optional=True, group="decay"
    )

    # --- bookkeeping ---
    time_limit: float | None = setting(
        None, "a budget for each fit command, such as 2h30m, 45m or 90s: training stops in time to save a "
        "checkpoint before it runs out, and the same command resumes (for Colab's session limits); default: none",
        "duration", minimum=0, open_low=True, optional=True,
    )
    save_every: int = setting(1000, "checkpoint interval in steps (and always at the end)", "int", minimum=1)
    sample_every: int = setting(500, "sample grid interval in steps (and at the end)", "int", minimum=1)
    sample_count: int = setting(4, "validation pairs in the sample grid", "int", minimum=0)
    log_every: int = setting(10, "progress line and TensorBoard interval in steps", "int", minimum=1)
    keep_checkpoints: int = setting(3, "checkpoints kept in WORKDIR/checkpoints", "int", minimum=1)
    deterministic: bool = setting(
        False, "deterministic ops: with --seed, a run and any killed-and-resumed copy end bit-identical", "bool"
    )
    on_nan: str = setting(
        "stop", "on a NaN or infinite loss: stop (keep the last good checkpoint) or skip (roll back to it and go "
        "on with the next batch)", "choice", choices=ON_NAN,
    )
    seed: int | None = setting(
        None, "seed of every random choice; default: drawn once and saved in config.json", "int", minimum=0,
        maximum=2**31 - 1, optional=True,
    )

    def __post_init__(self):
        # Canonical forms of the values given (256 -> (256, 256)); nothing derived is stored, since
        # dataclasses.replace would carry a derived value over to a changed image_size.
        object.__setattr__(self, "image_size", parse_size(self.image_size))
        if self.load_size is not None:
            object.__setattr__(self, "load_size", parse_size(self.load_size, "load_size"))
        for name in ("time_limit", "duration"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, parse_duration(getattr(self, name), name))
        for field in dataclasses.fields(self):
            check_field(field, getattr(self, field.name))
        if any(load < crop for load, crop in zip(self.resolved_load_size, self.image_size)):
            raise UsageError(
                f"load_size must be at least image_size {self.image_size} on each side "
                f"(it is resized to, then cropped from); got {self.load_size}"
            )
        for group in ("length", "decay"):
            given = [field.name for field in dataclasses.fields(self)
                     if field.metadata["group"] == group and getattr(self, field.name) is not None]
            if len(given) > 1:
                values = ", ".join(f"{name}={getattr(self, name)}" for name in given)
                raise UsageError(f"give {' or '.join(given)}, not both; got {values}")
        self._check_duration()

    def _check_duration(self):
        """Refuses what a run measured in time cannot do."""
        if self.duration is None:
            return
        decay = [name for name in ("decay_steps", "decay_epochs") if getattr(self, name) is not None]
        if decay:
            raise UsageError(
                f"{decay[0]} sets the decay of a run measured in steps; a duration run decays over the second half "
                f"of its time: give steps or epochs with {decay[0]}, or leave {decay[0]} out; got "
                f"duration={duration_text(self.duration)}, {decay[0]}={getattr(self, decay[0])}"
            )
        if self.deterministic:
            raise UsageError(
                "deterministic runs repeat exactly, and a duration run's learning rate follows the clock: give steps "
                f"or epochs with deterministic; got duration={duration_text(self.duration)}"
            )
        if self.strategy == "multiworker":
            raise UsageError(
                "a duration run's learning rate follows its own machine's clock, which workers do not share: give "
                f"steps or epochs with strategy multiworker; got duration={duration_text(self.duration)}"
            )

    @property
    def resolved_load_size(self):
        """load_size, or the paper's 286/256 of image_size when it is None.

        Example:
        >>> Config(image_size=256).resolved_load_size, Config(image_size=64, load_size=80).resolved_load_size
        ((286, 286), (80, 80))
        """
        return default_load_size(self.image_size) if self.load_size is None else self.load_size

    def replace(self, **changes):
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        values = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    @classmethod
    def from_dict(cls, values):
        if not isinstance(values, dict):
            raise UsageError(f"settings must be a JSON object of setting: value; got {type(values).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def save(self, path):
        """Writes the config as JSON, atomically (a reader never sees half a file)."""
        write_atomically(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path):
        """The Config saved at path; a missing, damaged or hand-broken file is one UsageError naming it."""
        try:
            with open(path, encoding="utf-8") as file:
                values = json.load(file)
        except FileNotFoundError:
            raise UsageError(f"no config.json at {path}") from None
        except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise UsageError(f"{path} is not readable JSON ({error}); restore it, or use another --workdir") from None
        try:
            return cls.from_dict(values)
        except (UsageError, TypeError) as error:
            raise UsageError(f"{path} holds an invalid setting: {error}; fix it, or use another --workdir") from None

    def differences(self, other):
        """(field, self's value, other's value) for each field where the two differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [(key, mine[key], theirs[key]) for key in mine if mine[key] != theirs[key]]


# Settings that shape the networks: a checkpoint cannot be resumed with other values.
ARCHITECTURE_FIELDS = tuple(field.name for field in dataclasses.fields(Config) if field.metadata["architecture"])
