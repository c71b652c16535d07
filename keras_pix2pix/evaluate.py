"""Metrics and a results page: `keras-pix2pix evaluate`.

For every pair of a split it translates the input, then scores the output against the target:
- L1 (on [-1, 1], and on 0-255), PSNR (dB, capped at 100 for identical images) and SSIM, from tf.image;
- when the target is a colour label map with a known palette (photo -> labels, the paper's
  FCN-free label metrics): per-pixel accuracy, per-class accuracy and mean IoU, after mapping each
  pixel of the output and of the target to the nearest palette colour;
- optionally FID and KID on the pool features of Keras' InceptionV3 (its ImageNet weights, which
  Keras downloads on first use, or a local weights file). That is not the Inception network that
  published FIDs use, so metrics.json names them fid_keras_inceptionv3 and kid_keras_inceptionv3.
It writes OUTPUT/metrics.json (per image and averaged) and OUTPUT/index.html, a sortable table of
input | output | target thumbnails (stored in OUTPUT/images/) that opens with no network.
"""

import dataclasses
import html
import json
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import data, datasets, demo
from keras_pix2pix.config import Config, UsageError
from keras_pix2pix.export import export_generator
from keras_pix2pix.predict import load_generator, translate

MODES = ("paper", "inference", "export")
PSNR_CAP = 100.0

@dataclasses.dataclass(frozen=True)
class LabelPalette:
    """The colours of a dataset's label maps and the class each one scores as.

    A pixel takes the class of its nearest colour. Colours of class -1 are not evaluated: target
    pixels of those colours are left out of every figure (the Cityscapes protocol's ignore
    label), and output pixels nearest to them count as misses.

    Args:
        colours: (K, 3) uint8 RGB colours, one per label.
        classes: (K,) the evaluated class of each colour, 0 to C - 1, or -1 for not evaluated.
        names: the C evaluated classes' names.
    """

    colours: np.ndarray
    classes: np.ndarray
    names: tuple

    @classmethod
    def of(cls, labels):
        """A palette from (name, (R, G, B), evaluated) rows; evaluated classes are numbered in order."""
        names = tuple(name for name, _, evaluated in labels if evaluated)
        classes = [names.index(name) if evaluated else -1 for name, _, evaluated in labels]
        colours = np.array([colour for _, colour, _ in labels], np.uint8)
        return cls(colours, np.array(classes, np.int64), names)


# The CMP facade label maps of the pix2pix release colour label k (1 to 12) with row 5k (0-based)
# of MATLAB's jet(64), measured on ../shared/data/facades (tests/test_evaluate.py checks the real
# label images against it). Class names in the CMP database's label order.
FACADES_PALETTE = LabelPalette.of(
    [
        ("background", (0, 0, 223), True), ("facade", (0, 48, 255), True), ("window", (0, 128, 255), True),
        ("door", (0, 207, 255), True), ("cornice", (32, 255, 223), True), ("sill", (112, 255, 143), True),
        ("balcony", (191, 255, 64), True), ("blind", (255, 239, 0), True), ("deco", (255, 159, 0), True),
        ("molding", (255, 80, 0), True), ("pillar", (255, 0, 0), True), ("shop", (175, 0, 0), True),
    ]
)
# Cityscapes' label colours (cityscapesScripts labels.py): the 19 classes of the standard
# evaluation, and every other colour ignored (void, dynamic, ground, parking, rail track, guard
# rail, bridge, tunnel, caravan, trailer). Colours shared by two labels (pole and polegroup, car and
# license plate) appear once, as the evaluated class.
CITYSCAPES_PALETTE = LabelPalette.of(
    [
        ("road", (128, 64, 128), True), ("sidewalk", (244, 35, 232), True), ("building", (70, 70, 70), True),
        ("wall", (102, 102, 156), True), ("fence", (190, 153, 153), True), ("pole", (153, 153, 153), True),
        ("traffic light", (250, 170, 30), True), ("traffic sign", (220, 220, 0), True),
        ("vegetation", (107, 142, 35), True), ("terrain", (152, 251, 152), True), ("sky", (70, 130, 180), True),
        ("person", (220, 20, 60), True), ("rider", (255, 0, 0), True), ("car", (0, 0, 142), True),
        ("truck", (0, 0, 70), True), ("bus", (0, 60, 100), True), ("train", (0, 80, 100), True),
        ("motorcycle", (0, 0, 230), True), ("bicycle", (119, 11, 32), True),
        ("void", (0, 0, 0), False), ("dynamic", (111, 74, 0), False), ("ground", (81, 0, 81), False),
        ("parking", (250, 170, 160), False), ("rail track", (230, 150, 140), False),
        ("guard rail", (180, 165, 180), False), ("bridge", (150, 100, 100), False),
        ("tunnel", (150, 120, 90), False), ("caravan", (0, 0, 90), False), ("trailer", (0, 0, 110), False),
    ]
)
DEMO_PALETTE = LabelPalette.of([(name, tuple(colour), True) for name, colour in zip(demo.CLASSES, demo.PALETTE)])
PALETTES = {"facades": FACADES_PALETTE, "cityscapes": CITYSCAPES_PALETTE, "demo": DEMO_PALETTE}
# What evaluate's FID and KID are computed with, written beside them in metrics.json and the page.
FID_NETWORK = (
    "keras.applications.InceptionV3 with Keras' ImageNet weights: not the Inception graph of "
    "pytorch-fid, clean-fid and the TF FID code, so not comparable with published FIDs"
)


