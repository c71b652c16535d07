"""What every benchmark prints first: the CPU, its relevant flags, the cores, TensorFlow's version;
and the convolution peak that each benchmark's share-of-peak figures are measured against."""

import os
import platform
import statistics
import time


def describe():
    """A one-line description of this machine for benchmark output."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name") and model in ("", "unknown CPU", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
    import tensorflow as tf

    return (
        f"machine: {model}; flags: {' '.join(flag for flag in wanted if flag in flags) or 'none of interest'}; "
        f"cores: {os.cpu_count()}; TensorFlow {tf.__version__}; Python {platform.python_version()}"
    )


def conv_peak(dtype, repeats=5):
    """GFLOP/s of a large 3x3 conv2d in dtype ("float32" or "bfloat16"): what this CPU reaches at best.

    The CPU under these benchmarks changes between sessions: a share of this peak, measured in the
    same run, compares across machines where seconds do not.
    """
    import tensorflow as tf

    images = tf.cast(tf.random.uniform((1, 128, 128, 256)), dtype)
    kernel = tf.cast(tf.random.uniform((3, 3, 256, 256)), dtype)
    convolve = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    convolve(images, kernel).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        convolve(images, kernel).numpy()
        times.append(time.perf_counter() - start)
    return 2 * 128 * 128 * 9 * 256 * 256 / statistics.median(times) / 1e9
