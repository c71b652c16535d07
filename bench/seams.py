"""Do tiles show a grid? The step across tile borders against the step inside tiles, in one run.

    python bench/seams.py --model /tmp/seamrun --input demo --figure docs/seams_demo.jpg
    python bench/seams.py --model /tmp/facades256 --input ../shared/data/facades/val --half right

A large input (1500x1000 by default) is made of real inputs of the model's task: a grid of label
maps, each enlarged to 700x700 (nearest neighbour, so that regions stay flat), from the demo
dataset (`--input demo`) or from a folder of AB pairs (`--half`: the model's input half). It is
translated with `--sizing auto` (tiles, at this size) in each mode, with the same seed, and whole
(`native`: one image, its own statistics): the reference a seamless output gets. `before` is the
tiling before issue 28: tiles of the model's size, each normalized by its own statistics in paper
mode. `--ablations` adds the paper-mode tiling less each of its two parts.

The seam ratio (seam_ratio): the step across each tile border, between two pixels the overlap and
one apart across it, on the output averaged over 16-pixel runs along the border, over the same step
between pixels as far apart inside the tiles. 1.0: the borders step no more than the inside of the
tiles. It is printed as measured and divided by the native output's ratio over the same grid
("against native"): on one image the borders fall on more or fewer of its edges by chance, and the
seamless output measures that chance. In brackets, the first measure tried, the step between
neighbouring pixels in the overlaps over the step between neighbours elsewhere, against native
(pixel_step_ratio): a ramp spreads a shift between tiles into small steps that texture buries.
Prints the machine, one line per variant, then a JSON line; --figure draws a crop of the paper-mode
outputs (before, after, native), each beside its centre enlarged.
"""

import argparse
import contextlib
import json
import os
import sys
import time
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_pix2pix import data, demo, sizing  # noqa: E402
from keras_pix2pix.modes import prepare  # noqa: E402
from keras_pix2pix.options import DEFAULT_OVERLAP  # noqa: E402


def border_zones(length, tile, overlap=DEFAULT_OVERLAP):
    """The (first, last) index of each overlap of neighbouring tiles along one side: where the blend hands over.

    Args:
        length: the image's side.
        tile: the tile's side.
        overlap: the tiles' overlap, as a fraction of a tile (as sizing.tiles takes it).

    Example:
    >>> border_zones(100, 32, 0.125)
    [(28, 31), (56, 59), (68, 87)]
    """
    starts = sizing._starts(max(length, tile), tile, round(overlap * tile)).numpy()
    return [(int(following), int(min(start + tile, length) - 1)) for start, following in zip(starts[:-1], starts[1:])]