# --- metrics -------------------------------------------------------------------------------------


def image_metrics(output, target):
    """L1, PSNR and SSIM of one output against its target, both float images in [-1, 1].

    Example:
    >>> image_metrics(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))["ssim"]
    1.0
    """
    output = tf.convert_to_tensor(output, tf.float32)
    target = tf.convert_to_tensor(target, tf.float32)
    l1 = float(tf.reduce_mean(tf.abs(output - target)))
    output01, target01 = (output + 1) / 2, (target + 1) / 2
    psnr = float(tf.image.psnr(output01, target01, max_val=1.0))
    # SSIM's Gaussian window is 11 pixels: smaller images use a window of their size.
    window = min(11, int(output.shape[0]), int(output.shape[1]))
    ssim = float(tf.image.ssim(output01, target01, max_val=1.0, filter_size=window))
    return {"l1": l1, "l1_255": l1 * 127.5, "psnr": min(psnr, PSNR_CAP), "ssim": ssim}


def nearest_palette_index(image, palette):
    """Index of the nearest palette colour for each pixel of a uint8 (H, W, 3) image."""
    pixels = np.asarray(image, np.int32).reshape(-1, 1, 3)
    distances = ((pixels - np.asarray(palette, np.int32)[None]) ** 2).sum(axis=-1)
    return distances.argmin(axis=1).reshape(np.shape(image)[:2])


def label_confusion(output, target, palette):
    """Confusion matrix (C target classes x C output classes + 1) after mapping both to the palette.

    Target pixels of a colour that is not evaluated are left out; output pixels of such a colour
    go to the last column: a miss for their target class, a hit for none.
    """
    classes = len(palette.names)
    truth = palette.classes[nearest_palette_index(target, palette.colours)].ravel()
    predicted = palette.classes[nearest_palette_index(output, palette.colours)].ravel()
    evaluated = truth >= 0
    predicted = np.where(predicted < 0, classes, predicted)[evaluated]
    counts = np.bincount(truth[evaluated] * (classes + 1) + predicted, minlength=classes * (classes + 1))
    return counts.reshape(classes, classes + 1)


def label_metrics(confusion):
    """Per-pixel accuracy, per-class accuracy and mean IoU of a confusion matrix (see label_confusion).

    Classes absent from both the targets and the outputs are left out of the means.
    """
    confusion = np.asarray(confusion, np.float64)
    classes = confusion.shape[0]
    true_positive = np.diag(confusion[:, :classes])
    in_target = confusion.sum(axis=1)
    in_output = confusion[:, :classes].sum(axis=0)
    union = in_target + in_output - true_positive
    present = in_target > 0
    return {
        "pixel_accuracy": float(true_positive.sum() / max(confusion.sum(), 1)),
        "class_accuracy": float(np.mean(true_positive[present] / in_target[present])) if present.any() else math.nan,
        "mean_iou": float(np.mean(true_positive[union > 0] / union[union > 0])) if (union > 0).any() else math.nan,
    }


