"""Score a model, or another implementation's outputs, and write a report: `keras-pix2pix evaluate`.

Two item sources give (name, output, target, input) arrays in [-1, 1]: a model translating the
pairs of a split (in a test-time mode of keras_pix2pix.modes), or a folder of predictions matched
by file name to a folder of targets. Each item is scored (keras_pix2pix.metrics), and the report
is OUTPUT/metrics.json (per image and averaged) and OUTPUT/index.html, a sortable table of
input | output | target thumbnails (stored in OUTPUT/images/) that opens with no network.
"""

import dataclasses
import html
import json
import math
import os
import re

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import data, datasets, demo
from keras_pix2pix.config import MAX_PIXELS, Config, UsageError, check_choice, check_setting, tile_overlap_for
from keras_pix2pix.errors import DownloadError, first_line, path_kind, unusable_path
from keras_pix2pix.files import is_inside, make_folder, output_folder, sweep_leftovers, write_atomically
from keras_pix2pix.metrics import (
    FID_NETWORK,
    PALETTES,
    LabelPalette,
    feature_distances,
    image_metrics,
    inception_extractor,
    label_confusion,
    label_metrics,
)
from keras_pix2pix.modes import MODES, prepare, translate
from keras_pix2pix.progress import Progress
from keras_pix2pix.sizing import SIZINGS, runner_for, translate_image
from keras_pix2pix.translation import load_generator
from keras_pix2pix.workdir import losses_plot


def _resolve_palette(palette, dataset, direction):
    """The label palette to score with: the one named, a file's, or the dataset's when its target is a label map."""
    if palette is None:
        # The label map is the target when translating photos to labels: against the usual direction.
        if dataset in PALETTES and direction != datasets.usual_direction(dataset):
            return PALETTES[dataset]
        return None
    if palette in PALETTES:
        return PALETTES[palette]
    if not os.path.isfile(palette):
        raise UsageError(f"palette must be one of {', '.join(PALETTES)} or a file of R G B lines; got {palette!r}")
    try:
        colours = np.loadtxt(palette, dtype=np.int64, ndmin=2, comments="#")
    except ValueError as error:
        raise UsageError(f"palette file {palette} is not R G B lines: {error}") from None
    if colours.shape[1] != 3 or colours.min() < 0 or colours.max() > 255:
        raise UsageError(f"palette file {palette} must hold lines of three numbers 0-255")
    return LabelPalette.of([(f"class {index}", tuple(colour), True) for index, colour in enumerate(colours)])


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
    present = [name for name in ("train", "val", "test") if os.path.isdir(os.path.join(folder, name))]
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


def _own_size_items(pairs, config, direction, runner, mode, sizing, overlap):
    """(output, target, input) arrays in [-1, 1] at each pair's own size: translated natively or in tiles."""
    for _, a_bytes, b_bytes in pairs.ordered():
        source, target = data.decode_pair(a_bytes, b_bytes, direction, config.input_channels, config.output_channels)
        output = translate_image(runner, source, mode, sizing, overlap)
        yield output, data.normalize(target), data.normalize(source)


