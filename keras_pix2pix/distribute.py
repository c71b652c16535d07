"""TensorFlow's distribution strategies for training: several GPUs, several workers, a TPU.

`fit` builds its models, optimizers and checkpoint under the strategy's scope, distributes the
dataset with experimental_distribute_dataset and runs each step with strategy.run. Losses are
averaged over the global batch (tf.nn.compute_average_loss), so results do not depend on the
number of replicas. Each replica's BatchNorm normalizes its own share of the batch (with one image
per replica, the paper's batch-size-1 normalization); `--sync-batchnorm` normalizes over the global
batch instead, which gives the same result as one device with the whole batch.
"""

import functools
import json
import os

import tensorflow as tf

from keras_pix2pix.config import STRATEGIES, UsageError, check_choice
from keras_pix2pix.errors import first_line


def make_strategy(name="auto"):
    """The tf.distribute strategy for a --strategy value.

    Args:
        name: "auto" (mirrored when more than one GPU is visible, else default), "default" (one
            device), "mirrored" (every GPU, or every logical CPU device when there is no GPU),
            "multiworker" (MultiWorkerMirroredStrategy from TF_CONFIG) or "tpu".

    Example:
    >>> make_strategy("default").num_replicas_in_sync
    1
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "multiworker":
        # Before anything else touches TensorFlow: collectives are configured at its start.
        if "TF_CONFIG" not in os.environ:
            raise UsageError("strategy multiworker needs TF_CONFIG describing the cluster and this worker's task")
        _check_tf_config(os.environ["TF_CONFIG"])
        return _multiworker()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [device.name for device in gpus] or [device.name for device in tf.config.list_logical_devices("CPU")]
        return _mirrored(tuple(devices))
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        raise UsageError(f"strategy tpu: no TPU found ({first_line(error)})") from None
    return tf.distribute.TPUStrategy(resolver)


def _check_tf_config(text):
    """Refuses a TF_CONFIG that is not the JSON object TensorFlow's cluster resolver reads."""
    try:
        described = json.loads(text)
    except ValueError as error:
        raise UsageError(f"TF_CONFIG is not valid JSON ({error}): see the README's 'Precision and several devices'") from None
    if not isinstance(described, dict) or not isinstance(described.get("cluster"), dict) or not isinstance(
        described.get("task"), dict
    ):
        raise UsageError('TF_CONFIG must be a JSON object with "cluster" and "task" objects; got ' + text[:200])


# One strategy object per process: a second one restarts the collective instance keys, and its
# all-reduces then collide with the first one's ("Shape mismatch in the collective instance").
@functools.cache
def _mirrored(devices):
    return tf.distribute.MirroredStrategy(devices=list(devices))


@functools.cache
def _multiworker():
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """Whether this process writes what is written once: samples, logs, config.json, generator.keras."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type in (None, "chief") or (not has_chief and task_type == "worker" and task_id == 0)


def _cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The first CPU's feature flags from /proc/cpuinfo; None where there is none to read (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            return next((set(line.split(":", 1)[1].split()) for line in file if line.startswith("flags")), None)
    except OSError:
        return None


def precision_note(precision, strategy, cpuinfo="/proc/cpuinfo"):
    """A warning when mixed_bfloat16 runs on CPUs without bfloat16 arithmetic, else None.

    Without AVX-512 BF16 or AMX, oneDNN emulates bfloat16 and a step is many times slower than in
    float32 (measured on a 2-core AMD EPYC without AVX-512: about 20 s a step against 1.6 s).

    Args:
        precision: the run's --precision.
        strategy: the run's tf.distribute strategy (a GPU or a TPU computes bfloat16 natively).
        cpuinfo: where the CPU's flags are read (a seam for tests).

    Example:
    >>> precision_note("float32", tf.distribute.get_strategy()) is None
    True
    """
    if precision != "mixed_bfloat16" or isinstance(strategy, tf.distribute.TPUStrategy):
        return None
    if tf.config.list_logical_devices("GPU"):
        return None
    flags = _cpu_flags(cpuinfo)
    if flags is None or flags & {"avx512_bf16", "amx_bf16"}:
        return None
    return ("note: this CPU has neither AVX-512 BF16 nor AMX, so mixed_bfloat16 is emulated and many times slower "
            "than float32 here: train with --precision float32")