def frechet_distance(features_a, features_b):
    """FID between two sets of feature vectors (rows): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    features_a, features_b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    covariance_a, covariance_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    # Tr((S_a S_b)^1/2) = sum of the square roots of the eigenvalues of S_a^1/2 S_b S_a^1/2 (symmetric).
    values, vectors = np.linalg.eigh(covariance_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ covariance_b @ root_a), 0, None)).sum()
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(covariance_a) + np.trace(covariance_b) - 2 * trace_root)


def kernel_inception_distance(features_a, features_b):
    """KID: the unbiased squared MMD with the polynomial kernel (x.y / d + 1)^3."""
    features_a, features_b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    dimension = features_a.shape[1]

    def kernel(x, y):
        return (x @ y.T / dimension + 1) ** 3

    m, n = len(features_a), len(features_b)
    within_a, within_b = kernel(features_a, features_a), kernel(features_b, features_b)
    return float(
        (within_a.sum() - np.trace(within_a)) / (m * (m - 1))
        + (within_b.sum() - np.trace(within_b)) / (n * (n - 1))
        - 2 * kernel(features_a, features_b).mean()
    )


def inception_extractor(weights="imagenet"):
    """InceptionV3's 2048-d pool features of images in [-1, 1]; weights: "imagenet", a file, or None."""
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=weights, input_shape=(299, 299, 3))

    def features(images):
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape[-1] == 1:
            images = tf.image.grayscale_to_rgb(images)
        # InceptionV3 expects [-1, 1] at 299x299, which is the generator's range.
        # Bilinear without antialiasing, as pytorch-fid feeds its Inception: part of the metric.
        return model(tf.image.resize(images, (299, 299), method="bilinear"), training=False).numpy()

    return features


def feature_distances(real, generated, extractor, batch_size=16):
    """(FID, KID) of generated against real images, both float (N, H, W, C) in [-1, 1]."""
    real_features = np.concatenate([extractor(real[i : i + batch_size]) for i in range(0, len(real), batch_size)])
    fake_features = np.concatenate(
        [extractor(generated[i : i + batch_size]) for i in range(0, len(generated), batch_size)]
    )
    return frechet_distance(real_features, fake_features), kernel_inception_distance(real_features, fake_features)


# --- the run ---------------------------------------------------------------------------------------


def _write_png(path, image):
    tf.io.write_file(path, tf.io.encode_png(data.denormalize(tf.convert_to_tensor(image, tf.float32))))


def _progress(done, total):
    stream = sys.stdout
    line = f"evaluated {done}/{total} pairs"
    if stream.isatty():
        stream.write("\r" + line + ("\n" if done == total else ""))
    elif done == total or done % 50 == 0:
        stream.write(line + "\n")
    stream.flush()


def _resolve_palette(palette, dataset, direction):
    if palette is None:
        # The label map is the target when translating photos to labels.
        usual = {"facades": "BtoA", "cityscapes": "BtoA", "demo": "BtoA"}
        if dataset in usual and direction != usual[dataset]:
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
        raise UsageError(f"dataset folder {folder} does not exist")
    if os.path.isdir(os.path.join(folder, split)):
        return datasets.folder_pairs(os.path.join(folder, split))
    present = [name for name in ("train", "val", "test") if os.path.isdir(os.path.join(folder, name))]
    if present:
        raise UsageError(f"{folder} has no {split}/ split; it has {', '.join(present)}")
    return datasets.folder_pairs(folder)


