"""The `keras-pix2pix` command: argparse subcommands that call the package's functions.

    keras-pix2pix fit --dataset demo --image-size 64 --steps 300 --workdir runs/demo
    keras-pix2pix predict --model runs/demo labels.png --output translated
    keras-pix2pix evaluate --model runs/demo --split val --output report
    keras-pix2pix export --model runs/demo --output exports
    keras-pix2pix datasets
    keras-pix2pix import facades_label2photo --workdir runs/facades_label2photo
    keras-pix2pix pretrained

`fit`'s flags are generated from Config's fields (their help, kinds, choices and defaults), so a
setting is declared once, in keras_pix2pix.config. Mistakes a user can make (a bad flag value, a
missing path, an empty dataset) print one line and exit with status 2.
"""

import argparse
import dataclasses
import errno
import importlib
import os
import signal
import sys
import time

from keras_pix2pix import __version__, files
from keras_pix2pix.config import (
    DEFAULT_FORMATS, DEFAULT_OVERLAP, DIRECTIONS, FORMATS, MAX_PIXELS, MODES, NATIVE_PIXELS, QUANTIZATIONS, SIZINGS, Config,
    UsageError, check_setting, flag_of, parse_duration, parse_size, tile_overlap_for,
)  # fmt: skip
from keras_pix2pix.errors import CheckpointWriteError, NonFiniteLossError, Stopped, TrainingInterrupted, first_line
from keras_pix2pix.console import quiet_tensorflow
from keras_pix2pix.stopping import stop_requests


def _library(module):
    """A module of the package, imported when a command runs.

    Only here (and in the package's lazy attributes) is TensorFlow imported on demand: the parser
    needs none of it, so `--help` and `--version` answer at once.
    """
    return importlib.import_module(f"keras_pix2pix.{module}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, not argparse's usage block: the user reads what is wrong at a glance.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _size(flag):
    def parse(text):
        try:
            return parse_size(text, flag)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _duration(flag):
    def parse(text):
        try:
            return parse_duration(text, flag)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _shown(value):
    return "x".join(map(str, value)) if isinstance(value, tuple) else value


def add_setting(parser, field, groups):
    """Adds the flag of one Config field, as its declaration describes it."""
    spec = field.metadata
    flag = flag_of(field.name)
    help_text = spec["help"]
    if spec["kind"] == "bool":
        # A switch: its flag turns the setting on, or off (--no-flip) when it is on by default.
        help_text = f"turn off: {help_text}" if field.default else help_text
    elif field.default is not None:
        help_text += f" (default: {_shown(field.default)})"
    if spec["group"]:
        if spec["group"] not in groups:
            groups[spec["group"]] = parser.add_mutually_exclusive_group()
        parser = groups[spec["group"]]
    keywords = {"dest": field.name, "help": help_text}
    if spec["kind"] == "bool":
        keywords["action"] = "store_false" if field.default else "store_true"
    elif spec["kind"] == "choice":
        keywords["choices"] = spec["choices"]
        keywords["type"] = type(spec["choices"][0])
    else:
        keywords["type"] = {"int": int, "number": float, "size": _size(flag), "duration": _duration(flag), "str": str}[spec["kind"]]
    parser.add_argument(flag, **keywords)


def _add_fit(commands):
    parser = commands.add_parser(
        "fit",
        help="train a pix2pix model",
        description="Train pix2pix (U-Net generator, PatchGAN discriminator, cGAN + L1) on a paired dataset. "
        "Run it again on the same --workdir to resume: the saved settings hold, and the flags given override them.",
        # Only the flags given reach fit: the others come from a resumed run's config.json or the defaults.
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--workdir", help="where the run is kept (default: runs/DATASET_NAME)")
    groups = {}
    for field in dataclasses.fields(Config):
        add_setting(parser, field, groups)
    parser.set_defaults(command=fit_command)


def _check_flags(values):
    """Checks the values of flags against their settings' declarations, so that a refusal names the flag given."""
    for name, value in values.items():
        check_setting(name, value, flag_of(name))


def fit_command(arguments):
    """`keras-pix2pix fit`: the flags given are the settings named (see train.resolve_config)."""
    given = {key: value for key, value in vars(arguments).items() if key not in ("command", "workdir", "verbose", "started")}
    _check_flags(given)
    _library("train").fit(workdir=getattr(arguments, "workdir", None), started=arguments.started, **given)


def _add_mode(parser):
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="paper",
        help="test-time mode: paper (default; dropout on, each image's own batch statistics, as the paper "
        "tests), inference (no dropout, moving statistics) or export (the paper's statistics without "
        "dropout, as the exported files compute)",
    )


def _add_max_pixels(parser, what="largest image accepted, in pixels, read from its header"):
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help=f"{what} (default: {MAX_PIXELS:,})")


