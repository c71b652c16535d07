"""The package's figures: WORKDIR/losses.png, the training curves drawn from the run's own TensorBoard
logs, and evaluate's confusion.png of a label model.

The logs are the one record of a run's losses (TensorBoard reads them too); a resumed run adds to
them, and a step logged twice (a run killed after its last checkpoint, then resumed) keeps its
latest value. Drawn with matplotlib's object API, so that a user's pyplot state and backend are
never touched.
"""

import glob
import io
import os

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_pix2pix.files import write_atomically

# The panels: (title, [(tag, label), ...]).
PANELS = (
    ("adversarial losses", [("losses/generator_gan", "G gan"), ("losses/discriminator_real", "D real"),
                            ("losses/discriminator_fake", "D fake")]),
    ("L1 (x lambda in G's total)", [("losses/generator_l1", "training pairs"),
                                    ("validation/l1_samples", "sample pairs (validation)")]),
    ("generator total", [("losses/generator_total", "G total")]),
    ("learning rate", [("learning_rate", "G and D")]),
)


def read_scalars(logs):
    """{tag: (steps, values)} of every scalar in a folder of TensorBoard event files, sorted by step."""
    latest = {}
    # Event files are named by their creation time: read oldest first so that later writes win.
    for path in sorted(glob.glob(os.path.join(logs, "events.out.tfevents.*")), key=os.path.getmtime):
        try:
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name == "scalars":
                        latest.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
        except tf.errors.DataLossError:
            continue  # a file cut short by a kill: what was read of it stays
    return {tag: (np.array(sorted(points)), np.array([points[step] for step in sorted(points)]))
            for tag, points in latest.items()}


def smoothed(values, weight=0.9):
    """TensorBoard's smoothing: an exponential moving average, debiased at the start.

    Example:
    >>> smoothed(np.array([1.0, 1.0, 1.0])).tolist()
    [1.0, 1.0, 1.0]
    """
    output, average = np.empty(len(values)), 0.0
    for index, value in enumerate(values):
        average = weight * average + (1 - weight) * value
        output[index] = average / (1 - weight ** (index + 1))
    return output


def plot_losses(logs, path):
    """Draws the curves of the run logged in `logs` into a PNG at `path`; returns whether there was anything.

    Args:
        logs: the run's TensorBoard folder (WORKDIR/logs).
        path: the PNG to write (atomically).
    """
    scalars = read_scalars(logs)
    if not any(tag in scalars for _, curves in PANELS for tag, _ in curves):
        return False
    figure = Figure(figsize=(11, 7), dpi=90)
    FigureCanvasAgg(figure)
    for index, (title, curves) in enumerate(PANELS):
        axis = figure.add_subplot(2, 2, index + 1)
        for (tag, label), color in zip(curves, ("tab:blue", "tab:orange", "tab:green")):
            if tag not in scalars:
                continue
            steps, values = scalars[tag]
            many = len(values) > 20 and tag != "learning_rate"  # the schedule is exact: not smoothed
            axis.plot(steps, values, color=color, alpha=0.25 if many else 1.0, linewidth=1,
                      marker="o" if len(values) <= 20 else None, markersize=3, label=None if many else label)
            if many:
                # About 30 points' memory at any length: a long run's curve stays readable.
                weight = min(max(1 - 30 / len(values), 0.6), 0.99)
                axis.plot(steps, smoothed(values, weight), color=color, linewidth=1.6, label=f"{label} (smoothed)")
        axis.set_title(title, fontsize=11)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    _save(figure, path)
    return True


def plot_confusion(confusion, names, path):
    """Draws a label confusion hist[target, output] into a PNG at `path`, each row as shares of its target class.

    Args:
        confusion: the (C, C) pixel counts (keras_pix2pix.labels.label_confusion, summed).
        names: the C class names.
        path: the PNG to write (atomically).
    """
    confusion = np.asarray(confusion, np.float64)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = 3 + 0.35 * len(names)
    figure = Figure(figsize=(size + 1, size), dpi=90)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    image = axis.imshow(shares, cmap="viridis", vmin=0, vmax=1)
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("output class")
    axis.set_ylabel("target class")
    axis.set_title("share of each target class's pixels", fontsize=10)
    figure.colorbar(image, ax=axis, fraction=0.046)
    _save(figure, path)


def _save(figure, path):
    """Lays the figure out and writes it as a PNG at path, atomically."""
    figure.tight_layout()
    drawn = io.BytesIO()
    figure.savefig(drawn, format="png")
    write_atomically(path, drawn.getvalue())
