"""Score a model, or another implementation's outputs, and write a report: `keras-pix2pix evaluate`.

Two item sources give (name, output, target, input) arrays in [-1, 1]: a model translating the
pairs of a split (in a test-time mode of keras_pix2pix.modes), or a folder of predictions matched
by file name to a folder of targets. Each item is scored (keras_pix2pix.metrics), and the report
is OUTPUT/metrics.json (per image and averaged) and OUTPUT/index.html, a sortable table of
input | output | target thumbnails (stored in OUTPUT/images/) that opens with no network.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import checking, data, datasets, demo
from keras_pix2pix.config import MAX_PIXELS, UsageError, check_choice
from keras_pix2pix.errors import DownloadError, first_line, path_kind, unusable_path
from keras_pix2pix.files import is_inside, make_folder, output_folder, sweep_leftovers, write_atomically
from keras_pix2pix.labels import PALETTES, image_label_scores, label_confusion, label_scores, palette_named
from keras_pix2pix.metrics import FID_NETWORK, feature_distances, image_metrics, inception_extractor
from keras_pix2pix.modes import prepare, translate
from keras_pix2pix.options import MODES, SIZINGS, Evaluate, check_setting, defaults, tile_overlap_for
from keras_pix2pix.progress import Progress
from keras_pix2pix.report import write_report
from keras_pix2pix.seeding import keep_random_states
from keras_pix2pix.sizing import runner_for, translate_image
from keras_pix2pix.translation import load_generator


def _resolve_palette(palette, dataset, direction):
    """The label palette to score with: the one named, a file's, or the dataset's when its target is a label map."""
    if palette is None:
        # The label map is the target when translating photos to labels: against the usual direction.
        if dataset in PALETTES and direction != datasets.usual_direction(dataset):
            return PALETTES[dataset]
        return None
    return palette_named(palette)


def split_pairs(dataset, split, data_dir=None):
    """The pairs of one named split of a dataset ("train", "val" or "test")."""
    if dataset in datasets.CATALOG_NAMES:
        builder = datasets.pix2pix_builder(dataset, data_dir)
        builder.download_and_prepare()
        if split not in builder.info.splits:
            raise UsageError(f"{dataset} has no {split} split; it has {', '.join(builder.info.splits)}")
        return datasets.TfdsPairs(builder, split)
    folder = demo.prepare(datasets.resolve_data_dir(data_dir)) if dataset == "demo" else dataset
    if not os.path.isdir(folder):
        raise unusable_path("dataset folder", folder, "a folder of images")
    if os.path.isdir(os.path.join(folder, split)):
        return datasets.folder_pairs(os.path.join(folder, split))
    present = datasets.split_folders(folder)
    if present:
        raise UsageError(f"{folder} has no {split}/ split; it has {', '.join(present)}")
    return datasets.folder_pairs(folder)


def _prediction_pairs(predictions, targets, inputs=None, max_pixels=MAX_PIXELS):
    """(name, output, target, input or None) arrays in [-1, 1] for files matched by name."""

    def by_stem(folder):
        return {os.path.splitext(os.path.basename(path))[0]: path for path in datasets.list_images(folder)}

    for folder in (predictions, targets) + ((inputs,) if inputs else ()):
        if not os.path.isdir(folder):
            raise unusable_path("folder", folder, "a folder of images")
    outputs, wanted = by_stem(predictions), by_stem(targets)
    sources = by_stem(inputs) if inputs else {}
    names = sorted(set(outputs) & set(wanted))
    if not names:
        raise UsageError(f"no file of {predictions} has a partner of the same name in {targets}")
    missing = sorted(set(wanted) - set(outputs))
    if missing:
        raise UsageError(f"{len(missing)} target(s) have no prediction, the first: {missing[0]}")
    for name in names:
        target = data.normalize(data.read_image(wanted[name], max_pixels, 3))
        size = target.shape[:2]
        output = data.normalize(data.read_image(outputs[name], max_pixels, 3))
        if output.shape[:2] != size:
            # A resized prediction's score would not be the prediction's own.
            raise UsageError(
                f"{outputs[name]} is {output.shape[1]}x{output.shape[0]} but its target {wanted[name]} is "
                f"{size[1]}x{size[0]}: a prediction must have its target's size"
            )
        source = None
        if name in sources:
            source = data.normalize(data.resize(data.read_image(sources[name], max_pixels, 3), size))
        yield name, output.numpy(), target.numpy(), None if source is None else source.numpy()



@dataclasses.dataclass
class _Items:
    """An item source: (name, output, target, input or None) arrays, how many, what they are, their palette."""

    items: object
    total: int
    description: str
    palette: object


def _folder_items(predictions, targets, inputs, palette, max_pixels):
    items = list(_prediction_pairs(predictions, targets, inputs, max_pixels))
    return _Items(items, len(items), f"{predictions} against {targets}", _resolve_palette(palette, None, None))


def _own_size_items(pairs, channels, direction, runner, mode, sizing, overlap):
    """(output, target, input) arrays in [-1, 1] at each pair's own size: translated natively or in tiles."""
    for _, a_bytes, b_bytes in pairs.ordered():
        source, target = data.decode_pair(a_bytes, b_bytes, direction, *channels)
        output = translate_image(runner, source, mode, sizing, overlap)
        yield output, data.normalize(target), data.normalize(source)