def _model_items(model, dataset, split, direction, mode, palette, data_dir, seed, max_pixels, sizing, overlap):
    """The pairs of a split translated by a model in a test-time mode, at the model's size or their own (sizing)."""
    keras.utils.set_random_seed(seed)
    generator, saved = load_generator(model)
    dataset = dataset or (saved.dataset if saved else None)
    if dataset is None:
        raise UsageError("a bare .keras file has no config.json: pass --dataset")
    height, width, input_channels = generator.input_shape[1:]
    config = Config(
        dataset=dataset, image_size=(height, width), input_channels=input_channels,
        output_channels=generator.output_shape[-1],
    )  # fmt: skip
    pairs = split_pairs(dataset, split, data_dir or (saved.data_dir if saved else None))
    pairs = datasets.check_pairs(pairs, max_pixels=max_pixels)
    direction = direction or (saved.direction if saved and saved.dataset == dataset else None)
    direction = direction or datasets.usual_direction(dataset)
    runner = runner_for(prepare(generator, mode), sizing)
    names = pairs.names() if isinstance(pairs, datasets.FilePairs) else None

    def items():
        if sizing == "resize":  # the paper's protocol: scored at the model's size
            translated = ((translate(runner, source, mode)[0], target[0], source[0])
                          for source, target in data.eval_dataset(pairs, config, direction))  # fmt: skip
        else:
            translated = _own_size_items(pairs, config, direction, runner, mode, sizing, overlap)
        for index, (output, target, source) in enumerate(translated):
            name = os.path.splitext(os.path.basename(names[index]))[0] if names else f"{index + 1:05d}"
            yield name, np.asarray(output), np.asarray(target), np.asarray(source)

    label_palette = _resolve_palette(palette, os.path.basename(os.path.normpath(dataset)), direction)
    description = f"{dataset} {split}, {direction}, {mode} mode, sizing {sizing}"
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
            metrics.update(label_metrics(matrix))
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
    """The summary of metrics.json: the mean of each per-image figure, the split's label figures, FID."""
    keys = list(rows[0]["metrics"]) if rows else []
    summary = {"pairs": len(rows), "source": source.description}
    summary.update({key: float(np.mean([row["metrics"][key] for row in rows])) for key in keys})
    if confusion is not None:
        # Over all pixels of the split, not the mean of per-image figures.
        summary.update({f"{key}_overall": value for key, value in label_metrics(confusion).items()})
    if extractor is not None:
        summary.update(_feature_distances(outputs, reals, extractor))
    return summary


def _copy_curves(model, output_dir):
    """The run's losses.png, copied beside the page; its name there, or None when the model has none."""
    source = losses_plot(model) if model and os.path.isdir(model) else None
    if source is None or not os.path.isfile(source):
        return None
    with open(source, "rb") as file:
        write_atomically(os.path.join(output_dir, "losses.png"), file.read())
    return "losses.png"


