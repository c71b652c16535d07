"""The options of predict, evaluate, export and import, each declared once: choices, default, help.

A command's options are the fields of one frozen dataclass, declared with `option(...)` as
Config's settings are with `config.setting(...)`. The command line generates each command's
flags from its dataclass (keras_pix2pix.cli), and the Python functions take their defaults from
it (`defaults(Predict).mode`), so a default is written in one place. TensorFlow-free: the
command line builds its help from these without importing it.
"""

import dataclasses
import types

from keras_pix2pix.config import DIRECTIONS, MAX_PIXELS, Config, UsageError, check_field

MODES = ("paper", "inference", "export")
SIZINGS = ("auto", "resize", "native", "tiles")
# The largest image `--sizing native` runs whole: a U-Net of 64 base filters holds about 1 KB of
# activations per input pixel, so 4 megapixels take some 4 GB; beyond, tiles.
NATIVE_PIXELS = 4_000_000
DEFAULT_OVERLAP = 0.125
FORMATS = ("saved_model", "tflite", "onnx", "web")
# What export writes unless told: ONNX needs the extra `pip install "keras-pix2pix[onnx]"`.
DEFAULT_FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8", "int8_io")
DEFAULT_QUANTIZATIONS = ("none", "float16", "int8")
# How the web page's ONNX file stores its weights (keras_pix2pix.onnx_weights).
WEB_WEIGHTS = ("float32", "float16", "int8")


def option(default, help, kind="str", *, choices=None, minimum=None, maximum=None, flag=None, required=False,
           positional=False, optional=None):
    """A field of a command's options: its default and what its flag and its validation need.

    Args:
        default: the default, of the flag and of the Python function's keyword argument.
        help: what the option does, shown by `keras-pix2pix COMMAND --help`; "(default: ...)" is
            added unless the text already speaks of its default.
        kind: as config.setting's, or "list" (comma-separated values on the command line).
        choices, minimum, maximum: the allowed values of a "choice" or an "int"/"number".
        flag: the command line flag, when not --the-field-name.
        required: the command line needs the flag (the Python argument has no default, or its own).
        positional: the command line takes it without a flag, shown as this name (one or more values
            for a "list").
        optional: None is allowed; default: when None is the default.

    Example:
    >>> field = dataclasses.field(**option(1, "SavedModel version", "int", minimum=1))
    >>> field.default, field.metadata["kind"], field.metadata["flag"]
    (1, 'int', None)
    """
    metadata = {
        "help": help, "kind": kind, "choices": choices, "minimum": minimum, "maximum": maximum, "open_low": False,
        "optional": default is None if optional is None else optional, "flag": flag, "group": None,
        "architecture": False, "required": required, "positional": positional,
    }
    return {"default": default, "metadata": metadata}


def _field(*arguments, **keywords):
    return dataclasses.field(**option(*arguments, **keywords))


def _model(required=True):
    return _field(None, "a work directory or a .keras file", flag="--model", required=required)


def _max_pixels(what="largest image accepted, in pixels, read from its header"):
    return _field(MAX_PIXELS, f"{what} (default: {MAX_PIXELS:,})", "int", minimum=1)


def _mode():
    return _field(
        "paper", "test-time mode: paper (default; dropout on, each image's own batch statistics, as the paper "
        "tests), inference (no dropout, moving statistics) or export (the paper's statistics without dropout, as "
        "the exported files compute)", "choice", choices=MODES,
    )


def _tile_overlap():
    # No default but None: an overlap given where no tile runs is refused (see tile_overlap_for).
    return _field(
        None, f"overlap of tiles, a fraction of a tile from 0 to 0.5, with --sizing tiles or auto (default: "
        f"{DEFAULT_OVERLAP})", "number", minimum=0.0, maximum=0.5,
    )


