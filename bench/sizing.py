"""A model trained on crops, translating whole images: --sizing resize against native and tiles, in one run.

    python bench/sizing.py --model runs/facades-crops --dataset ../shared/data/facades --split val \
        --output /tmp/sizing --figure docs/sizing_facades.png

The model is trained at a smaller size than its images (for example `fit --preprocess crop
--image-size 128` on facades' 256x256 pairs), as the paper's code trains on crops of large images.
Each sizing then translates the split's whole images and is scored against the targets at their
own size with `evaluate --sizing ...` (export mode, deterministic): `resize` shrinks each image to
the model's size and blows the output back up; `native` runs the whole image; `tiles` blends
overlapping tiles of the model's size. Prints the machine, a line per sizing (L1, PSNR, SSIM and
seconds per image), then a JSON line. --figure draws the outputs of a few images side by side,
with a 2x zoom of their centres: outputs only, so that no dataset image goes into the figure.
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tensorflow as tf  # noqa: E402
from figures import draw_with_centres  # noqa: E402
from machine import describe  # noqa: E402

from keras_pix2pix.evaluation import evaluate  # noqa: E402

SIZINGS = ("resize", "native", "tiles")


def draw(reports, names, path):
    """Each image's outputs, one per sizing, with their centres zoomed 2x."""
    rows = [{sizing: tf.io.decode_png(tf.io.read_file(os.path.join(reports[sizing], "images", name))).numpy()
             for sizing in SIZINGS} for name in names]
    draw_with_centres(rows, path, zoom=2)



def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a work directory trained at a size smaller than its images")
    parser.add_argument("--dataset", required=True, help="a folder of AB pairs")
    parser.add_argument("--split", default="val")
    parser.add_argument("--direction", help="default: the run's")
    parser.add_argument("--output", help="where the three evaluation reports go; default: a temporary folder")
    parser.add_argument("--figure", help="a PNG of the outputs side by side")
    parser.add_argument("--figure-images", type=int, default=3, help="images in the figure")
    arguments = parser.parse_args()
    print(describe())
    output = arguments.output or tempfile.mkdtemp(prefix="sizing-")
    reports, results = {}, {}
    for sizing in SIZINGS:
        reports[sizing] = os.path.join(output, sizing)
        start = time.perf_counter()
        summary = evaluate(
            arguments.model, reports[sizing], dataset=arguments.dataset, split=arguments.split,
            direction=arguments.direction, mode="export", sizing=sizing, verbose=False,
        )
        seconds = (time.perf_counter() - start) / summary["pairs"]
        results[sizing] = {key: summary[key] for key in ("pairs", "l1", "psnr", "ssim")} | {"seconds_per_image": seconds}
        print(f"{sizing:7s} {summary['pairs']} pairs  L1 {summary['l1']:.4f}  PSNR {summary['psnr']:.2f} dB  "
              f"SSIM {summary['ssim']:.4f}  {seconds:.3f} s/image  ({reports[sizing]})")
    if arguments.figure:
        rows = json.load(open(os.path.join(reports["native"], "metrics.json")))["images"]
        names = [os.path.basename(row["files"]["output"]) for row in rows[: arguments.figure_images]]
        draw(reports, names, arguments.figure)
        print(f"figure: {arguments.figure}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