def _profiles(output, axis, run):
    """The output (height, width, channels) averaged over runs of `run` pixels across `axis`: (runs, length, channels)."""
    image = np.asarray(output, np.float64)
    image = image if axis == 1 else image.transpose(1, 0, 2)
    rows = image.shape[0] // run * run
    return image[:rows].reshape(rows // run, run, image.shape[1], image.shape[2]).mean(axis=1)


def seam_ratio(output, tile_size, overlap=DEFAULT_OVERLAP, run=16):
    """The step across tile borders over the step across as many pixels inside tiles: 1.0 for no seam.

    The step across a border: the mean absolute difference between two pixels the overlap and one
    apart, centred on the overlap (where it has the overlap's width: one pixel before it and one
    after it), once the output is averaged over runs of `run` pixels along the border (a shift
    between two tiles is the same all along it; texture is not). The last tile of a row, aligned
    with the image's end, can overlap its neighbour by most of a tile; its ramp is gentle, and
    only the middle of it counts. Inside: the same difference between pixels as far apart, both
    of them and all between off the overlaps.

    Args:
        output: an image (height, width, channels), any range.
        tile_size: (height, width) of the tiles it was translated in.
        overlap: the tiles' overlap, as a fraction of a tile.
        run: pixels averaged along the border.

    Returns:
        (ratio, border step, inside step).

    Example:
    >>> output = np.random.RandomState(0).uniform(0, 0.5, (96, 96, 1))
    >>> round(seam_ratio(output, (32, 32))[0], 1)  # noise: no seam
    1.0
    >>> output[:, 30:] += 0.2  # lighter from the middle of the first overlap of 32-pixel tiles on: one border of four
    >>> round(seam_ratio(output, (32, 32))[0], 1)
    1.6
    """
    border, inside = [], []
    for axis, tile in ((1, tile_size[1]), (0, tile_size[0])):
        profiles = _profiles(output, axis, run)
        length, span = profiles.shape[1], round(overlap * tile) + 1
        on_border = np.zeros(length, bool)
        for first, last in border_zones(length, tile, overlap):
            on_border[max(first - 1, 0) : last + 2] = True
            before = max((first + last + 1 - span) // 2, 0)
            after = min(before + span, length - 1)
            border.append(np.abs(profiles[:, after] - profiles[:, before]).mean())
        inside += [np.abs(profiles[:, start + span] - profiles[:, start]).mean()
                   for start in range(length - span) if not on_border[start : start + span + 1].any()]
    return float(np.mean(border) / np.mean(inside)), float(np.mean(border)), float(np.mean(inside))


def pixel_step_ratio(output, tile_size, overlap=DEFAULT_OVERLAP):
    """The mean step between neighbouring pixels in the overlaps over the mean step between neighbours elsewhere.

    The first measure tried: a ramp spreads a shift between two tiles over the overlap, a small
    step a pixel, and texture buries it (see bench/README.md).
    """
    output = np.asarray(output, np.float64)
    sums = {True: [0.0, 0], False: [0.0, 0]}
    for axis, tile in ((1, tile_size[1]), (0, tile_size[0])):
        steps = np.abs(np.diff(output, axis=axis)).mean(axis=-1)
        borders = np.zeros(output.shape[axis] - 1, bool)
        for first, last in border_zones(output.shape[axis], tile, overlap):
            borders[max(first - 1, 0) : last + 1] = True
        borders = np.broadcast_to(borders[None, :] if axis == 1 else borders[:, None], steps.shape)
        for on_border in (True, False):
            sums[on_border][0] += steps[borders == on_border].sum()
            sums[on_border][1] += (borders == on_border).sum()
    border, inside = (total / max(count, 1) for total, count in (sums[True], sums[False]))
    return float(border / inside)


def large_input(source, half, size=(1000, 1500), cell=700):
    """A (height, width, 3) float image in [0, 1]: a grid of label maps, each enlarged to cell x cell, cut to `size`.

    700 px cells keep the label maps' own edges off most overlaps of 64, 256 and 768 px tiles at this size.
    """
    grid = (-(-size[0] // cell), -(-size[1] // cell))
    count = grid[0] * grid[1]
    if source == "demo":
        halves = [demo.pair(index, "val", 256)[:, 256:] for index in range(count)]
    else:
        names = sorted(os.listdir(source), key=lambda name: (len(name), name))[:count]
        pairs = [tf.io.decode_image(tf.io.read_file(os.path.join(source, name)), 3).numpy() for name in names]
        halves = [pair[:, pair.shape[1] // 2 :] if half == "right" else pair[:, : pair.shape[1] // 2] for pair in pairs]
    cells = [tf.image.resize(half, (cell, cell), "nearest").numpy() for half in halves]
    rows = [np.concatenate(cells[row * grid[1] : (row + 1) * grid[1]], axis=1) for row in range(grid[0])]
    return np.concatenate(rows, axis=0)[: size[0], : size[1]].astype(np.float32) / 255.0


def without(*parts):
    """The tiling less some parts of issue 28's: "larger tiles", "whole-image statistics"."""
    stack = contextlib.ExitStack()
    if "larger tiles" in parts:
        stack.enter_context(mock.patch.object(sizing, "CONTEXT_TILE_SIDE", 0))
    if "whole-image statistics" in parts:
        # No BatchNorm found: each tile runs paper mode alone, on its own statistics.
        stack.enter_context(mock.patch.object(sizing, "batch_normalizations", lambda model: []))
    return stack


def variants(ablations):
    """(name, mode, sizing, the parts of the fix left out) of each variant."""
    everything = ("larger tiles", "whole-image statistics")
    chosen = [("before (paper)", "paper", "auto", everything), ("paper", "paper", "auto", ())]
    if ablations:
        chosen += [(f"paper without {part}", "paper", "auto", (part,)) for part in everything]
    chosen += [("inference", "inference", "auto", ()), ("export (the SavedModel's)", "export", "auto", ())]
    return chosen + [(f"native ({mode})", mode, "native", ()) for mode in ("paper", "inference", "export")]


def translate(generator, image, mode, chosen_sizing, left_out, seed):
    """One variant's output in [-1, 1] and its seconds."""
    model = sizing.runner_for(prepare(generator, mode), chosen_sizing)
    tf.keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    with without(*left_out):
        output = sizing.translate_image(model, image, mode, chosen_sizing).numpy()
    return output, time.perf_counter() - start


def grid_of(generator, image, mode, left_out):
    """The tile size a variant used."""
    with without(*left_out):
        return sizing.tile_size_for(prepare(generator, mode), image.shape, mode)


def draw(outputs, path, box, zoom=2):
    """Paper mode's outputs before and after, and native: a crop (top, left, height, width) of each, and its centre enlarged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top, left, height, width = box
    labels = {
        "before (paper)": "before: tiles of the model's size, each its own statistics",
        "paper": "after: tiles of 768 px, the whole image's statistics",
        "native (paper)": "the whole image at once",
    }
    figure, axes = plt.subplots(len(labels), 2, figsize=(12, 2.9 * len(labels)), squeeze=False)
    for row, (name, label) in enumerate(labels.items()):
        crop = data.denormalize(outputs[name][top : top + height, left : left + width]).numpy()
        margin_top, margin_left = height * (zoom - 1) // (2 * zoom), width * (zoom - 1) // (2 * zoom)
        centre = crop[margin_top : height - margin_top, margin_left : width - margin_left]
        for column, (shown, title) in enumerate([(crop, label), (centre, f"centre, {zoom}x")]):
            axes[row, column].imshow(shown, interpolation="nearest")
            axes[row, column].set_xticks([]), axes[row, column].set_yticks([])
            axes[row, column].set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a work directory or .keras file")
    parser.add_argument("--input", default="demo", help="demo, or a folder of AB pairs")
    parser.add_argument("--half", choices=("left", "right"), default="right", help="the model's input half of the pairs")
    parser.add_argument("--size", default="1000x1500", help="HEIGHTxWIDTH of the large input")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ablations", action="store_true", help="also paper mode less each part of the fix")
    parser.add_argument("--figure", help="a picture of crops of paper mode's outputs: before, after, native")
    parser.add_argument("--figure-box", default="280,300,400,800", help="the crop: TOP,LEFT,HEIGHT,WIDTH")
    parser.add_argument("--save", help="a folder to write each output into, as NAME.npy")
    arguments = parser.parse_args()
    from machine import describe

    from keras_pix2pix.translation import load_generator

    print(describe())
    generator = load_generator(arguments.model)[0]
    size = tuple(int(side) for side in arguments.size.split("x"))
    image = large_input(arguments.input, arguments.half, size)
    print(f"input: {arguments.input}, {size[1]}x{size[0]}; model {generator.input_shape[1:3]}")
    chosen = variants(arguments.ablations)
    outputs, seconds = {}, {}
    for name, mode, chosen_sizing, left_out in chosen:
        outputs[name], seconds[name] = translate(generator, image, mode, chosen_sizing, left_out, arguments.seed)
    results = {}
    for name, mode, chosen_sizing, left_out in chosen:
        if chosen_sizing == "native":
            continue
        grid = grid_of(generator, image, mode, left_out)
        native = outputs[f"native ({mode})"]
        ratio, border, inside = seam_ratio(outputs[name], grid)
        against = ratio / seam_ratio(native, grid)[0]
        pixel_against = pixel_step_ratio(outputs[name], grid) / pixel_step_ratio(native, grid)
        difference = float(np.abs(outputs[name] - native).mean())
        results[name] = {"tile": grid, "ratio": ratio, "against_native": against, "border_step": border,
                         "inside_step": inside, "pixel_step_against_native": pixel_against,
                         "l1_to_native": difference, "seconds": seconds[name]}
        print(f"{name:38s} tiles {grid[1]}x{grid[0]}: seam ratio {ratio:.3f}, against native {against:.3f} "
              f"(neighbouring pixels: {pixel_against:.3f}); L1 to native {difference:.3f}; {seconds[name]:.1f} s")
    if arguments.save:
        os.makedirs(arguments.save, exist_ok=True)
        for name, output in outputs.items():
            np.save(os.path.join(arguments.save, name.replace(" ", "_").replace("'", "") + ".npy"), output)
    print("native: " + ", ".join(f"{name} {seconds[name]:.1f} s" for name in seconds if name.startswith("native")))
    if arguments.figure:
        draw(outputs, arguments.figure, tuple(int(value) for value in arguments.figure_box.split(",")))
        print(f"figure: {arguments.figure}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