@dataclasses.dataclass(frozen=True)
class Predict:
    """`keras-pix2pix predict` and `keras_pix2pix.predict`."""

    model: str = _model()
    inputs: tuple = _field(None, "image files or folders", "list", positional="INPUT")
    output_dir: str = _field(None, "folder for the translated PNGs", flag="--output", required=True)
    pairs: bool = _field(False, "inputs are AB pair images: translate the input half", "bool")
    direction: str = _field(None, "input half with --pairs (default: the run's)", "choice", choices=DIRECTIONS)
    mode: str = _mode()
    seed: int = _field(None, "makes paper mode's dropout repeatable", "int")
    sizing: str = _field(
        "auto", "how an image meets the model's size: resize (to it and back: cheap, loses detail finer than the "
        "model's size), native (the whole image at its own resolution, padded to a multiple of 2**depth: memory "
        f"grows with the image, up to {NATIVE_PIXELS / 1e6:g} megapixels), tiles (overlapping tiles of up to 768 px, a "
        "multiple of the model's size, blended: bounded memory at any size; paper mode normalizes every tile with "
        "the whole image's statistics, export mode tiles at the model's size as the SavedModel does) or auto (the "
        "default: resize up to the model's size, tiles above)", "choice", choices=SIZINGS,
    )
    tile_overlap: float = _tile_overlap()
    palette: str = _field(
        None, "for a label model (photo -> labels): facades, cityscapes, demo or a file of 'R G B' lines; each "
        "output pixel is snapped to its nearest palette colour, and NAME_classes.png beside NAME.png holds the "
        "class ids (cityscapes: the 19 train ids, 255 for void and other colours not evaluated)",
    )
    overwrite: bool = _field(False, "replace outputs that exist already", "bool")
    skip_bad: bool = _field(False, "go on past unreadable or oversized inputs", "bool")
    max_pixels: int = _max_pixels()


@dataclasses.dataclass(frozen=True)
class Evaluate:
    """`keras-pix2pix evaluate` and `keras_pix2pix.evaluate`."""

    model: str = _model(required=False)
    dataset: str = _field(None, "demo, a release name or a folder (default: the run's dataset)")
    split: str = _field("test", "test (default), val or train")
    direction: str = _field(None, "(default: the run's)", "choice", choices=DIRECTIONS)
    # The command line asks for a folder; Python writes to ./evaluation unless told.
    output_dir: str = _field("evaluation", "the report folder", flag="--output", required=True)
    mode: str = _mode()
    palette: str = _field(None, "facades, cityscapes, demo or a file of 'R G B' lines, for label metrics")
    fid: bool = _field(
        False, "also FID and KID on Keras' InceptionV3 (ImageNet weights; not the published FID network)", "bool"
    )
    inception_weights: str = _field("imagenet", "a local InceptionV3 weights file (default: imagenet, downloaded)")
    predictions: str = _field(None, "without --model: a folder of outputs to score")
    targets: str = _field(None, "without --model: the folder of targets, matched by file name")
    inputs: str = _field(None, "without --model: inputs to show in the page (optional)")
    data_dir: str = _field(None, "where prepared datasets are kept")
    seed: int = _field(0, "paper mode's dropout seed (default: 0)", "int")
    max_pixels: int = _max_pixels()
    sizing: str = _field(
        "resize", "resize (the default, the paper's protocol: every pair scored at the model's size), or native, "
        "tiles or auto: each pair translated and scored at its own size (see predict --help)", "choice",
        choices=SIZINGS,
    )
    tile_overlap: float = _tile_overlap()


@dataclasses.dataclass(frozen=True)
class Export:
    """`keras-pix2pix export` and `keras_pix2pix.export`."""

    model: str = _model()
    output_dir: str = _field(None, "the export folder", flag="--output", required=True)
    formats: tuple = _field(
        DEFAULT_FORMATS, f"some of {','.join(FORMATS)} (default: {','.join(DEFAULT_FORMATS)}; web is a static site that "
        "translates in the browser; onnx and web need pip install \"keras-pix2pix[onnx]\")", "list", choices=FORMATS,
        flag="--format",
    )
    quantize: tuple = _field(
        DEFAULT_QUANTIZATIONS, f"TFLite kinds, some of {','.join(QUANTIZATIONS)} (default: "
        f"{','.join(DEFAULT_QUANTIZATIONS)}); int8_io is int8 with int8 input and output tensors (integer-only "
        "devices, Edge TPU style); dynamic runs ~100x slower than int8 on x86 CPUs: prefer int8", "list",
        choices=QUANTIZATIONS,
    )
    version: int = _field(1, "SavedModel version (default: 1)", "int", minimum=1)
    model_name: str = _field(None, "served model name (default: the work directory's name)", flag="--name")
    calibration_dataset: str = _field(None, "data for int8 calibration and the checks (default: the run's dataset)")
    max_pixels: int = _max_pixels("largest image the SavedModel's serving_default and the web page accept, in pixels")
    web_weights: str = _field(
        "float16", "how the web page's model stores its weights: float32, float16 (default; half the download) or "
        "int8 (a quarter); it computes in float32 whichever", "choice", choices=WEB_WEIGHTS,
    )
    web_runtime: str = _field(
        "auto", "where the site's copy of ONNX Runtime Web comes from: auto (default; the one npm install puts beside "
        "the page's template in export/browser, else none), cdn (none: the page loads it from its CDN) or a folder "
        "of its dist files (node_modules/onnxruntime-web/dist)",
    )