@dataclasses.dataclass(frozen=True)
class _Split:
    """Which pairs a model is scored on: a split of a dataset, read as the model's run reads it unless told."""

    dataset: str | None
    split: str
    direction: str | None
    data_dir: str | None
    max_pixels: int

    def resolve(self, saved):
        """(dataset, direction, pairs) of this split; what is not given comes from the run's Config (saved, or None)."""
        dataset = self.dataset or (saved.dataset if saved else None)
        if dataset is None:
            raise UsageError("a bare .keras file has no config.json: pass --dataset")
        pairs = split_pairs(dataset, self.split, self.data_dir or (saved.data_dir if saved else None))
        pairs = checking.check_pairs(pairs, max_pixels=self.max_pixels)
        direction = self.direction or (saved.direction if saved and saved.dataset == dataset else None)
        return dataset, direction or datasets.usual_direction(dataset), pairs


def _model_items(model_path, wanted, mode, palette, sizing, overlap):
    """The pairs of a split (wanted, a _Split) translated by a model (a work directory or a .keras file) in a
    test-time mode, at the model's size or their own."""
    generator, saved = load_generator(model_path)
    dataset, direction, pairs = wanted.resolve(saved)
    # The model's own shapes say how to read the pairs: its size, its input and output channels.
    image_size, channels = generator.input_shape[1:3], (generator.input_shape[-1], generator.output_shape[-1])
    runner = runner_for(prepare(generator, mode), sizing)
    names = pairs.names() if isinstance(pairs, datasets.FilePairs) else None

    def items():
        if sizing == "resize":  # the paper's protocol: scored at the model's size
            translated = ((translate(runner, source, mode)[0], target[0], source[0])
                          for source, target in data.resized_pairs(pairs, direction, image_size, channels))
        else:
            translated = _own_size_items(pairs, channels, direction, runner, mode, sizing, overlap)
        for index, (output, target, source) in enumerate(translated):
            name = os.path.splitext(os.path.basename(names[index]))[0] if names else f"{index + 1:05d}"
            yield name, np.asarray(output), np.asarray(target), np.asarray(source)

    label_palette = _resolve_palette(palette, os.path.basename(os.path.normpath(dataset)), direction)
    description = f"{dataset} {wanted.split}, {direction}, {mode} mode, sizing {sizing}"
    return _Items(items(), len(pairs), description, label_palette)


def _write_png(path, image):
    write_atomically(path, tf.io.encode_png(data.denormalize(tf.convert_to_tensor(image, tf.float32))).numpy())