def _prediction_pairs(predictions, targets, inputs=None):
    """(name, output, target, input or None) arrays in [-1, 1] for files matched by name."""

    def by_stem(folder):
        return {os.path.splitext(os.path.basename(path))[0]: path for path in datasets.list_images(folder)}

    for folder in (predictions, targets) + ((inputs,) if inputs else ()):
        if not os.path.isdir(folder):
            raise UsageError(f"folder {folder} does not exist")
    outputs, wanted = by_stem(predictions), by_stem(targets)
    sources = by_stem(inputs) if inputs else {}
    names = sorted(set(outputs) & set(wanted))
    if not names:
        raise UsageError(f"no file of {predictions} has a partner of the same name in {targets}")
    missing = sorted(set(wanted) - set(outputs))
    if missing:
        raise UsageError(f"{len(missing)} target(s) have no prediction, the first: {missing[0]}")
    for name in names:
        target = data.normalize(data.decode_image(tf.io.read_file(wanted[name]), 3))
        size = target.shape[:2]
        output = data.normalize(data.decode_image(tf.io.read_file(outputs[name]), 3))
        if output.shape[:2] != size:
            output = data.resize(output, size, -1.0, 1.0)
        source = None
        if name in sources:
            source = data.normalize(data.resize(data.decode_image(tf.io.read_file(sources[name]), 3), size))
        yield name, output.numpy(), target.numpy(), None if source is None else source.numpy()