@dataclasses.dataclass(frozen=True)
class Serve:
    """`keras-pix2pix serve` and `keras_pix2pix.web.serve`."""

    site: str = _field(None, "the folder export --format web wrote", positional="SITE")
    port: int = _field(8000, "the port on 127.0.0.1", "int", minimum=1, maximum=65535)


@dataclasses.dataclass(frozen=True)
class Import:
    """`keras-pix2pix import` and `keras_pix2pix.import_checkpoint`."""

    checkpoint: str = _field(
        None, "a .pth file, or a name that `keras-pix2pix pretrained` lists (downloaded once)", positional="CHECKPOINT"
    )
    workdir: str = _field(None, "the work directory to create (default: runs/NAME)")
    direction: str = _field(
        None, "the task's direction (default: the model's, else AtoB)", "choice", choices=DIRECTIONS
    )
    image_size: tuple = _field(None, "the size the generator takes (default: 2**depth, 256)", "size")
    dataset: str = _field(None, "the dataset config.json names, for fine-tuning and calibration")
    data_dir: str = _field(None, "where downloads are kept")
    manual_dir: str = _field(None, "a folder holding NAME.pth downloaded by hand")


COMMANDS = {"predict": Predict, "evaluate": Evaluate, "export": Export, "import": Import, "serve": Serve}


def defaults(options):
    """The default of each of a command's options, by name: the Python functions' keyword defaults.

    Example:
    >>> defaults(Evaluate).sizing, defaults(Predict).sizing, defaults(Export).formats
    ('resize', 'auto', ('saved_model', 'tflite'))
    """
    return types.SimpleNamespace(**{field.name: field.default for field in dataclasses.fields(options)})


# Validated where given: Config's settings, and the options shared by the commands that have them.
_DECLARED = {field.name: field for field in dataclasses.fields(Config)}
_DECLARED["tile_overlap"] = {field.name: field for field in dataclasses.fields(Predict)}["tile_overlap"]
_DECLARED["port"] = {field.name: field for field in dataclasses.fields(Serve)}["port"]


def flag_of(name):
    """The command line's flag of a setting or option (its declared flag, else --the-name-with-dashes), for messages.

    Example:
    >>> flag_of("learning_rate"), flag_of("max_pixels"), flag_of("tile_overlap")
    ('--lr', '--max-pixels', '--tile-overlap')
    """
    field = _DECLARED.get(name)
    return (field.metadata["flag"] if field else None) or "--" + name.replace("_", "-")


def check_setting(name, value, shown=None):
    """Validates a value against the declaration of setting (Config's field) or option `name`.

    Messages name what the caller named: Python's argument, or on the command line the flag
    (shown=flag_of(name)), checked as it is parsed.

    Example:
    >>> check_setting("max_pixels", 0)
    Traceback (most recent call last):
    ...
    keras_pix2pix.errors.UsageError: max_pixels must be an integer >= 1; got 0
    >>> check_setting("tile_overlap", 0.9, flag_of("tile_overlap"))
    Traceback (most recent call last):
    ...
    keras_pix2pix.errors.UsageError: --tile-overlap must be a number >= 0.0 and <= 0.5; got 0.9
    """
    check_field(_DECLARED[name], value, shown)
    return value


def tile_overlap_for(sizing, tile_overlap, flags=False):
    """The tiles' overlap for a sizing: DEFAULT_OVERLAP unless one is given; refuses one given where no tile runs.

    Args:
        sizing: one of SIZINGS; only tiles and auto run tiles.
        tile_overlap: the overlap given, a fraction of a tile in [0, 0.5], or None.
        flags: name the options as the command line does (--tile-overlap), not as Python does.

    Example:
    >>> tile_overlap_for("auto", None), tile_overlap_for("tiles", 0.25)
    (0.125, 0.25)
    """
    overlap_name, sizing_name = (flag_of(name) if flags else name for name in ("tile_overlap", "sizing"))
    if tile_overlap is None:
        return DEFAULT_OVERLAP
    if sizing not in ("tiles", "auto"):
        raise UsageError(f"{overlap_name} applies only to {sizing_name} tiles or auto; got {sizing_name} {sizing}")
    return check_setting("tile_overlap", tile_overlap, overlap_name)
