"""The benchmarks' pictures: outputs side by side, each beside its centre zoomed in."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def draw_with_centres(rows, path, zoom):
    """One row per image: each labelled output, then its centre zoomed `zoom` times.

    Args:
        rows: a list of {label: image (H, W, C), uint8 or float in [0, 1]}, the same labels in each.
        path: the picture to write (PNG or JPEG).
        zoom: how much the centre is enlarged (2: its middle half; 4: its middle quarter).
    """
    labels = list(rows[0])
    figure, axes = plt.subplots(len(rows), 2 * len(labels), figsize=(4.8 * len(labels), 2.5 * len(rows)), squeeze=False)
    for row, images in enumerate(rows):
        for column, label in enumerate(labels):
            image = np.asarray(images[label])
            height, width = image.shape[:2]
            top, left = height * (zoom - 1) // (2 * zoom), width * (zoom - 1) // (2 * zoom)
            centre = image[top : height - top, left : width - left]
            for offset, (shown, title) in enumerate([(image, label), (centre, f"{label}, centre {zoom}x")]):
                axis = axes[row, 2 * column + offset]
                axis.imshow(shown if shown.dtype == np.uint8 else np.clip(shown, 0, 1), interpolation="nearest")
                axis.set_xticks([]), axis.set_yticks([])
                if row == 0:
                    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
