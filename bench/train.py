"""Training speed against the project's reference path, measured in turns in one run.

    python bench/train.py --image-size 256 --batch-size 1 --precision mixed_bfloat16 --steps 20
    python bench/train.py --image-size 64 --leak-check 1000

The reference path is the paper's settings in fp32 with a plain @tf.function step, as the TF
tutorial writes it: the paper's networks as keras_pix2pix.models builds them (Keras' own layers;
fast.clone_as(..., "reference") changes only the LeakyReLU after D's biased first convolution, so
that TensorFlow 2.21's remapper failure does not slow it), Keras' Adam, one forward pass of G and
D under two tapes and a simultaneous update. The candidate is keras_pix2pix's train step (one D
step, then one G step against the updated D) at the given precision, on the training form of the
same networks (fast.clone_as(..., "train"): fused BatchNorm, small-map convolutions as matrix
products) with fused Adam. Each path runs on the same weights and a fixed batch in a process
of its own; the two take turns in rounds, so that machine noise hits both alike. Prints the
machine, the measured conv2d peak in fp32 and bf16, each path's median s/step, images/s, GFLOP/s
(convolution FLOPs of the passes it runs) and % of peak, each path's peak RSS, and a JSON line.
--leak-check N runs the candidate N steps after --leak-warmup steps and reports RSS every 100
steps, its trend (least squares) and the number of traces.
"""

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import conv_peak, describe  # noqa: E402

import keras_pix2pix  # noqa: E402, F401
from keras_pix2pix import fast, losses, models, train  # noqa: E402
from keras_pix2pix.config import Config  # noqa: E402


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def forward_flops(model):
    """Multiply-add FLOPs of one forward pass of the model's convolutions (the rest is <2%)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            kernel_height, kernel_width, _, _ = layer.kernel.shape
            # A transposed convolution does its multiply-adds per input pixel, a convolution per output pixel.
            pixels_shape = layer.input.shape if isinstance(layer, keras.layers.Conv2DTranspose) else layer.output.shape
            inputs, outputs = layer.input.shape[-1], layer.output.shape[-1]
            total += 2 * pixels_shape[1] * pixels_shape[2] * kernel_height * kernel_width * inputs * outputs
    return total


def step_flops(generator, discriminator, batch, reference):
    """FLOPs of one step, counted per pass (a backward pass is two forward passes: inputs and weights).

    Both: G forward and backward (3 G). The reference: D forward on real and fake pairs, both
    backward for D's loss, and the fake's input gradient again for G's loss (7 D). The candidate: D
    forward and backward on both pairs (6 D), then forward again with the updated D and the input
    gradient for G (2 D): 8 D. The TF profiler's count of the traced graphs is not used: it counts
    gradient ops that grappler prunes.
    """
    generator_flops, discriminator_flops = forward_flops(generator), forward_flops(discriminator)
    return batch * (3 * generator_flops + (7 if reference else 8) * discriminator_flops)


def paper_step_flops(reference, image_size=256, batch=1):
    """FLOPs of one step on the paper's U-Net-256 and 70x70 PatchGAN (see step_flops)."""
    generator, discriminator = models.build_models(Config(image_size=image_size))
    return step_flops(generator, discriminator, batch, reference)