def evaluate(
    model=None, output_dir="evaluation", *, dataset=None, split="test", direction=None, mode="paper", palette=None,
    fid=False, inception_weights="imagenet", predictions=None, targets=None, inputs=None, data_dir=None, seed=0,
    max_pixels=MAX_PIXELS, sizing="resize", tile_overlap=None, verbose=True,
):  # fmt: skip
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
                               "--dataset": dataset})  # fmt: skip
    if model is not None:
        source = _model_items(model, dataset, split, direction, mode, palette, data_dir, seed, max_pixels, sizing,
                              tile_overlap)  # fmt: skip
    elif predictions and targets:
        source = _folder_items(predictions, targets, inputs, palette, max_pixels)
    else:
        raise UsageError("give --model, or --predictions and --targets folders")
    with output_folder(output_dir, "--output"):
        for folder in (output_dir, os.path.join(output_dir, "images")):
            sweep_leftovers(folder, log)
        rows, confusion, outputs, reals = _score(source, output_dir, fid, verbose)
        summary = _summarize(rows, confusion, source, extractor, outputs, reals)
        report = {"summary": summary, "images": rows}
        write_atomically(os.path.join(output_dir, "metrics.json"), json.dumps(report, indent=2))
        write_html(report, os.path.join(output_dir, "index.html"), curves=_copy_curves(model, output_dir))
    log(
        "  ".join(f"{key} {value:.4f}" for key, value in summary.items() if isinstance(value, float))
        + f"  -> {os.path.join(output_dir, 'index.html')}"
    )
    return summary


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keras-pix2pix evaluation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ cursor: pointer; background: #f3f3f3; position: sticky; top: 0; user-select: none; }}
th.sorted-up::after {{ content: " \\25B2"; }} th.sorted-down::after {{ content: " \\25BC"; }}
td.name, th.name {{ text-align: left; }}
img {{ width: {thumb}px; height: auto; image-rendering: auto; display: block; }}
#summary td, #summary th {{ cursor: default; }}
</style></head><body>
<h1>keras-pix2pix evaluation</h1>
<p>{source}: {pairs} pairs. Click a column header to sort.</p>
<table id="summary"><tr>{summary_head}</tr><tr>{summary_row}</tr></table>
{notes}
{curves}
<h2>Images</h2>
<table id="images"><thead><tr><th class="name">#</th><th class="name">name</th>
<th class="name">input</th><th class="name">output</th><th class="name">target</th>{metric_head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
document.querySelectorAll("#images th").forEach(function (header, column) {{
  header.addEventListener("click", function () {{
    var body = document.querySelector("#images tbody");
    var up = !header.classList.contains("sorted-up");
    document.querySelectorAll("#images th").forEach(function (h) {{ h.classList.remove("sorted-up", "sorted-down"); }});
    header.classList.add(up ? "sorted-up" : "sorted-down");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      // Names sort naturally (2 before 10), as the rows first appear.
      var order = isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y), undefined, {{numeric: true}}) : nx - ny;
      return up ? order : -order;
    }});
    rows.forEach(function (row) {{ body.appendChild(row); }});
  }});
}});
</script>
</body></html>
"""


def natural_key(name):
    """Sorts names as people do: digits by their value.

    Example:
    >>> sorted(["10.jpg", "2.jpg", "1.jpg", "b1", "a10", "a9"], key=natural_key)
    ['1.jpg', '2.jpg', '10.jpg', 'a9', 'a10', 'b1']
    """
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name) if part]


def write_html(report, path, thumbnail=160, curves=None):
    """A self-contained page: the summary, the training curves if given, then one sortable row per image.

    Args:
        report: the report (metrics.json's content).
        path: the page to write.
        thumbnail: the width of the thumbnails, in pixels.
        curves: the training curves' PNG, relative to the page (losses.png), or None.
    """
    summary = report["summary"]
    numbers = {key: value for key, value in summary.items() if isinstance(value, float)}
    keys = list(report["images"][0]["metrics"]) if report["images"] else []
    rows = []
    # Rows in the natural order of their names (1, 2, 10, not 1, 10, 2); # numbers them so.
    for index, row in enumerate(sorted(report["images"], key=lambda row: natural_key(row["name"]))):
        cells = [f'<td class="name" data-value="{index + 1}">{index + 1}</td>']
        cells.append(f'<td class="name" data-value="{html.escape(row["name"])}">{html.escape(row["name"])}</td>')
        for role in ("input", "output", "target"):
            source = row["files"].get(role)
            cells.append(
                f'<td class="name" data-value="{index}"><img src="{html.escape(source)}" alt="{role}" loading="lazy"></td>'
                if source
                else f'<td data-value="{index}"></td>'
            )
        for key in keys:
            value = row["metrics"][key]
            cells.append(f'<td data-value="{value:.6g}">{_format(key, value)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    page = _HTML.format(
        thumb=thumbnail,
        source=html.escape(str(summary.get("source", ""))),
        pairs=summary.get("pairs", 0),
        summary_head="".join(f"<th>{html.escape(key)}</th>" for key in numbers),
        summary_row="".join(f"<td>{_format(key, value)}</td>" for key, value in numbers.items()),
        notes=f"<p>FID and KID: {html.escape(summary['fid_network'])}.</p>" if "fid_network" in summary else "",
        curves=f'<h2>Training</h2><img src="{html.escape(curves)}" alt="training curves" style="width: 880px">'
        if curves else "",
        metric_head="".join(f"<th>{html.escape(key)}</th>" for key in keys),
        rows="\n".join(rows),
    )
    write_atomically(path, page)


def _format(key, value):
    if key.startswith("psnr"):
        return f"{value:.2f}"
    if key.startswith("fid") or key == "l1_255":
        return f"{value:.2f}"
    if math.isfinite(value) and abs(value) < 1e-3 and value != 0:
        return f"{value:.2e}"
    return f"{value:.4f}"
