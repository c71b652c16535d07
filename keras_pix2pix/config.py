"""One validated configuration for a pix2pix run, saved as WORKDIR/config.json.

Every setting has its default and a comment here; the command line, the notebooks and the
Python API all build a `Config`, so the defaults live in one place.
"""

import dataclasses
import json
import math
import os


class UsageError(ValueError):
    """A problem with what the user asked for or gave us.

    The command line prints it as one line and exits with status 2; Python callers get a
    ValueError whose message names the argument, the allowed values and the value received.
    """


DIRECTIONS = ("AtoB", "BtoA")
NORMS = ("batch", "instance", "none")
GENERATORS = ("unet", "encoder-decoder")
GAN_LOSSES = ("vanilla", "lsgan")
ON_NAN = ("stop", "skip")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PREPROCESS_MODES = ("resize_and_crop", "scale_width", "crop", "none")

# Settings that shape the networks: a checkpoint cannot be resumed with other values.
ARCHITECTURE_FIELDS = (
    "image_size",
    "input_channels",
    "output_channels",
    "generator",
    "depth",
    "generator_filters",
    "discriminator_layers",
    "discriminator_filters",
    "norm",
)


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
        parts = value.lower().split("x")
        try:
            numbers = tuple(int(part) for part in parts)
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
    if len(numbers) != 2 or not all(isinstance(n, int) and n > 0 for n in numbers):
        raise UsageError(
            f"{name} must be a positive size such as 256 or 256x512 (height x width), "
            f"got {value!r}"
        )
    return numbers


def default_load_size(image_size):
    """The paper's resize-before-crop size: 286 for 256, scaled for other sizes."""
    return tuple(int(round(side * 286 / 256)) for side in image_size)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _check_int(name, value, minimum, maximum=None, optional=False):
    if value is None and optional:
        return
    bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise UsageError(f"{name} must be an integer {bounds}; got {value!r}")


