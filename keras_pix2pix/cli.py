"""The `keras-pix2pix` command: argparse subcommands that call the package's functions.

    keras-pix2pix fit --dataset demo --image-size 64 --steps 300 --workdir runs/demo
    keras-pix2pix predict --model runs/demo labels.png --output translated
    keras-pix2pix evaluate --model runs/demo --split val --output report
    keras-pix2pix export --model runs/demo --output exports
    keras-pix2pix datasets
    keras-pix2pix import facades_label2photo --workdir runs/facades_label2photo
    keras-pix2pix pretrained
    keras-pix2pix export --model runs/demo --format web --output site && keras-pix2pix serve site/demo/web/1

`fit`'s flags are generated from Config's fields (their help, kinds, choices and defaults), the
other commands' from their options' (keras_pix2pix.options), so a setting or option is declared
once, and the Python functions take the same defaults. Mistakes a user can make (a bad flag value, a
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
from keras_pix2pix.config import Config, UsageError, parse_duration, parse_size
from keras_pix2pix.console import quiet_tensorflow
from keras_pix2pix.errors import CheckpointWriteError, NonFiniteLossError, Stopped, TrainingInterrupted, first_line
from keras_pix2pix.options import COMMANDS, check_setting, flag_of, tile_overlap_for
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


def _help(field):
    """The flag's help: the declaration's, with its default unless it is off, None or already spoken of."""
    spec, help_text = field.metadata, field.metadata["help"]
    if spec["kind"] == "bool":
        # A switch: its flag turns the setting on, or off (--no-flip) when it is on by default.
        return f"turn off: {help_text}" if field.default else help_text
    # An option's help may speak of its default in its own words ("paper (default; dropout on, ...)").
    spoken = "required" in spec and ("default" in help_text or spec["required"])
    if field.default is not None and not spoken:
        return help_text + f" (default: {_shown(field.default)})"
    return help_text


def _argument_type(field, flag):
    kind = field.metadata["kind"]
    if kind == "choice":
        return type(field.metadata["choices"][0])
    return {"int": int, "number": float, "size": _size(flag), "duration": _duration(flag), "str": str, "list": _list}[kind]


def add_setting(parser, field, groups):
    """Adds the flag of one Config field or command option, as its declaration describes it."""
    spec = field.metadata
    flag = spec["flag"] or "--" + field.name.replace("_", "-")
    if spec.get("positional"):
        many = {"nargs": "+"} if spec["kind"] == "list" else {}
        parser.add_argument(field.name, metavar=spec["positional"], help=spec["help"], **many)
        return
    if spec["group"]:
        if spec["group"] not in groups:
            groups[spec["group"]] = parser.add_mutually_exclusive_group()
        parser = groups[spec["group"]]
    keywords = {"dest": field.name, "help": _help(field)}
    if "required" in spec:  # a command's option: named as its flag in the usage line (--output OUTPUT)
        keywords.update(required=spec["required"], metavar=flag[2:].upper().replace("-", "_"))
    if spec["kind"] == "bool":
        keywords["action"] = "store_false" if field.default else "store_true"
    else:
        keywords["type"] = _argument_type(field, flag)
    if spec["kind"] in ("bool", "choice"):
        keywords.pop("metavar", None)  # a switch takes no value; a choice shows its values
    if spec["kind"] == "choice":
        keywords["choices"] = spec["choices"]
    parser.add_argument(flag, **keywords)


def _add_options(parser, command):
    """Adds the flags of a command's options (keras_pix2pix.options), with their defaults."""
    for field in dataclasses.fields(COMMANDS[command]):
        add_setting(parser, field, {})
        if not field.metadata["required"] and not field.metadata["positional"]:
            parser.set_defaults(**{field.name: field.default})


def _options(arguments, command):
    """The values of a command's options, by the Python function's argument names."""
    return {field.name: getattr(arguments, field.name) for field in dataclasses.fields(COMMANDS[command])}


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


def _add_predict(commands):
    parser = commands.add_parser(
        "predict",
        help="translate images with a trained generator",
        description="Translate image files or folders; writes NAME.png per input, at the input's size.",
    )
    _add_options(parser, "predict")
    parser.set_defaults(command=predict_command)


def _check_sizing_flags(arguments):
    """Refuses --max-pixels and --tile-overlap values (and an overlap where no tile runs) before anything is read or written."""
    _check_flags({"max_pixels": arguments.max_pixels})
    tile_overlap_for(arguments.sizing, arguments.tile_overlap, flags=True)


def predict_command(arguments):
    _check_sizing_flags(arguments)
    written = _library("translation").predict(**_options(arguments, "predict"))
    if arguments.palette is None:
        print(f"wrote {len(written)} image(s) to {arguments.output_dir}")
    else:
        print(f"wrote {len(written) // 2} label map(s) snapped to {arguments.palette} and their class-id PNGs "
              f"(NAME_classes.png) to {arguments.output_dir}")


def _add_evaluate(commands):
    parser = commands.add_parser(
        "evaluate",
        help="score a model (or folders of predictions) and write metrics.json and index.html",
        description="Translate every pair of a split and score each output against its target: L1, PSNR, "
        "SSIM; label-map accuracy and mean IoU when the target is a label map; FID and KID with --fid. "
        "Writes OUTPUT/metrics.json and OUTPUT/index.html (sortable, thumbnails in OUTPUT/images).",
    )
    _add_options(parser, "evaluate")
    parser.set_defaults(command=evaluate_command)


def evaluate_command(arguments):
    _check_sizing_flags(arguments)
    _library("evaluation").evaluate(**_options(arguments, "evaluate"))


def _list(text):
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _add_export(commands):
    parser = commands.add_parser(
        "export",
        help="export a SavedModel for TF Serving, TFLite files, ONNX and a web page",
        description="Export a trained generator (export mode: per-image normalization statistics, no dropout) "
        "as a SavedModel laid out for TF Serving (OUTPUT/NAME/VERSION), as TFLite files, as ONNX and as a static "
        "site that translates in the browser (OUTPUT/NAME/web/VERSION); each is reloaded and compared with the "
        "Keras model before it is kept.",
    )
    _add_options(parser, "export")
    parser.set_defaults(command=export_command)


def export_command(arguments):
    _check_flags({"max_pixels": arguments.max_pixels})
    _library("exports").export(**_options(arguments, "export"))


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
    _add_options(parser, "import")
    parser.set_defaults(command=import_command)


def import_command(arguments):
    _library("importing").import_checkpoint(**_options(arguments, "import"))


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
              f"{'downloaded' if downloaded else importing.models_url() + '/' + model.name + '.pth'}")


def _add_serve(commands):
    parser = commands.add_parser(
        "serve",
        help="serve a site from export --format web on 127.0.0.1",
        description="Serve the static site export --format web wrote on 127.0.0.1, cross-origin isolated (so that "
        "the page's WebAssembly runs on several threads), until Ctrl+C.",
    )
    _add_options(parser, "serve")
    parser.set_defaults(command=serve_command)


def serve_command(arguments):
    _check_flags({"port": arguments.port})
    _library("web").serve(**_options(arguments, "serve"))


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
    _add_serve(commands)
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
    quieted = None if arguments.verbose else quiet_tensorflow()
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
        if quieted:  # the caller's process as it was: a test or a notebook may call main again
            quieted.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
