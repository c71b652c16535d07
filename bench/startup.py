"""How fast the command answers before any work: `--help` and `--version`, against a bare Python.

    python bench/startup.py --rounds 5

Each command runs in a fresh process, `--rounds` times; prints the machine, the best and median
wall time of each, and its ratio to `python -c pass` measured in the same run, then a JSON line.
The target (issue 18): under 0.5 s for `keras-pix2pix --help` and `--version`.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from machine import describe  # noqa: E402


def timed(command, rounds):
    """Wall times of `rounds` fresh runs of a command, in seconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    print(describe())
    # The installed console script when there is one (what a user types), else python -m.
    script = shutil.which("keras-pix2pix")
    command = [script] if script else [sys.executable, "-m", "keras_pix2pix"]
    runs = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "keras-pix2pix --help": [*command, "--help"],
        "keras-pix2pix --version": [*command, "--version"],
        "keras-pix2pix fit --help": [*command, "fit", "--help"],
    }
    results = {name: timed(run, arguments.rounds) for name, run in runs.items()}
    baseline = min(results["python -c pass (baseline)"])
    for name, times in results.items():
        print(f"{name:28s} best {min(times):.3f} s  median {statistics.median(times):.3f} s  "
              f"{min(times) / baseline:.1f}x the baseline")
    print(json.dumps({name: {"best_s": min(times), "median_s": statistics.median(times)} for name, times in results.items()}))


if __name__ == "__main__":
    main()
