"""Quality per hour: keras_pix2pix and the TF tutorial's recipe, trained for the same wall-clock time, scored alike.

    python bench/quality.py --minutes 15 [--dataset ../shared/data/facades] [--precision mixed_bfloat16]

The paper's facades task, labels -> photo (BtoA), at 256x256, batch 1. Each side trains in a
process of its own, one after the other, for --minutes of wall-clock time counted from before its
networks are built (building, tracing, the input pipeline and, for the project, its checkpoints,
sample grids and logs all spend the budget):

- the project: `keras_pix2pix.fit` with its defaults (the paper's jitter, the alternating D and G
  steps) at --precision, for a --duration of the budget: the paper's schedule by the clock (the
  learning rate constant for the first half, then decaying linearly to 0 at the end), as a user
  with that budget runs it;
- the recipe: the TF tutorial's training, as bench/train.py's reference runs it (the same networks
  in Keras' own layers, Keras' Adam, one forward pass and simultaneous updates, fp32) fed by the
  tutorial's pipeline (nearest-neighbour resize to 286, random crop to 256, random flip).

Both generators are then scored by `keras_pix2pix.evaluate` on every pair of the validation
split, in paper mode (dropout and per-image statistics, as the paper tests and the tutorial's
generate_images does): L1, PSNR and SSIM against the photos, and FID and KID when
--inception-weights gives Keras' InceptionV3 weights (they cannot be downloaded here). Prints the
machine and its measured convolution peak, each side's steps, images/s and share of the peak, its
scores, and one JSON line with both sides and the ratios (project / recipe).
"""

import argparse
import glob
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import conv_peak, describe  # noqa: E402

DEFAULT_DATASET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "facades")


def tutorial_pairs(folder, size=256, jitter=286):
    """The tutorial's training input: (labels, photo) batches of 1, jittered, in [-1, 1], repeated."""
    import tensorflow as tf

    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        half = tf.shape(image)[1] // 2
        # Facades pairs hold the photo on the left and the labels on the right (BtoA).
        photo, labels = tf.cast(image[:, :half], tf.float32), tf.cast(image[:, half:], tf.float32)
        stacked = tf.image.resize(tf.stack([labels, photo]), [jitter, jitter], method="nearest")
        stacked = tf.image.random_crop(stacked, [2, size, size, 3])
        stacked = tf.cond(tf.random.uniform(()) > 0.5, lambda: tf.image.flip_left_right(stacked), lambda: stacked)
        stacked = stacked / 127.5 - 1
        return stacked[0], stacked[1]

    files = tf.data.Dataset.list_files(os.path.join(folder, "train", "*.jpg"), shuffle=True, seed=0)
    return files.map(load, num_parallel_calls=tf.data.AUTOTUNE).shuffle(400).batch(1).repeat().prefetch(2)


def train_project(dataset, minutes, precision, seed, folder):
    """keras_pix2pix.fit for a duration of the budget; returns (its work directory, steps taken, seconds)."""
    import tensorflow as tf

    import keras_pix2pix
    from keras_pix2pix.config import Config

    started = time.monotonic()
    workdir = os.path.join(folder, "project")
    config = Config(dataset=dataset, direction="BtoA", image_size=256, precision=precision, seed=seed,
                    duration=minutes * 60)
    keras_pix2pix.fit(config, workdir, verbose=False, started=started)
    seconds = time.monotonic() - started
    steps = int(
        tf.train.load_variable(
            tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")), "step/.ATTRIBUTES/VARIABLE_VALUE"
        )
    )
    return workdir, steps, seconds


def train_recipe(dataset, minutes, seed, folder):
    """The tutorial's training for the budget; returns (its generator's .keras file, steps taken, seconds)."""
    import keras
    from train import reference_step

    from keras_pix2pix import fast, models
    from keras_pix2pix.config import Config

    started = time.monotonic()
    keras.utils.set_random_seed(seed)
    generator, discriminator = models.build_models(Config(image_size=256))
    generator, discriminator = (fast.clone_as(model, "reference") for model in (generator, discriminator))
    generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    step = reference_step(generator, discriminator, generator_optimizer, discriminator_optimizer)
    steps = 0
    for inputs, targets in tutorial_pairs(dataset):
        if time.monotonic() - started >= minutes * 60:
            break
        step(inputs, targets)["generator_total"].numpy()
        steps += 1
    seconds = time.monotonic() - started
    path = os.path.join(folder, "recipe.keras")
    fast.clone_as(generator, "keras").save(path)
    return path, steps, seconds


