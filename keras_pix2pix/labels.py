"""Colour label maps: the datasets' palettes, snapping colours to classes, and the label scores.

Photo -> labels models draw colour pictures; a user wants classes. Every pixel takes the class of
its nearest palette colour (the generator's colours are never exact, and JPEG label maps are
blurred at class borders). Scores follow the paper's protocol for cityscapes photo -> labels
(its Table 6), with the definitions of the authors' evaluation code (junyanz/pytorch-CycleGAN-
and-pix2pix, scripts/eval_cityscapes: fast_hist and get_scores):

- a target pixel takes the class of its nearest colour among all the palette's colours; if that
  colour is not evaluated (void, ego vehicle, ground...), the pixel is ignored;
- an output pixel takes the class of its nearest colour among the evaluated ones only: every
  generated pixel is an answer;
- one confusion matrix hist[target class, output class] is summed over the whole split, then
  per-pixel accuracy = sum(diag) / sum(hist), per-class accuracy = mean over classes of
  diag / row sums, class IoU = mean over classes of diag / (row + column sums - diag), each
  denominator plus 1e-12 as get_scores has it, so a class absent from the targets and from the
  outputs counts as 0 in the means.
"""

import dataclasses
import functools
import os
import warnings

import numpy as np

from keras_pix2pix import demo
from keras_pix2pix.config import UsageError

# The class index of a pixel whose colour is not an evaluated class (cityscapes' ignore label).
NO_CLASS = 255
_EPSILON = 1e-12  # get_scores' own