def reference_step(generator, discriminator, generator_optimizer, discriminator_optimizer):
    """The TF tutorial's step: one forward pass, two tapes, simultaneous updates."""

    @tf.function
    def step(inputs, targets):
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            generated = generator(inputs, training=True)
            real_logits = discriminator([inputs, targets], training=True)
            fake_logits = discriminator([inputs, generated], training=True)
            generator_total, _, _ = losses.generator_loss(fake_logits, generated, targets)
            discriminator_total, _, _ = losses.discriminator_loss(real_logits, fake_logits)
        generator_gradients = generator_tape.gradient(generator_total, generator.trainable_variables)
        discriminator_gradients = discriminator_tape.gradient(discriminator_total, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(generator_gradients, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(discriminator_gradients, discriminator.trainable_variables))
        return {"generator_total": generator_total}

    return step


def build(config, reference):
    """(step function, FLOPs per step) of the reference path or of keras_pix2pix's."""
    keras.utils.set_random_seed(0)
    generator, discriminator = models.build_models(config)
    flops = step_flops(generator, discriminator, config.batch_size, reference)
    # Both paths start from the same weights: the reference in Keras' own layers (with only the
    # workaround for TensorFlow's remapper failure), the candidate in the training form.
    generator, discriminator = (
        fast.clone_as(model, "reference" if reference else "train") for model in (generator, discriminator)
    )
    if reference:
        # The tutorial's optimizers: Keras' Adam.
        generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
        discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    else:
        generator_optimizer, discriminator_optimizer = train.make_optimizers(config, 10**6, 0)
    generator_optimizer.build(generator.trainable_variables)
    discriminator_optimizer.build(discriminator.trainable_variables)
    if reference:
        return reference_step(generator, discriminator, generator_optimizer, discriminator_optimizer), flops
    step = train.make_train_step(generator, discriminator, generator_optimizer, discriminator_optimizer, config)
    return step, flops


def timed(step, inputs, targets, count):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        float(step(inputs, targets)["generator_total"])
        times.append(time.perf_counter() - start)
    return times


def path_worker(config, reference, connection):
    """One path in its own process: builds and warms up, then times the step counts it is sent."""
    size, batch = config.image_size[0], config.batch_size
    inputs = tf.random.uniform((batch, size, size, 3), -1, 1, seed=1)
    targets = tf.random.uniform((batch, size, size, 3), -1, 1, seed=2)
    step, flops = build(config, reference)
    timed(step, inputs, targets, 3)  # tracing, oneDNN primitive caches
    connection.send(flops)
    while (count := connection.recv()) is not None:
        connection.send(timed(step, inputs, targets, count))
    connection.send(rss_mb())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per path")
    parser.add_argument("--rounds", type=int, default=4, help="alternations between the paths")
    parser.add_argument("--leak-check", type=int, default=0, metavar="N", help="run N candidate steps, report RSS growth")
    parser.add_argument("--leak-warmup", type=int, default=500, metavar="N", help="steps before the leak check's first sample")
    arguments = parser.parse_args()
    print(describe(), flush=True)

    size, batch = arguments.image_size, arguments.batch_size
    candidate_config = Config(image_size=size, batch_size=batch, precision=arguments.precision, xla=arguments.xla)
    inputs = tf.random.uniform((batch, size, size, 3), -1, 1, seed=1)
    targets = tf.random.uniform((batch, size, size, 3), -1, 1, seed=2)

    if arguments.leak_check:
        step, _ = build(candidate_config, reference=False)
        # RSS climbs for the first few hundred steps (allocator pools, oneDNN primitive caches), then
        # wanders by +-20 MB around a plateau: a leak shows as a steady slope after that.
        timed(step, inputs, targets, arguments.leak_warmup)
        samples = [current_rss_mb()]
        for _ in range(arguments.leak_check // 100):
            timed(step, inputs, targets, 100)
            samples.append(current_rss_mb())
        steps = [100 * index for index in range(len(samples))]
        mean_step, mean_rss = statistics.mean(steps), statistics.mean(samples)
        slope = sum((a - mean_step) * (b - mean_rss) for a, b in zip(steps, samples)) / sum((a - mean_step) ** 2 for a in steps)
        traces = step.experimental_get_tracing_count()
        print(
            f"after {arguments.leak_warmup} warm-up steps, {arguments.leak_check} steps: RSS {samples[0]:.0f} MB -> "
            f"{samples[-1]:.0f} MB (min {min(samples):.0f}, max {max(samples):.0f}); "
            f"trend {1000 * slope:+.1f} MB per 1000 steps; traces {traces}"
        )
        print(
            json.dumps(
                {
                    "benchmark": "train_leak_check",
                    "image_size": size,
                    "warmup_steps": arguments.leak_warmup,
                    "steps": arguments.leak_check,
                    "rss_start_mb": round(samples[0], 1),
                    "rss_end_mb": round(samples[-1], 1),
                    "rss_max_mb": round(max(samples), 1),
                    "trend_mb_per_1000_steps": round(1000 * slope, 1),
                    "traces": traces,
                }
            )
        )
        return

    peaks = {"float32": conv_peak("float32"), "bfloat16": conv_peak("bfloat16")}
    print(f"conv2d peak: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s", flush=True)
    # Each path runs in a process of its own, as a user's run would: sharing one process slowed the
    # second path by 5-7% (two sets of models, optimizer slots and oneDNN primitives). The
    # processes take turns, so that only one runs at a time and machine noise hits both alike.
    context = multiprocessing.get_context("spawn")
    paths = {"reference": Config(image_size=size, batch_size=batch), "candidate": candidate_config}
    connections, processes, flops = {}, [], {}
    for name, config in paths.items():
        connections[name], child = context.Pipe()
        processes.append(context.Process(target=path_worker, args=(config, name == "reference", child)))
        processes[-1].start()
        flops[name] = connections[name].recv()  # one at a time: building and tracing use every core
    times = {"reference": [], "candidate": []}
    per_round = max(1, arguments.steps // arguments.rounds)
    for _ in range(arguments.rounds):
        for name in ("reference", "candidate"):
            connections[name].send(per_round)
            times[name] += connections[name].recv()
    peak_rss = {}
    for name, process in zip(paths, processes):
        connections[name].send(None)
        peak_rss[name] = connections[name].recv()
        process.join()
    peak = peaks["bfloat16"] if arguments.precision == "mixed_bfloat16" else peaks["float32"]
    results = {}
    for name in ("reference", "candidate"):
        median = statistics.median(times[name])
        achieved = flops[name] / median / 1e9
        path_peak = peaks["float32"] if name == "reference" else peak
        results[name] = {"median_step_s": median, "img_per_s": batch / median, "gflops": flops[name] / 1e9,
                         "gflop_per_s": achieved, "percent_of_peak": 100 * achieved / path_peak}
        print(
            f"{name:>9}: {median:.3f} s/step, {batch / median:.2f} images/s, {flops[name] / 1e9:.1f} GFLOP/step, "
            f"{achieved:.0f} GFLOP/s ({100 * achieved / path_peak:.0f}% of the "
            f"{'bf16' if path_peak is peaks['bfloat16'] else 'fp32'} peak)"
        )
    ratio = results["candidate"]["img_per_s"] / results["reference"]["img_per_s"]
    print(
        f"candidate ({arguments.precision}{', XLA' if arguments.xla else ''}) / reference: {ratio:.2f}x images/s; "
        f"peak RSS: reference {peak_rss['reference']:.0f} MB, candidate {peak_rss['candidate']:.0f} MB"
    )
    print(
        json.dumps(
            {
                "benchmark": "train",
                "precision": arguments.precision,
                "xla": arguments.xla,
                "batch_size": batch,
                "image_size": size,
                "median_step_s": round(results["candidate"]["median_step_s"], 4),
                "img_per_s": round(results["candidate"]["img_per_s"], 3),
                "gflop_per_s": round(results["candidate"]["gflop_per_s"], 1),
                "percent_of_peak": round(results["candidate"]["percent_of_peak"], 1),
                "reference_median_step_s": round(results["reference"]["median_step_s"], 4),
                "peak_rss_mb": round(peak_rss["candidate"], 1),
                "reference_peak_rss_mb": round(peak_rss["reference"], 1),
                "ratio_vs_reference": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
