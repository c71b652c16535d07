"""The candidate train step alone, for comparing two checkouts of the package in alternating runs.

    python bench/step.py /path/to/checkout mixed_bfloat16

Builds the checkout's U-Net-256 and 70x70 PatchGAN, takes 4 warm-up steps on a fixed batch and
prints the median of 25 timed steps. Run it for two checkouts in turn, several times: on these
shared CPUs the speed drifts between runs, so only alternating runs compare.
"""

import os
import statistics
import sys
import time

checkout, precision = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.abspath(checkout))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_pix2pix  # noqa: E402
from keras_pix2pix import models, train  # noqa: E402
from keras_pix2pix.config import Config  # noqa: E402

assert keras_pix2pix.__file__.startswith(os.path.abspath(checkout)), keras_pix2pix.__file__
config = Config(image_size=256, precision=precision)
keras.utils.set_random_seed(0)
generator, discriminator = models.build_models(config)
try:  # Since the networks are stock Keras layers, training takes their fast form; before, they were built in it.
    from keras_pix2pix import fast  # noqa: E402

    generator, discriminator = fast.clone_as(generator, "train"), fast.clone_as(discriminator, "train")
except ImportError:
    pass
generator_optimizer, discriminator_optimizer = train.make_optimizers(config, 10**6, 0)
generator_optimizer.build(generator.trainable_variables)
discriminator_optimizer.build(discriminator.trainable_variables)
step = train.make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
inputs = tf.random.uniform((1, 256, 256, 3), -1, 1, seed=1)
targets = tf.random.uniform((1, 256, 256, 3), -1, 1, seed=2)
for _ in range(4):
    float(step(inputs, targets)["generator_total"])
times = []
for _ in range(25):
    start = time.perf_counter()
    float(step(inputs, targets)["generator_total"])
    times.append(time.perf_counter() - start)
print(f"{os.path.basename(os.path.normpath(checkout))} {precision} {statistics.median(times):.4f} s/step")