@dataclasses.dataclass(frozen=True)
class LabelPalette:
    """The colours of a dataset's label maps and the class each one scores as.

    Args:
        colours: (K, 3) uint8 RGB colours, one per label.
        classes: (K,) the evaluated class of each colour, 0 to C - 1 (cityscapes' train ids), or -1
            for not evaluated.
        names: the C evaluated classes' names.

    Example:
    >>> palette = LabelPalette.of([("road", (128, 64, 128), True), ("void", (0, 0, 0), False)])
    >>> palette.names, palette.classes.tolist()
    (('road',), [0, -1])
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

    @functools.cached_property  # read for every image scored: worked out once
    def class_colours(self):
        """(C, 3) the colour of each evaluated class, in class order."""
        return np.stack([self.colours[list(self.classes).index(index)] for index in range(len(self.names))])


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
# evaluation in train-id order, and every other colour ignored (void, dynamic, ground, parking,
# rail track, guard rail, bridge, tunnel, caravan, trailer). Colours shared by two labels (pole and
# polegroup, car and license plate) appear once, as the evaluated class.
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


def palette_named(palette, argument="palette"):
    """The LabelPalette of a name in PALETTES or of a file of "R G B" lines (each an evaluated class).

    Args:
        palette: "facades", "cityscapes", "demo" or a path.
        argument: the option's name, for the error.

    Raises:
        UsageError naming the argument, the allowed values and the value received.

    Example:
    >>> len(palette_named("cityscapes").names)
    19
    """
    if palette in PALETTES:
        return PALETTES[palette]
    if not os.path.isfile(str(palette)):
        raise UsageError(f"{argument} must be one of {', '.join(PALETTES)} or a file of R G B lines; got {palette!r}")
    try:
        with warnings.catch_warnings():  # an empty file: refused below in one line, not warned about too
            warnings.simplefilter("ignore", UserWarning)
            colours = np.loadtxt(palette, dtype=np.int64, ndmin=2, comments="#")
    except ValueError as error:
        raise UsageError(f"{argument} file {palette} is not R G B lines: {error}") from None
    if colours.size == 0 or colours.shape[1] != 3 or colours.min() < 0 or colours.max() > 255:
        raise UsageError(f"{argument} file {palette} must hold lines of three numbers 0-255")
    if len(colours) > NO_CLASS:
        raise UsageError(f"{argument} file {palette} has {len(colours)} colours; at most {NO_CLASS} fit a class PNG")
    return LabelPalette.of([(f"class {index}", tuple(colour), True) for index, colour in enumerate(colours)])


def nearest_palette_index(image, colours, rows_at_once=256):
    """Index of the nearest of `colours` for each pixel of a uint8 (H, W, 3) image.

    Example:
    >>> nearest_palette_index(np.array([[[120, 60, 130]]]), CITYSCAPES_PALETTE.colours).tolist()
    [[0]]
    """
    image = np.asarray(image)
    colours = np.asarray(colours, np.int32)
    indices = np.empty(image.shape[:2], np.int64)
    # A few rows at a time: a whole large image against 29 colours would take gigabytes.
    for start in range(0, image.shape[0], rows_at_once):
        pixels = image[start : start + rows_at_once].astype(np.int32)[..., None, :]
        indices[start : start + rows_at_once] = ((pixels - colours) ** 2).sum(axis=-1).argmin(axis=-1)
    return indices


def snap(image, palette):
    """(the image in the palette's exact colours, its class-index map: class ids, NO_CLASS elsewhere).

    Each pixel takes its nearest colour of the whole palette; a colour that is not evaluated
    (cityscapes' void, ground...) gives NO_CLASS, as the model drew it.

    Example:
    >>> colours, classes = snap(np.array([[[120, 60, 130], [5, 5, 5]]], np.uint8), CITYSCAPES_PALETTE)
    >>> colours.tolist(), classes.tolist()
    ([[[128, 64, 128], [0, 0, 0]]], [[0, 255]])
    """
    nearest = nearest_palette_index(image, palette.colours)
    classes = palette.classes[nearest]
    return palette.colours[nearest], np.where(classes < 0, NO_CLASS, classes).astype(np.uint8)


def label_confusion(output, target, palette):
    """The (C, C) confusion hist[target class, output class] of one label image, as fast_hist counts it.

    Target pixels of a colour that is not evaluated are left out; output pixels take the nearest
    evaluated class (see the module's protocol).

    Args:
        output, target: uint8 (H, W, 3) colour label maps of the same size.
        palette: the LabelPalette.

    Example:
    >>> road, car = (128, 64, 128), (0, 0, 142)
    >>> label_confusion(np.array([[road, car]], np.uint8), np.array([[road, road]], np.uint8),
    ...                 CITYSCAPES_PALETTE)[0, [0, 13]].tolist()
    [1, 1]
    """
    classes = len(palette.names)
    truth = palette.classes[nearest_palette_index(target, palette.colours)].ravel()
    predicted = nearest_palette_index(output, palette.class_colours).ravel()
    evaluated = truth >= 0
    counts = np.bincount(truth[evaluated] * classes + predicted[evaluated], minlength=classes * classes)
    return counts.reshape(classes, classes)


def per_class_scores(confusion):
    """(accuracy, IoU) of each class of a confusion hist[target, output], as get_scores defines them."""
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    accuracy = hits / (confusion.sum(axis=1) + _EPSILON)
    iou = hits / (confusion.sum(axis=1) + confusion.sum(axis=0) - hits + _EPSILON)
    return accuracy, iou


def label_scores(confusion):
    """Per-pixel accuracy, per-class accuracy and class IoU of a confusion matrix: the authors' get_scores.

    Sum the confusions of a whole split first: that is the paper's statistic.

    Example:
    >>> round(label_scores([[3, 1], [0, 4]])["pixel_accuracy"], 6)  # 7 of 8 pixels, as get_scores computes it
    0.875
    """
    confusion = np.asarray(confusion, np.float64)
    accuracy, iou = per_class_scores(confusion)
    return {
        "pixel_accuracy": float(np.diag(confusion).sum() / (confusion.sum() + _EPSILON)),
        "class_accuracy": float(np.nanmean(accuracy)),
        "mean_iou": float(np.nanmean(iou)),
    }


def image_label_scores(confusion):
    """label_scores of one image over the classes it holds (in its target or its output) alone.

    An image shows a few of the classes; get_scores' means would count every other class as 0.
    The mean of these over a split is evaluate's image_mean_* figures, not the paper's.

    Example:
    >>> round(image_label_scores([[2, 0, 0], [0, 0, 0], [0, 0, 2]])["class_accuracy"], 6)
    1.0
    """
    confusion = np.asarray(confusion, np.float64)
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    if not present.any():
        return {"pixel_accuracy": float("nan"), "class_accuracy": float("nan"), "mean_iou": float("nan")}
    accuracy, iou = per_class_scores(confusion)
    in_target = confusion.sum(axis=1) > 0
    return {
        "pixel_accuracy": float(np.diag(confusion).sum() / (confusion.sum() + _EPSILON)),
        "class_accuracy": float(accuracy[in_target].mean()) if in_target.any() else 0.0,
        "mean_iou": float(iou[present].mean()),
    }
