"""What evaluate scores: image metrics, label-map metrics with their palettes, FID and KID.

- L1 (on [-1, 1], and on 0-255), PSNR (dB, capped at 100 for identical images) and SSIM (tf.image);
- when the target is a colour label map with a known palette (photo -> labels, the paper's
  FCN-free label metrics): per-pixel accuracy, per-class accuracy and mean IoU, after mapping each
  pixel of the output and of the target to the nearest palette colour;
- FID and KID on the pool features of Keras' InceptionV3 (its ImageNet weights, which Keras
  downloads on first use, or a local weights file). That is not the Inception network that
  published FIDs use, so they are named fid_keras_inceptionv3 and kid_keras_inceptionv3.
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import demo

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


def image_metrics(output, target):
    """L1, PSNR and SSIM of one output against its target, both float images in [-1, 1].

    Example:
    >>> image_metrics(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))["ssim"]
    1.0
    """
    output = tf.convert_to_tensor(output, tf.float32)
    target = tf.convert_to_tensor(target, tf.float32)
    l1 = float(tf.reduce_mean(tf.abs(output - target)))
    # SSIM's Gaussian window is 11 pixels: smaller images use a window of their size.
    window = min(11, int(output.shape[0]), int(output.shape[1]))
    ssim = float(tf.image.ssim((output + 1) / 2, (target + 1) / 2, max_val=1.0, filter_size=window))
    return {"l1": l1, "l1_255": l1 * 127.5, "psnr": psnr(target, output), "ssim": ssim}


def psnr(reference, other):
    """PSNR in dB of other against reference, both in [-1, 1] (peak-to-peak 2), capped at 100 dB.

    The one PSNR of the package (evaluate's scores and export's parity checks); identical images
    get the cap instead of infinity, so that averages stay finite.

    Example:
    >>> round(psnr(np.zeros(4), np.full(4, 0.02)), 2), psnr(np.zeros(4), np.zeros(4))
    (40.0, 100.0)
    """
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(other, np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, float(10 * np.log10(4.0 / mse)))


def parity(reference, other):
    """Max and mean absolute difference and PSNR of other against reference (an export's check).

    Example:
    >>> parity(np.zeros(4), np.full(4, 0.5))["max_abs"]
    0.5
    """
    difference = np.abs(np.asarray(reference, np.float64) - np.asarray(other, np.float64))
    return {"max_abs": float(difference.max()), "mean_abs": float(difference.mean()), "psnr": psnr(reference, other)}


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