def _score(source, output_dir, keep_images, verbose):
    """Scores each item and writes its thumbnails; returns (rows, the summed label confusion, outputs, targets)."""
    make_folder(os.path.join(output_dir, "images"), "--output")
    progress = Progress(source.total, "evaluated", rate_unit="pairs", log_every=50) if verbose else None
    rows, confusion, outputs, targets = [], None, [], []
    for index, (name, output, target, inputs) in enumerate(source.items):
        metrics = image_metrics(output, target)
        if source.palette is not None:
            matrix = label_confusion(data.denormalize(output).numpy(), data.denormalize(target).numpy(), source.palette)
            metrics.update(image_label_scores(matrix))
            confusion = matrix if confusion is None else confusion + matrix
        files = {}
        for role, image in (("input", inputs), ("output", output), ("target", target)):
            if image is not None:
                files[role] = f"images/{index + 1:05d}_{role}.png"
                _write_png(os.path.join(output_dir, files[role]), image)
        rows.append({"name": name, "files": files, "metrics": metrics})
        if keep_images:
            outputs.append(output)
            targets.append(target)
        if progress:
            progress.update(index + 1)
    return rows, confusion, outputs, targets


# The file Keras downloads for inception_extractor("imagenet"), which --inception-weights replaces offline.
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _load_inception(inception_weights):
    """The FID feature network, loaded before anything is scored: weights that cannot be had stop evaluate.

    Args:
        inception_weights: "imagenet" (Keras downloads them once), a local weights file, or None
            (random weights, for tests).

    Raises:
        UsageError: the file given does not exist or holds no InceptionV3 weights.
        DownloadError: the ImageNet weights could not be downloaded (the network's fault: status 1).
    """
    if inception_weights not in ("imagenet", None) and path_kind(inception_weights) != "a regular file":
        raise unusable_path("--inception-weights", inception_weights, f"a local copy of Keras' {INCEPTION_FILE}")
    try:
        return inception_extractor(inception_weights)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a failed download or a bad file
        if inception_weights == "imagenet":
            raise DownloadError(
                f"the download of InceptionV3's ImageNet weights ({INCEPTION_FILE}, for --fid) failed: "
                f"{first_line(error)}; try again, or pass --inception-weights FILE with a local copy", INCEPTION_FILE
            ) from None
        raise UsageError(
            f"--inception-weights {inception_weights} cannot be loaded as InceptionV3's weights: {first_line(error)} "
            f"(give a local copy of Keras' {INCEPTION_FILE})"
        ) from None


def _feature_distances(outputs, targets, extractor):
    """{fid_keras_inceptionv3, kid_keras_inceptionv3, fid_network} of the outputs against the targets."""
    fid, kid = feature_distances(np.stack(targets), np.stack(outputs), extractor)
    return {"fid_keras_inceptionv3": fid, "kid_keras_inceptionv3": kid, "fid_network": FID_NETWORK}


def _check_output(output_dir, sources):
    """Refuses a report folder that is (or is inside) a folder the report reads."""
    for name, folder in sources.items():
        if folder and os.path.isdir(folder) and is_inside(output_dir, folder):
            raise UsageError(f"--output {output_dir} is the {name} folder {folder} or inside it: pass another --output")


def _summarize(rows, confusion, source, extractor, outputs, reals):
    """The summary of metrics.json: the mean of each per-image figure, the split's label figures, FID.

    The label figures named as the paper's (pixel_accuracy, class_accuracy, mean_iou) are its
    statistic: one confusion over the whole split. The means of the per-image label figures are
    another, named image_mean_*.
    """
    keys = list(rows[0]["metrics"]) if rows else []
    summary = {"pairs": len(rows), "source": source.description}
    if confusion is not None:
        summary.update(label_scores(confusion))
        summary["label_protocol"] = LABEL_PROTOCOL
    for key in keys:
        name = f"image_mean_{key}" if key in LABEL_KEYS else key
        summary[name] = float(np.nanmean([row["metrics"][key] for row in rows]))
    if extractor is not None:
        summary.update(_feature_distances(outputs, reals, extractor))
    return summary


LABEL_KEYS = ("pixel_accuracy", "class_accuracy", "mean_iou")
LABEL_PROTOCOL = (
    "the paper's (Table 6): outputs snapped to the nearest evaluated class colour, targets to the nearest "
    "palette colour with void colours ignored, one confusion matrix over the whole split, scored as the "
    "authors' eval_cityscapes get_scores; image_mean_* are means of per-image figures over the classes each "
    "image holds, another statistic"
)
# Every default of evaluate is its option's (keras_pix2pix.options), the command line's too.
_DEFAULT = defaults(Evaluate)


