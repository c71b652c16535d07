"""What evaluate scores of images: L1, PSNR, SSIM, FID and KID (label maps: keras_pix2pix.labels).

- L1 (on [-1, 1], and on 0-255), PSNR (dB, capped at 100 for identical images) and SSIM (tf.image);
- FID and KID on the pool features of Keras' InceptionV3 (its ImageNet weights, which Keras
  downloads on first use, or a local weights file). That is not the Inception network that
  published FIDs use, so they are named fid_keras_inceptionv3 and kid_keras_inceptionv3.
"""

import keras
import numpy as np
import tensorflow as tf

PSNR_CAP = 100.0
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
