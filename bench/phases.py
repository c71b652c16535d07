"""Where a training step's time goes: the TensorFlow profiler's op times, summed per phase.

    python bench/phases.py --precision mixed_bfloat16 [--image-size 256] [--batch-size 1] [--steps 10] [--reference]

Builds the step as bench/train.py does (the candidate, or with --reference the TF tutorial's
recipe), warms it up, profiles --steps steps with tf.profiler.experimental and reads the trace
(XSpace) back. Each op's time is the time its executor thread spent in it (oneDNN's own worker
threads included in that span), summed over the executor threads and divided by the steps:
thread-ms per step, so the phases add up to about the number of cores times the step's time.

Phases, from the op's name scope and type: casts (Cast ops, wherever they are), optimizers (the
Adam updates), G forward, G backward, D forward on real pairs, D forward on fake pairs for D's
step, D backward in D's step, D forward for G's step (the updated D on the same fakes), D
backward in G's step (the gradient to the fakes), losses and the rest. The input pipeline is not
in this step (a fixed batch): bench/data.py measures it, on threads of its own. Prints the
machine, the measured conv peak, the step time, the table, the ten costliest ops and a JSON line.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from machine import conv_peak, describe  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402
from train import build  # noqa: E402

from keras_pix2pix.config import Config  # noqa: E402

PHASES = (
    "G forward", "G backward", "D forward, real (D step)", "D forward, fake (D step)", "D backward (D step)",
    "D forward (G step)", "D backward to the fakes (G step)", "optimizers (Adam)", "casts", "losses and the rest",
)


def op_times(logdir):
    """{op name: total ps} over the executor threads of the host plane of the newest trace in logdir."""
    path = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    totals = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:  # "scope/op:Type": an op; "Class::method": executor bookkeeping
                    totals[name] += event.duration_ps
    return totals


def phase_of(name, discriminator_calls, reference):
    """The phase of an op named "scope/op:Type"; discriminator_calls lists D's scopes in call order."""
    scope, kind = name.rsplit(":", 1)
    if kind == "Cast" or kind.endswith("Cast"):
        return "casts"
    if re.search(r"adam", scope, re.IGNORECASE) or "ApplyAdam" in kind:
        return "optimizers (Adam)"
    backward = scope.startswith("gradient_tape/")
    first = scope.split("/")[1 if backward else 0]
    if first.startswith("generator"):
        return "G backward" if backward else "G forward"
    if first in discriminator_calls:
        call = discriminator_calls.index(first)
        if reference:  # one forward on real and on fake pairs, both used by both losses
            return ("D backward (D step)" if call == 0 else "D backward to the fakes (G step)") if backward else (
                "D forward, real (D step)" if call == 0 else "D forward, fake (D step)")
        if backward:
            return "D backward (D step)" if call < 2 else "D backward to the fakes (G step)"
        return ("D forward, real (D step)", "D forward, fake (D step)", "D forward (G step)")[min(call, 2)]
    return "losses and the rest"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--steps", type=int, default=10, help="profiled steps")
    parser.add_argument("--reference", action="store_true", help="profile the TF tutorial's recipe instead")
    arguments = parser.parse_args()
    print(describe(), flush=True)
    precision = "float32" if arguments.reference else arguments.precision
    peak = conv_peak("bfloat16" if precision == "mixed_bfloat16" else "float32")
    print(f"conv2d peak ({precision}): {peak:.0f} GFLOP/s", flush=True)

    size, batch = arguments.image_size, arguments.batch_size
    config = Config(image_size=size, batch_size=batch, precision=precision)
    step, flops = build(config, arguments.reference)
    inputs = tf.random.uniform((batch, size, size, 3), -1, 1, seed=1)
    targets = tf.random.uniform((batch, size, size, 3), -1, 1, seed=2)
    for _ in range(5):  # tracing, oneDNN primitive caches
        float(step(inputs, targets)["generator_total"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(arguments.steps):
            float(step(inputs, targets)["generator_total"])
        seconds = (time.perf_counter() - start) / arguments.steps
        tf.profiler.experimental.stop()
        totals = op_times(logdir)

    scopes = {name.split(":")[0].removeprefix("gradient_tape/").split("/")[0] for name in totals}
    # D's calls are scoped discriminator, discriminator_1, ... in the order the step makes them.
    discriminator_calls = sorted((scope for scope in scopes if re.fullmatch(r"discriminator(_\d+)?", scope)),
                                 key=lambda scope: int(scope.rpartition("_")[2]) if scope[-1].isdigit() else 0)
    phases = collections.Counter()
    for name, picoseconds in totals.items():
        phases[phase_of(name, discriminator_calls, arguments.reference)] += picoseconds / 1e9 / arguments.steps
    total = sum(phases.values())
    label = "reference (tutorial recipe, float32)" if arguments.reference else f"candidate ({precision})"
    print(f"{label}, batch {batch}, {size}x{size}: {seconds:.3f} s/step under the profiler, "
          f"{flops / seconds / 1e9:.0f} GFLOP/s ({100 * flops / seconds / 1e9 / peak:.0f}% of the peak)")
    print(f"{'phase':<36}{'thread-ms/step':>15}{'share':>8}")
    for phase in PHASES:
        print(f"{phase:<36}{phases[phase]:>15.1f}{100 * phases[phase] / total:>7.0f}%")
    print(f"{'all ops':<36}{total:>15.1f}")
    print("costliest ops (thread-ms/step):")
    for name, picoseconds in totals.most_common(10):
        print(f"  {picoseconds / 1e9 / arguments.steps:8.1f}  {name}")
    print(json.dumps({"benchmark": "phases", "path": "reference" if arguments.reference else "candidate", "precision": precision,
                      "batch_size": batch, "image_size": size, "step_s": round(seconds, 4), "peak_gflop_per_s": round(peak),
                      "percent_of_peak": round(100 * flops / seconds / 1e9 / peak, 1),
                      "thread_ms_per_step": {phase: round(phases[phase], 1) for phase in PHASES}}))


if __name__ == "__main__":
    main()
