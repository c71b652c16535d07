"""Input pipeline throughput on real data, against the training step rate it must feed.

    python bench/data.py [--dataset ../shared/data/facades] [--direction BtoA] [--images 800]

Prints the machine, the pipeline's images/s (decode, split, resize to 286, random crop to 256, flip,
batching, with prefetching), the training step rate of the paper's models at 256x256 batch 1 in the
same run, their ratio, and a JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import describe  # noqa: E402

import keras_pix2pix  # noqa: E402, F401
from keras_pix2pix import data, datasets, fast, models, train  # noqa: E402
from keras_pix2pix.config import Config  # noqa: E402

DEFAULT_DATASET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "facades")


def pipeline_rate(pairs, config, images):
    batches = data.train_dataset(pairs, config, config.direction, seed=0)
    iterator = iter(batches)
    for _ in range(20):  # warm-up: tracing and filling the prefetch buffer
        next(iterator)
    start = time.perf_counter()
    for _ in range(images // config.batch_size):
        next(iterator)
    return images / (time.perf_counter() - start)


def training_rate(config, steps):
    keras.utils.set_random_seed(0)
    generator, discriminator = (fast.clone_as(model, "train") for model in models.build_models(config))
    generator_optimizer, discriminator_optimizer = train.make_optimizers(config, 1000, 0)
    step = train.make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
    inputs = tf.random.uniform((config.batch_size, *config.image_size, 3), -1, 1)
    targets = tf.random.uniform((config.batch_size, *config.image_size, 3), -1, 1)
    for _ in range(2):
        float(step(inputs, targets)["generator_total"])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step(inputs, targets)["generator_total"])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--direction", default="BtoA")
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--train-steps", type=int, default=6)
    arguments = parser.parse_args()
    print(describe(), flush=True)
    config = Config(dataset=arguments.dataset, direction=arguments.direction, image_size=256, batch_size=1)
    splits = datasets.find_dataset(config.dataset)
    images_per_second = pipeline_rate(splits.train, config, arguments.images)
    print(f"input pipeline: {images_per_second:.1f} images/s ({len(splits.train)} pairs of {splits.name})", flush=True)
    step_seconds = training_rate(config, arguments.train_steps)
    training_images_per_second = config.batch_size / step_seconds
    print(f"training step at 256x256, batch 1: {step_seconds:.3f} s ({training_images_per_second:.2f} images/s)")
    ratio = images_per_second / training_images_per_second
    print(f"pipeline / training: {ratio:.1f}x (target: >= 10x)")
    print(
        json.dumps(
            {
                "benchmark": "data",
                "dataset": splits.name,
                "pipeline_img_per_s": round(images_per_second, 1),
                "train_step_s": round(step_seconds, 3),
                "ratio_vs_training": round(ratio, 1),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
