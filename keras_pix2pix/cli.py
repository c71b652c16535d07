"""The `keras-pix2pix` command: argparse subcommands that build a Config and call the library.

    keras-pix2pix fit --dataset demo --image-size 64 --steps 300 --workdir runs/demo
    keras-pix2pix predict --model runs/demo labels.png --output translated
    keras-pix2pix evaluate --model runs/demo --split val --output report
    keras-pix2pix export --model runs/demo --output exports
    keras-pix2pix datasets

Mistakes a user can make (a bad flag value, a missing path, an empty dataset) print one line
and exit with status 2.
"""

import argparse
import sys

from keras_pix2pix import datasets
from keras_pix2pix.config import DIRECTIONS, GAN_LOSSES, NORMS, PREPROCESS_MODES, Config, UsageError, parse_size
from keras_pix2pix.evaluate import MODES as EVALUATE_MODES
from keras_pix2pix.evaluate import evaluate
from keras_pix2pix.export import FORMATS, QUANTIZATIONS, export
from keras_pix2pix.predict import predict
from keras_pix2pix.train import CheckpointWriteError, NonFiniteLossError, TrainingInterrupted, fit

DEFAULTS = Config()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, not argparse's usage block: the user reads what is wrong at a glance.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _size(text):
    try:
        return parse_size(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_fit(commands):
    parser = commands.add_parser(
        "fit",
        help="train a pix2pix model",
        description="Train pix2pix (U-Net generator, PatchGAN discriminator, cGAN + L1) on a paired dataset. "
        "Run it again on the same --workdir to resume.",
        argument_default=argparse.SUPPRESS,
    )
    add = parser.add_argument
    add(
        "--dataset",
        help=f"demo (embedded, no network), one of {', '.join(datasets.CATALOG_NAMES)} (downloaded once), "
        "or a folder of AB images or A/ and B/ folders (default: demo)",
    )
    add("--direction", choices=DIRECTIONS, help="which half is the input (default: the dataset's usual one)")
    add("--workdir", help="where the run is kept (default: runs/DATASET_NAME); an existing run resumes with its "
        "saved settings, and the flags given here override them")
    add("--data-dir", dest="data_dir", help="where prepared datasets are kept (default: ~/tensorflow_datasets)")
    add("--manual-dir", dest="manual_dir", help="a folder with release archives (NAME.tar.gz) downloaded by hand")
    add("--skip-bad", dest="skip_bad", action="store_true", help="skip unreadable or malformed images and say how many")
    add("--preprocess", choices=PREPROCESS_MODES, help="training augmentation (default: resize_and_crop, the paper's)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="training steps (default: 200 epochs)")
    length.add_argument("--epochs", type=float, help="epochs over the training split")
    decay = parser.add_mutually_exclusive_group()
    decay.add_argument("--decay-steps", dest="decay_steps", type=int, help="final steps of linear lr decay to 0 (default: half the run)")
    decay.add_argument("--decay-epochs", dest="decay_epochs", type=float, help="the same in epochs")
    add(
        "--precision",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        help="float32 (default), mixed_bfloat16 (AVX-512 BF16/AMX CPUs, TPUs), mixed_float16 (GPUs)",
    )
    add("--xla", action="store_true", help="compile the train step with XLA (slower on CPUs here)")
    add(
        "--strategy",
        choices=("auto", "default", "mirrored", "multiworker", "tpu"),
        help="tf.distribute strategy (default: auto = mirrored with several GPUs); --batch-size is global",
    )
    add("--sync-batchnorm", dest="sync_batchnorm", action="store_true", help="BatchNorm over the global batch")
    add("--batch-size", dest="batch_size", type=int, help=f"pairs per step, 1 to 10 in the paper (default: {DEFAULTS.batch_size})")
    add("--image-size", dest="image_size", type=_size, help="HEIGHTxWIDTH or one number for a square (default: 256)")
    add("--load-size", dest="load_size", type=_size, help="resize before the random crop (default: image size x 286/256, 286 for 256)")
    add("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    add("--input-channels", dest="input_channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (default: 3)")
    add("--output-channels", dest="output_channels", type=int, choices=(1, 3), help="1 or 3 (default: 3)")
    add("--generator", choices=("unet", "encoder-decoder"), help="unet (default) or the paper's encoder-decoder baseline")
    add("--depth", type=int, help="generator downsamplings (default: log2 of the shorter side)")
    add("--generator-filters", dest="generator_filters", type=int, help=f"(default: {DEFAULTS.generator_filters})")
    add(
        "--discriminator-layers",
        dest="discriminator_layers",
        type=int,
        help="PatchGAN depth: 0 = 1x1, 1 = 16x16, 3 = 70x70 (default), 5 = 286x286",
    )
    add("--discriminator-filters", dest="discriminator_filters", type=int, help=f"(default: {DEFAULTS.discriminator_filters})")
    add("--norm", choices=NORMS, help="normalization (default: batch)")
    add("--dropout", type=float, help=f"decoder dropout rate (default: {DEFAULTS.dropout})")
    add("--gan-loss", dest="gan_loss", choices=GAN_LOSSES, help="(default: vanilla)")
    add("--lambda-l1", dest="lambda_l1", type=float, help=f"weight of the L1 loss (default: {DEFAULTS.lambda_l1:g})")
    add("--lr", dest="learning_rate", type=float, help=f"Adam learning rate (default: {DEFAULTS.learning_rate:g})")
    add("--beta1", dest="beta_1", type=float, help=f"(default: {DEFAULTS.beta_1})")
    add("--beta2", dest="beta_2", type=float, help=f"(default: {DEFAULTS.beta_2})")
    add("--save-every", dest="save_every", type=int, help=f"checkpoint interval in steps (default: {DEFAULTS.save_every})")
    add("--sample-every", dest="sample_every", type=int, help=f"sample grid interval (default: {DEFAULTS.sample_every})")
    add("--sample-count", dest="sample_count", type=int, help=f"pairs in the sample grid (default: {DEFAULTS.sample_count})")
    add("--log-every", dest="log_every", type=int, help=f"progress and TensorBoard interval (default: {DEFAULTS.log_every})")
    add("--keep-checkpoints", dest="keep_checkpoints", type=int, help=f"(default: {DEFAULTS.keep_checkpoints})")
    add("--seed", type=int, help="seed for a repeatable run (default: drawn and saved in config.json)")
    add("--deterministic", action="store_true", help="deterministic ops: with --seed, bit-identical runs and resumes")
    add("--on-nan", dest="on_nan", choices=("stop", "skip"), help="on a non-finite loss: stop (default) or skip the batch")
    parser.set_defaults(command=fit_command)


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
    parser.add_argument(
        "--mode",
        choices=("paper", "inference"),
        default="paper",
        help="paper (default): dropout on and per-image batch statistics, as the paper tests; "
        "inference: no dropout, moving statistics (deterministic)",
    )
    parser.add_argument("--seed", type=int, help="makes paper mode's dropout repeatable")
    parser.set_defaults(command=predict_command)


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
    parser.add_argument("--mode", choices=EVALUATE_MODES, default="paper", help="test-time mode (default: paper)")
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
    parser.set_defaults(command=evaluate_command)


def evaluate_command(arguments):
    evaluate(
        arguments.model,
        arguments.output,
        dataset=arguments.dataset,
        split=arguments.split,
        direction=arguments.direction,
        mode=arguments.mode,
        palette=arguments.palette,
        fid=arguments.fid,
        inception_weights=arguments.inception_weights,
        predictions=arguments.predictions,
        targets=arguments.targets,
        inputs=arguments.inputs,
        data_dir=arguments.data_dir,
        seed=arguments.seed,
    )


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
    parser.add_argument("--format", type=_list, default=FORMATS, help=f"some of {','.join(FORMATS)} (default: both)")
    parser.add_argument(
        "--quantize",
        type=_list,
        default=("none", "float16", "int8"),
        help=f"TFLite kinds, some of {','.join(QUANTIZATIONS)} (default: none,float16,int8); "
        "dynamic runs ~100x slower than int8 on x86 CPUs: prefer int8",
    )
    parser.add_argument("--version", type=int, default=1, help="SavedModel version (default: 1)")
    parser.add_argument("--name", help="served model name (default: the work directory's name)")
    parser.add_argument(
        "--calibration-dataset", help="data for int8 calibration and the checks (default: the run's dataset)"
    )
    parser.set_defaults(command=export_command)


def export_command(arguments):
    export(
        arguments.model,
        arguments.output,
        formats=arguments.format,
        quantize=arguments.quantize,
        version=arguments.version,
        model_name=arguments.name,
        calibration_dataset=arguments.calibration_dataset,
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
    rows = [("name", "size", "train pairs", "direction", "task", "prepared")]
    for name, size, pairs, direction, task, prepared in datasets.describe_catalog(arguments.data_dir):
        rows.append((name, size, pairs, direction, task, "yes" if prepared else "no"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"data dir: {datasets.resolve_data_dir(arguments.data_dir)}")


def fit_command(arguments):
    """`keras-pix2pix fit`: the flags given are the settings named (see train.resolve_config)."""
    given = {key: value for key, value in vars(arguments).items() if key not in ("command", "workdir")}
    fit(workdir=getattr(arguments, "workdir", None), **given)


def predict_command(arguments):
    written = predict(
        arguments.model,
        arguments.inputs,
        arguments.output,
        pairs=arguments.pairs,
        direction=arguments.direction,
        mode=arguments.mode,
        seed=arguments.seed,
    )
    print(f"wrote {len(written)} image(s) to {arguments.output}")


def build_parser():
    parser = _Parser(prog="keras-pix2pix", description="pix2pix image-to-image translation in Keras 3.")
    commands = parser.add_subparsers(title="commands", required=True, parser_class=_Parser)
    _add_fit(commands)
    _add_predict(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_datasets(commands)
    return parser


def main(argv=None):
    """Entry point of the keras-pix2pix command; returns the exit status."""
    arguments = build_parser().parse_args(argv)
    try:
        arguments.command(arguments)
    except UsageError as error:
        print(f"keras-pix2pix: error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        # A preemption notice or Ctrl-C: the work is saved, so this is a clean exit.
        print(f"keras-pix2pix: {stop}", file=sys.stderr)
        return 0
    except (NonFiniteLossError, CheckpointWriteError) as error:
        print(f"keras-pix2pix: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
