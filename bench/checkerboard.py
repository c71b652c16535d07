"""Checkerboard artifacts of transposed convolutions against resize-then-convolve, after the same training.

    keras-pix2pix fit --dataset ../shared/data/facades --direction BtoA --image-size 128 \
        --precision mixed_bfloat16 --steps 2000 --seed 1 --upsample transpose --workdir /tmp/cb/transpose
    (the same with --upsample resize --workdir /tmp/cb/resize)
    python bench/checkerboard.py --models /tmp/cb/transpose /tmp/cb/resize --dataset ../shared/data/facades \
        --figure docs/checkerboard_facades.jpg

A transposed convolution of stride 2 adds its kernel's taps unevenly to even and odd output pixels
(Odena et al., 2016): each of the decoder's upsamplings leaves a two-dimensional grid whose period
is 2 at the output for the last one, 4 for the one before, and so on. Its measure here: the share of
each output's spectral energy (grayscale, mean removed) at the frequencies of a grid of period P
that are off both axes (both components nonzero: a checker pattern, not the horizontal and vertical
lines that facades are full of), for P = 2, 4, 8 and 16, divided by the same share in the targets,
which are photos. Each model translates the validation pairs in export mode (deterministic); prints
the machine, a line per model and a JSON line. --figure draws a few outputs of each model side by side with their centres
zoomed 4x: outputs only, so that no dataset image goes into the figure.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from figures import draw_with_centres  # noqa: E402
from machine import describe  # noqa: E402

from keras_pix2pix import data, datasets  # noqa: E402
from keras_pix2pix.metrics import image_metrics  # noqa: E402
from keras_pix2pix.modes import prepare, translate  # noqa: E402
from keras_pix2pix.translation import load_generator  # noqa: E402

PERIODS = (2, 4, 8, 16)


def checker_share(images, period):
    """Per image (N, H, W, C) in [-1, 1]: the share of its spectral energy at a period-`period` grid's off-axis frequencies."""
    gray = images.mean(axis=-1)
    gray = gray - gray.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(gray)) ** 2
    height, width = gray.shape[1:]
    grid = np.zeros((height, width), bool)
    grid[:: height // period, :: width // period] = True
    grid[0, :] = grid[:, 0] = False  # on an axis: lines, not a checker pattern
    return power[:, grid].sum(axis=1) / power.sum(axis=(1, 2))


def translated(workdir, dataset, split, count):
    """(outputs, targets) in [-1, 1] of the first `count` pairs of a split, in export mode."""
    generator, config = load_generator(workdir)
    splits = datasets.local_splits(dataset)
    pairs = splits.validation if split == "val" else splits.train
    outputs, targets = [], []
    runner = prepare(generator, "export")
    for inputs, target in data.eval_dataset(pairs.take(count), config, config.direction):
        outputs.append(translate(runner, inputs, "export").numpy())
        targets.append(target.numpy())
    return np.concatenate(outputs), np.concatenate(targets)


def draw(results, path, count):
    """The first `count` outputs of each model, with their centres zoomed 4x."""
    rows = [{name: (outputs[row] + 1) / 2 for name, (outputs, _) in results.items()} for row in range(count)]
    draw_with_centres(rows, path, zoom=4)



def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="work directories (named by their folder)")
    parser.add_argument("--dataset", required=True, help="a folder of AB pairs")
    parser.add_argument("--split", default="val")
    parser.add_argument("--count", type=int, default=100, help="pairs to translate")
    parser.add_argument("--figure", help="a picture of the outputs side by side")
    arguments = parser.parse_args()
    print(describe())
    results, report = {}, {}
    for workdir in arguments.models:
        name = os.path.basename(os.path.normpath(workdir))
        outputs, targets = translated(workdir, arguments.dataset, arguments.split, arguments.count)
        results[name] = (outputs, targets)
        ratios = {period: float(checker_share(outputs, period).mean() / checker_share(targets, period).mean())
                  for period in PERIODS}
        scores = [image_metrics(output, target) for output, target in zip(outputs, targets)]
        report[name] = {
            "pairs": len(outputs),
            "checker_energy_vs_targets": {f"period_{period}": ratio for period, ratio in ratios.items()},
            **{key: float(np.mean([score[key] for score in scores])) for key in ("l1", "psnr", "ssim")},
        }
        shown = "  ".join(f"period {period} {ratio:.2f}x" for period, ratio in ratios.items())
        print(f"{name:12s} {len(outputs)} pairs  checker energy against the targets': {shown}  "
              f"L1 {report[name]['l1']:.4f}  PSNR {report[name]['psnr']:.2f}  SSIM {report[name]['ssim']:.4f}")
    if arguments.figure:
        draw(results, arguments.figure, 3)
        print(f"figure: {arguments.figure}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