def side_worker(side, arguments):
    """One side in its own process: trains it for the budget, scores it with keras_pix2pix.evaluate, returns the result."""
    import keras_pix2pix

    with tempfile.TemporaryDirectory() as folder:
        if side == "project":
            model, steps, seconds = train_project(
                arguments.dataset, arguments.minutes, arguments.precision, arguments.seed, folder
            )
        else:
            model, steps, seconds = train_recipe(arguments.dataset, arguments.minutes, arguments.seed, folder)
        # Both sides scored by the package's own evaluate: the val split, paper mode, seed 0.
        summary = keras_pix2pix.evaluate(model, os.path.join(folder, "report"), dataset=arguments.dataset, split="val",
                                         direction="BtoA", fid=bool(arguments.inception_weights),
                                         inception_weights=arguments.inception_weights, verbose=False)
    scores = {name: summary[name] for name in ("l1", "psnr", "ssim")}
    if "fid_keras_inceptionv3" in summary:
        scores.update(fid=summary["fid_keras_inceptionv3"], kid=summary["kid_keras_inceptionv3"])
    return {"steps": steps, "seconds": seconds, **scores}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="a facades folder in AB format (train/, val/)")
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget of each side")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"), help="the project's")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inception-weights", default=None, help="Keras' InceptionV3 notop .h5, for FID and KID")
    arguments = parser.parse_args()
    if not glob.glob(os.path.join(arguments.dataset, "train", "*.jpg")):
        parser.error(f"--dataset: no train/*.jpg in {arguments.dataset}")
    print(describe(), flush=True)
    peaks = {"float32": conv_peak("float32"), "bfloat16": conv_peak("bfloat16")}
    print(f"conv2d peak: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s", flush=True)

    from train import paper_step_flops

    step_gflop = {"recipe": paper_step_flops(reference=True) / 1e9, "project": paper_step_flops(reference=False) / 1e9}
    results = {}
    for side in ("recipe", "project"):
        # A fresh process per side, one at a time: each has both cores, and a side that dies
        # raises here (BrokenProcessPool) instead of leaving the other waiting.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results[side] = result = pool.submit(side_worker, side, arguments).result()
        precision = "float32" if side == "recipe" else arguments.precision
        peak = peaks["bfloat16" if precision == "mixed_bfloat16" else "float32"]
        rate = result["steps"] / result["seconds"]
        result.update(precision=precision, images_per_s=rate, step_gflop=step_gflop[side],
                      percent_of_peak=100 * rate * step_gflop[side] / peak)
        print(
            f"{side:>8} ({precision}): {result['steps']} steps in {result['seconds']:.0f} s ({rate:.2f} images/s, "
            f"{result['percent_of_peak']:.0f}% of the {'bf16' if precision == 'mixed_bfloat16' else 'fp32'} peak); "
            f"val L1 {result['l1']:.4f}, PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}"
            + (f", FID {result['fid']:.1f}, KID {result['kid']:.4f}" if "fid" in result else ""),
            flush=True,
        )
    ratios = {name: results["project"][name] / results["recipe"][name] for name in ("l1", "psnr", "ssim", "steps")}
    print(f"project / recipe: SSIM {ratios['ssim']:.3f}x, L1 {ratios['l1']:.3f}x, steps {ratios['steps']:.2f}x")
    rounded = {side: {key: round(value, 4) if isinstance(value, float) else value for key, value in result.items()}
               for side, result in results.items()}
    print(
        json.dumps(
            {
                "benchmark": "quality",
                "dataset": os.path.basename(os.path.normpath(arguments.dataset)),
                "direction": "BtoA",
                "minutes": arguments.minutes,
                "peak_gflop_per_s": {k: round(v) for k, v in peaks.items()},
                **rounded,
                "ratio": {k: round(v, 3) for k, v in ratios.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