def evaluate(
    model=None,
    output_dir="evaluation",
    *,
    dataset=None,
    split="test",
    direction=None,
    mode="paper",
    palette=None,
    fid=False,
    inception_weights="imagenet",
    predictions=None,
    targets=None,
    inputs=None,
    data_dir=None,
    seed=0,
    verbose=True,
):
    """Scores a model on a split (or a folder of predictions against targets) and writes a report.

    Args:
        model: a work directory or a .keras file; None with predictions and targets.
        output_dir: where metrics.json, index.html and images/ go.
        dataset: "demo", a release name or a folder; default: the run's dataset.
        split: "test", "val" or "train"; a dataset without that split folder uses all its images.
        direction: "AtoB" or "BtoA"; default: the run's.
        mode: "paper", "inference" or "export" (see predict and export).
        palette: "facades", "cityscapes", "demo" or a file of "R G B" lines for the label metrics;
            None uses the dataset's when its target is a label map.
        fid: also compute FID and KID on Keras' InceptionV3 (fid_keras_inceptionv3, not
            comparable with published FIDs: see FID_NETWORK).
        inception_weights: "imagenet" (downloaded by Keras), a local .h5/.weights.h5 file.
        predictions, targets, inputs: folders of images matched by name, to score without a model.
        data_dir: where prepared datasets are kept.
        seed: makes paper mode's dropout repeatable.
        verbose: print the progress and the summary.

    Returns:
        The summary dict (also in metrics.json).

    Example:
    >>> summary = evaluate("runs/facades", "report", dataset="../shared/data/facades", split="val")  # doctest: +SKIP
    """
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    log = print if verbose else (lambda *arguments, **keywords: None)
    if model is None:
        if not (predictions and targets):
            raise UsageError("give --model, or --predictions and --targets folders")
        items = list(_prediction_pairs(predictions, targets, inputs))
        total = len(items)
        source_name = f"{predictions} against {targets}"
        label_palette = _resolve_palette(palette, None, None)
        config = None
    else:
        keras.utils.set_random_seed(seed)
        generator, saved = load_generator(model)
        dataset = dataset or (saved.dataset if saved else None)
        if dataset is None:
            raise UsageError("a bare .keras file has no config.json: pass --dataset")
        height, width, input_channels = generator.input_shape[1:]
        output_channels = generator.output_shape[-1]
        config = Config(
            dataset=dataset,
            image_size=(height, width),
            input_channels=input_channels,
            output_channels=output_channels,
        )
        pairs = split_pairs(dataset, split, data_dir or (saved.data_dir if saved else None))
        pairs = datasets.check_pairs(pairs)
        direction = direction or (saved.direction if saved and saved.dataset == dataset else None)
        if direction is None:
            direction = datasets.find_dataset(dataset, data_dir).direction
        label_palette = _resolve_palette(palette, os.path.basename(os.path.normpath(dataset)), direction)
        runner = export_generator(generator) if mode == "export" else generator
        run_mode = "inference" if mode == "export" else mode
        total = len(pairs)

        def model_items():
            names = pairs.names() if isinstance(pairs, datasets.FilePairs) else None
            for index, (source, target) in enumerate(data.eval_dataset(pairs, config, direction)):
                output = translate(runner, source, run_mode)
                name = os.path.splitext(os.path.basename(names[index]))[0] if names else f"{index + 1:05d}"
                yield name, output[0].numpy(), target[0].numpy(), source[0].numpy()

        items = model_items()
        source_name = f"{dataset} {split}, {direction}, {mode} mode"

    images_dir = os.path.join(output_dir, "images")
    os.makedirs(images_dir, exist_ok=True)
    rows, confusion, outputs, reals = [], None, [], []
    for index, (name, output, target, source) in enumerate(items):
        metrics = image_metrics(output, target)
        if label_palette is not None:
            matrix = label_confusion(data.denormalize(output).numpy(), data.denormalize(target).numpy(), label_palette)
            metrics.update(label_metrics(matrix))
            confusion = matrix if confusion is None else confusion + matrix
        stem = f"{index + 1:05d}"
        files = {}
        for role, image in (("input", source), ("output", output), ("target", target)):
            if image is not None:
                files[role] = f"images/{stem}_{role}.png"
                _write_png(os.path.join(output_dir, files[role]), image)
        rows.append({"name": name, "files": files, "metrics": metrics})
        if fid:
            outputs.append(output)
            reals.append(target)
        if verbose:
            _progress(index + 1, total)

    keys = list(rows[0]["metrics"]) if rows else []
    summary = {"pairs": len(rows), "source": source_name}
    summary.update({key: float(np.mean([row["metrics"][key] for row in rows])) for key in keys})
    if confusion is not None:
        # Over all pixels of the split, not the mean of per-image figures.
        summary.update({f"{key}_overall": value for key, value in label_metrics(confusion).items()})
    if fid:
        try:
            extractor = inception_extractor(inception_weights)
        except Exception as error:  # noqa: BLE001 - any failure to get the weights means: no FID
            log(
                f"FID and KID skipped: InceptionV3 weights ({inception_weights}) could not be loaded: "
                f"{str(error).splitlines()[0]}; pass --inception-weights FILE with a local copy of Keras' "
                "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
            )
        else:
            distances = feature_distances(np.stack(reals), np.stack(outputs), extractor)
            summary["fid_keras_inceptionv3"], summary["kid_keras_inceptionv3"] = distances
            summary["fid_network"] = FID_NETWORK
    report = {"summary": summary, "images": rows}
    with open(os.path.join(output_dir, "metrics.json"), "w") as file:
        json.dump(report, file, indent=2)
    write_html(report, os.path.join(output_dir, "index.html"))
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
      var order = isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y)) : nx - ny;
      return up ? order : -order;
    }});
    rows.forEach(function (row) {{ body.appendChild(row); }});
  }});
}});
</script>
</body></html>
"""


def write_html(report, path, thumbnail=160):
    """A self-contained page: the summary, then one sortable row per image with its thumbnails."""
    summary = report["summary"]
    numbers = {key: value for key, value in summary.items() if isinstance(value, float)}
    keys = list(report["images"][0]["metrics"]) if report["images"] else []
    rows = []
    for index, row in enumerate(report["images"]):
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
        metric_head="".join(f"<th>{html.escape(key)}</th>" for key in keys),
        rows="\n".join(rows),
    )
    with open(path, "w") as file:
        file.write(page)


def _format(key, value):
    if key.startswith("psnr"):
        return f"{value:.2f}"
    if key.startswith("fid") or key == "l1_255":
        return f"{value:.2f}"
    if math.isfinite(value) and abs(value) < 1e-3 and value != 0:
        return f"{value:.2e}"
    return f"{value:.4f}"
