"""Start-up of fit on a large local folder: the first run, which decodes every file, against a second.

    python bench/checking.py [--dataset ../shared/data/cityscapes] [--rounds 2]

Each round uses a fresh data directory (so nothing is remembered yet) and runs, one after the
other, two `keras-pix2pix fit --steps 1` commands on the same unchanged folder, each in a new work
directory. For each it measures, from the command's launch, the time until training starts (the
summary line, "NAME: N training pairs, ...", that fit prints just before its first step) and the
check's own time (its "checked ... in" line, absent when nothing had to be checked). Then it times the check alone
(keras_pix2pix.checking.check_pairs of the training split, first and second, in this process).
Prints each round and one JSON line with the medians and the ratios (first / second).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATASET = os.path.join(ROOT, "..", "shared", "data", "cityscapes")
TINY = ["--image-size", "32", "--generator-filters", "4", "--discriminator-filters", "4", "--discriminator-layers", "1"]


def start_up(dataset, data_dir, workdir):
    """(seconds from launch to fit's summary line, the lines fit printed up to it)."""
    environment = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "keras_pix2pix", "fit", "--dataset", dataset, "--direction", "AtoB",
               "--data-dir", data_dir, "--workdir", workdir, "--steps", "1", *TINY]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    lines = []
    for line in child.stdout:
        lines.append(line.rstrip())
        if "training pairs," in line:  # the summary line, printed just before the first step
            seconds = time.monotonic() - started
            break
    else:
        sys.exit("fit ended before training:\n" + "\n".join(lines))
    child.stdout.read()
    child.wait()
    return seconds, lines


def check_alone(dataset):
    """(seconds of the first check_pairs of the training split, of the second) in this process."""
    sys.path.insert(0, ROOT)
    from keras_pix2pix.checking import check_pairs
    from keras_pix2pix.datasets import local_splits

    pairs = local_splits(dataset).train
    times = []
    with tempfile.TemporaryDirectory() as data_dir:
        for _ in range(2):
            started = time.monotonic()
            check_pairs(pairs, log=lambda line: None, data_dir=data_dir)
            times.append(time.monotonic() - started)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    firsts, seconds = [], []
    for round_ in range(arguments.rounds):
        with tempfile.TemporaryDirectory() as scratch:
            data_dir = os.path.join(scratch, "data")
            first, first_lines = start_up(arguments.dataset, data_dir, os.path.join(scratch, "run1"))
            second, second_lines = start_up(arguments.dataset, data_dir, os.path.join(scratch, "run2"))
        firsts.append(first)
        seconds.append(second)
        checked = [line for line in first_lines if line.startswith("checked")]
        again = [line for line in second_lines if line.startswith("check")]
        print(f"round {round_ + 1}: first start-up {first:.1f} s ({'; '.join(checked)}), second {second:.1f} s "
              f"({'; '.join(again) or 'no file checked'})", flush=True)
    first, second = statistics.median(firsts), statistics.median(seconds)
    check_first, check_second = check_alone(arguments.dataset)
    print(f"the check alone, in one process: first {check_first:.2f} s, second {check_second * 1000:.0f} ms", flush=True)
    print(json.dumps({"dataset": os.path.abspath(arguments.dataset), "first_start_seconds": round(first, 2),
                      "second_start_seconds": round(second, 2), "ratio": round(first / second, 2),
                      "check_first_seconds": round(check_first, 3), "check_second_seconds": round(check_second, 4),
                      "check_ratio": round(check_first / check_second, 1)}))


if __name__ == "__main__":
    main()