def _check_number(name, value, minimum, maximum=math.inf, optional=False, open_low=False):
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if open_low else value >= minimum) and value <= maximum
    if not ok:
        low = f"> {minimum}" if open_low else f">= {minimum}"
        high = "" if maximum == math.inf else f" and <= {maximum}"
        raise UsageError(f"{name} must be a number {low}{high}; got {value!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a pix2pix run. Defaults follow the paper and junyanz's code.

    Args:
        See the comment on each field.

    Example:
    >>> config = Config(dataset="demo", image_size=64, steps=300)
    >>> config.image_size, config.load_size, config.resolved_load_size
    ((64, 64), None, (72, 72))
    >>> config.replace(image_size=128).resolved_load_size
    (143, 143)
    """

    # --- data ---
    # "demo" (embedded, no network), a dataset of the pix2pix release (facades, cityscapes, maps,
    # edges2shoes, edges2handbags, night2day: downloaded once through tensorflow-datasets), or a
    # folder (AB images or A/ and B/ folders, with train/ val/ test/ split folders or none).
    dataset: str = "demo"
    # Which half of an AB image is the input: "AtoB" or "BtoA"; None takes the dataset's usual one.
    direction: str | None = None
    # Where prepared datasets are kept; None: $KERAS_PIX2PIX_DATA_DIR, else ~/tensorflow_datasets.
    data_dir: str | None = None
    # A folder holding release archives (NAME.tar.gz) downloaded by hand; None: download them.
    manual_dir: str | None = None
    # Skip unreadable or malformed image files (and say how many) instead of stopping at the first.
    skip_bad: bool = False
    # Training augmentation: "resize_and_crop" (the paper's: resize to load_size, random crop),
    # "scale_width" (width to load_size, keep the aspect ratio, random crop), "crop" (random crop
    # from the original size) or "none" (resize to image_size).
    preprocess: str = "resize_and_crop"
    # (height, width) the networks see; each a multiple of 2**depth. An int means a square.
    image_size: tuple = (256, 256)
    # Training images are resized to this, then randomly cropped to image_size; None: the
    # paper's ratio (286 for 256), worked out from image_size when used (resolved_load_size), so
    # that a changed image_size never carries a load size meant for another. Equal to
    # image_size turns the random crop off.
    load_size: tuple | None = None
    # Random horizontal flips of training pairs (the same flip for input and target).
    flip: bool = True
    # Channels of the input and of the target images: 1 (grayscale) or 3 (RGB).
    input_channels: int = 3
    output_channels: int = 3

    # --- models ---
    # "unet" (the paper's generator) or "encoder-decoder" (its baseline without skips).
    generator: str = "unet"
    # Downsamplings in the generator; None: log2 of the shorter side (256 -> 8, a 1x1 bottleneck).
    depth: int | None = None
    # Filters of the first generator block, doubled per block up to 8x (paper: 64).
    generator_filters: int = 64
    # PatchGAN depth: 0 -> 1x1 PixelGAN, 1 -> 16x16, 3 -> 70x70 (paper's default), 5 -> 286x286.
    discriminator_layers: int = 3
    # Filters of the first discriminator block (paper: 64).
    discriminator_filters: int = 64
    # Normalization in both networks: "batch" (paper), "instance" or "none".
    norm: str = "batch"
    # Dropout rate of the first three decoder blocks, in training and at paper test time.
    dropout: float = 0.5

    # --- objective ---
    # "vanilla" (the paper's cross-entropy GAN loss) or "lsgan" (least squares).
    gan_loss: str = "vanilla"
    # Weight of the L1 term in the generator loss (paper: 100).
    lambda_l1: float = 100.0

    # --- optimization ---
    # Adam learning rate and betas for both networks (paper: 2e-4, 0.5, 0.999).
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    # Pairs per step (paper: 1 to 10).
    batch_size: int = 1
    # Compute precision: "float32", "mixed_bfloat16" (CPUs with AVX-512 BF16 or AMX, TPUs, recent
    # GPUs) or "mixed_float16" (GPUs; with loss scaling). Weights, the output layers and the
    # losses stay float32.
    precision: str = "float32"
    # Compile the train step with XLA (off by default: slower on CPUs here).
    xla: bool = False
    # tf.distribute strategy: "auto" (mirrored when more than one GPU is visible, else default),
    # "default", "mirrored", "multiworker" (from TF_CONFIG) or "tpu". batch_size is the global batch.
    strategy: str = "auto"
    # BatchNorm over the global batch across replicas, instead of each replica's own share.
    sync_batchnorm: bool = False
    # Length of the run: steps, or epochs over the training split; neither: 200 epochs (junyanz).
    steps: int | None = None
    epochs: float | None = None
    # The learning rate is constant, then decays linearly to zero over the last decay steps
    # (or epochs); neither: the second half of the run (junyanz: 100 + 100 epochs).
    decay_steps: int | None = None
    decay_epochs: float | None = None

    # --- bookkeeping ---
    # Save a checkpoint every this many steps (and always at the end).
    save_every: int = 1000
    # Write a sample grid (input | output | target) every this many steps (and at the end).
    sample_every: int = 500
    # Validation pairs in the sample grid.
    sample_count: int = 4
    # Write TensorBoard scalars and the progress line every this many steps.
    log_every: int = 10
    # Checkpoints kept in WORKDIR/checkpoints.
    keep_checkpoints: int = 3
    # Deterministic ops (tf.config.experimental.enable_op_determinism): with the seed, a run and
    # any killed-and-resumed copy of it end bit-identical. Costs speed on GPUs.
    deterministic: bool = False
    # On a NaN or infinite loss: "stop" (keep the last good checkpoint and say so) or "skip" (roll
    # back to the last good checkpoint and go on with the next batch).
    on_nan: str = "stop"
    # Seed of every random choice (weights, shuffling, crops, flips, dropout); None: drawn once
    # and written to config.json, so a resumed run continues the same random stream.
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.dataset, str) or not self.dataset:
            raise UsageError(f"dataset must be 'demo' or a folder path; got {self.dataset!r}")
        if self.direction is not None:
            _check_choice("direction", self.direction, DIRECTIONS)
        # Canonical forms of the values given (256 -> (256, 256)); nothing derived is stored, since
        # dataclasses.replace would carry a derived value over to a changed image_size.
        object.__setattr__(self, "image_size", parse_size(self.image_size))
        if self.load_size is not None:
            object.__setattr__(self, "load_size", parse_size(self.load_size, "load_size"))
        if any(load < crop for load, crop in zip(self.resolved_load_size, self.image_size)):
            raise UsageError(
                f"load_size must be at least image_size {self.image_size} on each side "
                f"(it is resized to, then cropped from); got {self.load_size}"
            )
        for name, value in (
            ("flip", self.flip),
            ("skip_bad", self.skip_bad),
            ("deterministic", self.deterministic),
            ("xla", self.xla),
            ("sync_batchnorm", self.sync_batchnorm),
        ):
            if not isinstance(value, bool):
                raise UsageError(f"{name} must be True or False; got {value!r}")
        _check_choice("preprocess", self.preprocess, PREPROCESS_MODES)
        _check_choice("input_channels", self.input_channels, (1, 3))
        _check_choice("output_channels", self.output_channels, (1, 3))
        _check_choice("generator", self.generator, GENERATORS)
        _check_int("depth", self.depth, 1, optional=True)
        _check_int("generator_filters", self.generator_filters, 1)
        _check_int("discriminator_layers", self.discriminator_layers, 0, 8)
        _check_int("discriminator_filters", self.discriminator_filters, 1)
        _check_choice("norm", self.norm, NORMS)
        _check_number("dropout", self.dropout, 0.0, 0.99)
        _check_choice("gan_loss", self.gan_loss, GAN_LOSSES)
        _check_number("lambda_l1", self.lambda_l1, 0.0)
        _check_number("learning_rate", self.learning_rate, 0.0, open_low=True)
        _check_number("beta_1", self.beta_1, 0.0, 1.0)
        _check_number("beta_2", self.beta_2, 0.0, 1.0)
        _check_int("batch_size", self.batch_size, 1)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        if self.steps is not None and self.epochs is not None:
            raise UsageError(f"give steps or epochs, not both; got steps={self.steps}, epochs={self.epochs}")
        _check_int("steps", self.steps, 1, optional=True)
        _check_number("epochs", self.epochs, 0.0, optional=True, open_low=True)
        if self.decay_steps is not None and self.decay_epochs is not None:
            raise UsageError(
                f"give decay_steps or decay_epochs, not both; got decay_steps={self.decay_steps}, "
                f"decay_epochs={self.decay_epochs}"
            )
        _check_int("decay_steps", self.decay_steps, 0, optional=True)
        _check_number("decay_epochs", self.decay_epochs, 0.0, optional=True)
        for name, value in (
            ("save_every", self.save_every),
            ("sample_every", self.sample_every),
            ("log_every", self.log_every),
            ("keep_checkpoints", self.keep_checkpoints),
        ):
            _check_int(name, value, 1)
        _check_int("sample_count", self.sample_count, 0)
        _check_choice("on_nan", self.on_nan, ON_NAN)
        _check_int("seed", self.seed, 0, 2**31 - 1, optional=True)

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
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def save(self, path):
        """Writes the config as JSON, atomically (a reader never sees half a file)."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        write_text_atomically(path, text)

    @classmethod
    def load(cls, path):
        try:
            with open(path) as file:
                values = json.load(file)
        except FileNotFoundError:
            raise UsageError(f"no config.json at {path}") from None
        except json.JSONDecodeError as error:
            raise UsageError(f"{path} is not valid JSON: {error}") from None
        return cls.from_dict(values)

    def differences(self, other):
        """(field, self's value, other's value) for each field where the two differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [(key, mine[key], theirs[key]) for key in mine if mine[key] != theirs[key]]


def write_text_atomically(path, text):
    """Writes text to a temporary file beside path, then renames it over path."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