def _add_predict(commands):
    parser = commands.add_parser(
        "predict",
        help="translate images with a trained generator",
        description="Translate image files or folders; writes NAME.png per input, at the input's size.",
    )
    parser.add_argument("--model", required=True, help="a work directory or a .keras file")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("--output", required=True, help="folder for the translated PNGs")
    parser.add_argument("--pairs", action="store_true", help="inputs are AB pair images: translate the input half")
    parser.add_argument("--direction", choices=DIRECTIONS, help="input half with --pairs (default: the run's)")
    _add_mode(parser)
    parser.add_argument("--seed", type=int, help="makes paper mode's dropout repeatable")
    parser.add_argument(
        "--sizing",
        choices=SIZINGS,
        default="auto",
        help="how an image meets the model's size: resize (to it and back: cheap, loses detail finer than the "
        "model's size), native (the whole image at its own resolution, padded to a multiple of 2**depth: memory "
        f"grows with the image, up to {NATIVE_PIXELS / 1e6:g} megapixels), tiles (overlapping tiles of the model's "
        "size, blended without seams: bounded memory at any size; paper mode normalizes each tile with its own "
        "statistics) or auto (the default: resize up to the model's size, tiles above)",
    )
    _add_tile_overlap(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")
    parser.add_argument("--skip-bad", action="store_true", help="go on past unreadable or oversized inputs")
    _add_max_pixels(parser)
    parser.set_defaults(command=predict_command)


def _add_tile_overlap(parser):
    # No default here: a value given where no tile runs is refused (see _check_sizing_flags).
    parser.add_argument(
        "--tile-overlap", type=float,
        help=f"overlap of tiles, a fraction of a tile from 0 to 0.5, with --sizing tiles or auto (default: {DEFAULT_OVERLAP})",
    )  # fmt: skip


def _check_sizing_flags(arguments):
    """Refuses --max-pixels and --tile-overlap values (and an overlap where no tile runs) before anything is read or written."""
    _check_flags({"max_pixels": arguments.max_pixels})
    tile_overlap_for(arguments.sizing, arguments.tile_overlap, flags=True)


def predict_command(arguments):
    _check_sizing_flags(arguments)
    written = _library("translation").predict(
        arguments.model,
        arguments.inputs,
        arguments.output,
        pairs=arguments.pairs,
        direction=arguments.direction,
        mode=arguments.mode,
        seed=arguments.seed,
        overwrite=arguments.overwrite,
        skip_bad=arguments.skip_bad,
        max_pixels=arguments.max_pixels,
        sizing=arguments.sizing,
        tile_overlap=arguments.tile_overlap,
    )
    print(f"wrote {len(written)} image(s) to {arguments.output}")


def _add_evaluate(commands):
    parser = commands.add_parser(
        "evaluate",
        help="score a model (or folders of predictions) and write metrics.json and index.html",
        description="Translate every pair of a split and score each output against its target: L1, PSNR, "
        "SSIM; label-map accuracy and mean IoU when the target is a label map; FID and KID with --fid. "
        "Writes OUTPUT/metrics.json and OUTPUT/index.html (sortable, thumbnails in OUTPUT/images).",
    )
    parser.add_argument("--model", help="a work directory or a .keras file")
    parser.add_argument("--dataset", help="demo, a release name or a folder (default: the run's dataset)")
    parser.add_argument("--split", default="test", help="test (default), val or train")
    parser.add_argument("--direction", choices=DIRECTIONS, help="(default: the run's)")
    parser.add_argument("--output", required=True, help="the report folder")
    _add_mode(parser)
    parser.add_argument("--palette", help="facades, cityscapes, demo or a file of 'R G B' lines, for label metrics")
    parser.add_argument(
        "--fid",
        action="store_true",
        help="also FID and KID on Keras' InceptionV3 (ImageNet weights; not the published FID network)",
    )
    parser.add_argument("--inception-weights", default="imagenet", help="a local InceptionV3 weights file")
    parser.add_argument("--predictions", help="without --model: a folder of outputs to score")
    parser.add_argument("--targets", help="without --model: the folder of targets, matched by file name")
    parser.add_argument("--inputs", help="without --model: inputs to show in the page (optional)")
    parser.add_argument("--data-dir", help="where prepared datasets are kept")
    parser.add_argument("--seed", type=int, default=0, help="paper mode's dropout seed (default: 0)")
    _add_max_pixels(parser)
    parser.add_argument(
        "--sizing",
        choices=SIZINGS,
        default="resize",
        help="resize (the default, the paper's protocol: every pair scored at the model's size), or native, "
        "tiles or auto: each pair translated and scored at its own size (see predict --help)",
    )
    _add_tile_overlap(parser)
    parser.set_defaults(command=evaluate_command)


def evaluate_command(arguments):
    _check_sizing_flags(arguments)
    options = {key: value for key, value in vars(arguments).items() if key not in ("command", "model", "output", "verbose", "started")}
    _library("evaluation").evaluate(arguments.model, arguments.output, **options)


def _list(text):
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _add_export(commands):
    parser = commands.add_parser(
        "export",
        help="export a SavedModel for TF Serving and TFLite files",
        description="Export a trained generator (export mode: per-image normalization statistics, no dropout) "
        "as a SavedModel laid out for TF Serving (OUTPUT/NAME/VERSION) and as TFLite files; each is reloaded "
        "and compared with the Keras model before it is kept.",
    )
    parser.add_argument("--model", required=True, help="a work directory or a .keras file")
    parser.add_argument("--output", required=True, help="the export folder")
    parser.add_argument(
        "--format", type=_list, default=DEFAULT_FORMATS,
        help=f"some of {','.join(FORMATS)} (default: {','.join(DEFAULT_FORMATS)}; onnx needs "
        "pip install \"keras-pix2pix[onnx]\")",
    )  # fmt: skip
    parser.add_argument(
        "--quantize",
        type=_list,
        default=("none", "float16", "int8"),
        help=f"TFLite kinds, some of {','.join(QUANTIZATIONS)} (default: none,float16,int8); int8_io is int8 "
        "with int8 input and output tensors (integer-only devices, Edge TPU style); dynamic runs ~100x slower "
        "than int8 on x86 CPUs: prefer int8",
    )
    parser.add_argument("--version", type=int, default=1, help="SavedModel version (default: 1)")
    parser.add_argument("--name", help="served model name (default: the work directory's name)")
    parser.add_argument(
        "--calibration-dataset", help="data for int8 calibration and the checks (default: the run's dataset)"
    )
    _add_max_pixels(parser, "largest image the SavedModel's serving_default accepts, in pixels")
    parser.set_defaults(command=export_command)


def export_command(arguments):
    _check_flags({"max_pixels": arguments.max_pixels})
    _library("exports").export(
        arguments.model,
        arguments.output,
        formats=arguments.format,
        quantize=arguments.quantize,
        version=arguments.version,
        model_name=arguments.name,
        calibration_dataset=arguments.calibration_dataset,
        max_pixels=arguments.max_pixels,
    )


def _add_datasets(commands):
    parser = commands.add_parser(
        "datasets",
        help="list the known datasets",
        description="List the datasets --dataset knows, with their sizes and directions, and which are prepared here.",
    )
    parser.add_argument("--data-dir", help="where prepared datasets are kept (default: ~/tensorflow_datasets)")
    parser.set_defaults(command=datasets_command)


def datasets_command(arguments):
    datasets = _library("datasets")
    rows = [("name", "size", "train pairs", "direction", "task", "prepared")]
    for name, size, pairs, direction, task, prepared in datasets.describe_catalog(arguments.data_dir):
        rows.append((name, size, pairs, direction, task, "yes" if prepared else "no"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"data dir: {datasets.resolve_data_dir(arguments.data_dir)}")


def _add_import(commands):
    parser = commands.add_parser(
        "import",
        help="turn an authors' pretrained pix2pix generator (.pth) into a work directory",
        description="Read a junyanz/pytorch-CycleGAN-and-pix2pix U-Net generator (a PyTorch state_dict, read "
        "without PyTorch and without running anything from the file) and write a work directory: config.json, "
        "generator.keras and a checkpoint that fit fine-tunes. predict, evaluate and export work on it as on a "
        "run trained here.",
    )
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a .pth file, or a name that `keras-pix2pix pretrained` lists (downloaded once)"
    )
    parser.add_argument("--workdir", help="the work directory to create (default: runs/NAME)")
    parser.add_argument("--direction", choices=DIRECTIONS, help="the task's direction (default: the model's, else AtoB)")
    parser.add_argument("--image-size", type=_size("--image-size"), help="the size the generator takes (default: 2**depth, 256)")
    parser.add_argument("--dataset", help="the dataset config.json names, for fine-tuning and calibration")
    parser.add_argument("--data-dir", help="where downloads are kept")
    parser.add_argument("--manual-dir", help="a folder holding NAME.pth downloaded by hand")
    parser.set_defaults(command=import_command)


def import_command(arguments):
    _library("importing").import_checkpoint(
        arguments.checkpoint,
        arguments.workdir,
        direction=arguments.direction,
        image_size=arguments.image_size,
        dataset=arguments.dataset,
        data_dir=arguments.data_dir,
        manual_dir=arguments.manual_dir,
    )


def _add_pretrained(commands):
    parser = commands.add_parser(
        "pretrained",
        help="list the authors' pretrained pix2pix generators that import knows",
        description="List the pix2pix generators junyanz/pytorch-CycleGAN-and-pix2pix publishes, with their source, "
        "dataset and direction, and which are downloaded here.",
    )
    parser.add_argument("--data-dir", help="where downloads are kept")
    parser.set_defaults(command=pretrained_command)


def pretrained_command(arguments):
    importing = _library("importing")
    for model in importing.PRETRAINED:
        downloaded = os.path.isfile(importing.pretrained_path(model.name, arguments.data_dir))
        print(f"{model.name:20s} {model.task:26s} {model.dataset:12s} {model.direction}  "
              f"{'downloaded' if downloaded else importing.models_url() + '/' + model.name + '.pth'}")  # fmt: skip


def build_parser():
    parser = _Parser(prog="keras-pix2pix", description="pix2pix image-to-image translation in Keras 3.")
    parser.add_argument("--version", action="version", version=f"keras-pix2pix {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, parser_class=_Parser)
    _add_fit(commands)
    _add_predict(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_datasets(commands)
    _add_import(commands)
    _add_pretrained(commands)
    for command in commands.choices.values():
        command.add_argument(
            "--verbose", action="store_true", default=False, help="also show TensorFlow's own log lines and warnings"
        )
    return parser


# Faults of the machine, not of what the user gave: the command ends with status 1.
_MACHINE_FAULTS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM)


def _os_error_line(error):
    """One line for an OSError: the file, what happened and what to do."""
    where = f" {error.filename}" if error.filename else ""
    return f"could not read or write{where}: {error.strerror or error}"


def _full_disk_line(path):
    """One line for a full disk, whichever layer's error said so (Python's OSError, TensorFlow's OpError)."""
    free = files.free_space_text(path) if path else ""
    return (
        f"could not write {path or 'a file'}: No space left on device{f' ({free})' if free else ''}; free some "
        "space and run the command again (what was written before is intact, nothing half-written is left)"
    )


def _failure(error):
    """The one line (after "keras-pix2pix: ") and the exit status of an error that ends a command; None: unexpected."""
    if isinstance(error, UsageError):
        return f"error: {error}", 2
    if isinstance(error, TrainingInterrupted):
        return str(error), 0  # a preemption notice or Ctrl-C: the work is saved, so this is a clean exit
    full = files.full_disk_path(error)
    if full is not None:  # a fault of the machine, whichever layer noticed it
        return f"error: {_full_disk_line(full)}", 1
    if isinstance(error, (NonFiniteLossError, CheckpointWriteError)):
        return f"error: {error}", 1
    if isinstance(error, OSError):
        return f"error: {_os_error_line(error)}", 1 if error.errno in _MACHINE_FAULTS else 2
    return None


def main(argv=None):
    """Entry point of the keras-pix2pix command; returns the exit status.

    Every failure ends in one line on stderr: 2 for what the user can fix (a bad flag, file or
    work directory), 1 for a fault of the run or the machine (a non-finite loss, a full disk),
    0 for a training run stopped by SIGTERM or SIGINT (its checkpoint resumes it), 128 + the signal's
    number for another command stopped so (its unfinished files removed). Set KERAS_PIX2PIX_TRACEBACK=1 to see where an
    unexpected error came from.
    """
    # File names are bytes that need not be UTF-8: print them escaped rather than fail.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    started = time.monotonic()  # fit's --time-limit counts from here, TensorFlow's import included
    arguments = build_parser().parse_args(argv)
    arguments.started = started
    native = None if arguments.verbose else quiet_tensorflow()
    try:
        # Before TensorFlow is imported: from here a stop removes what is unfinished and says so.
        with stop_requests():
            arguments.command(arguments)
    except Stopped as stop:
        removed = f"; removed its unfinished {', '.join(stop.removed)}" if stop.removed else ""
        print(f"keras-pix2pix: {stop.signal_name}: stopped{removed}", file=sys.stderr)
        return 128 + signal.Signals[stop.signal_name].value
    except KeyboardInterrupt:
        print("keras-pix2pix: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the last guard of "one line, no traceback"
        if (failure := _failure(error)) is not None:
            print(f"keras-pix2pix: {failure[0]}", file=sys.stderr)
            return failure[1]
        if os.environ.get("KERAS_PIX2PIX_TRACEBACK"):
            raise
        print(
            f"keras-pix2pix: internal error: {type(error).__name__}: {first_line(error, 300)} (please report it; "
            "KERAS_PIX2PIX_TRACEBACK=1 shows where it came from)",
            file=sys.stderr,
        )
        return 1
    finally:
        if native:
            native.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