@keep_random_states  # the seed given seeds this call alone, not the caller's random sequences
def evaluate(
    model=_DEFAULT.model, output_dir=_DEFAULT.output_dir, *, dataset=_DEFAULT.dataset, split=_DEFAULT.split,
    direction=_DEFAULT.direction, mode=_DEFAULT.mode, palette=_DEFAULT.palette, fid=_DEFAULT.fid,
    inception_weights=_DEFAULT.inception_weights, predictions=_DEFAULT.predictions, targets=_DEFAULT.targets,
    inputs=_DEFAULT.inputs, data_dir=_DEFAULT.data_dir, seed=_DEFAULT.seed, max_pixels=_DEFAULT.max_pixels,
    sizing=_DEFAULT.sizing, tile_overlap=_DEFAULT.tile_overlap, verbose=True,
):
    """Scores a model on a split (or a folder of predictions against targets) and writes a report.

    Args:
        model: a work directory or a .keras file; None with predictions and targets.
        output_dir: where metrics.json, index.html and images/ go.
        dataset: "demo", a release name or a folder; default: the run's dataset.
        split: "test", "val" or "train"; a dataset without that split folder uses all its images.
        direction: "AtoB" or "BtoA"; default: the run's.
        mode: "paper", "inference" or "export" (see keras_pix2pix.modes).
        palette: "facades", "cityscapes", "demo" or a file of "R G B" lines for the label metrics;
            None uses the dataset's when its target is a label map.
        fid: also compute FID and KID on Keras' InceptionV3 (fid_keras_inceptionv3, not
            comparable with published FIDs: see metrics.FID_NETWORK).
        inception_weights: "imagenet" (downloaded by Keras), a local .h5/.weights.h5 file; with fid,
            weights that cannot be had stop evaluate before anything is written.
        predictions, targets, inputs: folders of images matched by name, to score without a model.
        data_dir: where prepared datasets are kept.
        seed: makes paper mode's dropout repeatable.
        max_pixels: the largest image accepted, in pixels, checked from its header.
        sizing: "resize" (the default, the paper's protocol: every pair at the model's size),
            "native", "tiles" or "auto": each pair at its own size (see keras_pix2pix.sizing).
        tile_overlap: the tiles' overlap, as a fraction of a tile (0 to 0.5), with sizing tiles or
            auto; None: sizing.DEFAULT_OVERLAP.
        verbose: print the progress and the summary.

    Returns:
        The summary dict (also in metrics.json).

    Example:
    >>> summary = evaluate(predictions=outputs_folder, targets=targets_folder, output_dir=report_folder, verbose=False)
    >>> summary["pairs"], summary["ssim"]
    (2, 1.0)
    """
    check_choice("mode", mode, MODES)
    check_setting("max_pixels", max_pixels)
    check_choice("sizing", sizing, SIZINGS)
    tile_overlap = tile_overlap_for(sizing, tile_overlap)
    log = print if verbose else (lambda *arguments, **keywords: None)
    extractor = _load_inception(inception_weights) if fid else None
    _check_output(output_dir, {"--predictions": predictions, "--targets": targets, "--inputs": inputs,
                               "--dataset": dataset})
    if model is not None:
        keras.utils.set_random_seed(seed)  # paper mode's dropout, repeatable; for this call alone (keep_random_states)
        wanted = _Split(dataset, split, direction, data_dir, max_pixels)
        source = _model_items(model, wanted, mode, palette, sizing, tile_overlap)
    elif predictions and targets:
        source = _folder_items(predictions, targets, inputs, palette, max_pixels)
    else:
        raise UsageError("give --model, or --predictions and --targets folders")
    with output_folder(output_dir, "--output"):
        for folder in (output_dir, os.path.join(output_dir, "images")):
            sweep_leftovers(folder, log)
        rows, confusion, outputs, reals = _score(source, output_dir, fid, verbose)
        summary = _summarize(rows, confusion, source, extractor, outputs, reals)
        labels = (source.palette.names, confusion) if confusion is not None else None
        write_report(output_dir, summary, rows, model, labels)
    log(
        "  ".join(f"{key} {value:.4f}" for key, value in summary.items() if isinstance(value, float))
        + f"  -> {os.path.join(output_dir, 'index.html')}"
    )
    return summary
