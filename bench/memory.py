"""Peak memory of refusing a huge image, against translating an ordinary one, in one run.

    python bench/memory.py --model runs/demo

A 20000x20000 all-zero PNG is a 5 MB file that decodes to 1.2 GB (4.8 GB as float32). Each
command runs in a fresh process; its peak RSS is read with getrusage. Prints the machine, the peak
of `predict` on a 256x256 image (the baseline: importing TensorFlow and loading the model), then the
peaks of `fit` and `predict` refusing the 20000x20000 PNG and of the SavedModel's serving_default
refusing a 10000x10000 one, each with its ratio to the baseline; then a JSON line.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from conftest import huge_png, png  # noqa: E402  (the tests' writers of valid PNGs)
from machine import describe  # noqa: E402

MEASURED = textwrap.dedent("""
    import resource, subprocess, sys
    result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    print(result.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
""")

SERVE = textwrap.dedent("""
    import sys
    import keras, tensorflow as tf
    from keras_pix2pix import exports
    exports.write_saved_model(keras.models.load_model(sys.argv[1]), sys.argv[2])
    serve = tf.saved_model.load(sys.argv[2]).signatures["serving_default"]
    try:
        serve(image_bytes=tf.constant([open(sys.argv[3], "rb").read()]))
    except tf.errors.InvalidArgumentError:
        sys.exit(2)
""")


def peak(*command):
    """(exit status, peak RSS in MB) of a command in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURED, *map(str, command)], capture_output=True, text=True)
    status, megabytes = out.stdout.split()
    return int(status), int(megabytes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a work directory")
    arguments = parser.parse_args()
    print(describe())
    cli = [sys.executable, "-m", "keras_pix2pix"]
    with tempfile.TemporaryDirectory() as folder:
        ordinary = png(os.path.join(folder, "ordinary.png"), 256, 256)
        huge = huge_png(os.path.join(folder, "huge.png"), 20000, 20000)
        large = huge_png(os.path.join(folder, "large.png"), 10000, 10000)
        os.makedirs(os.path.join(folder, "pairs"))
        os.symlink(huge, os.path.join(folder, "pairs", "huge.png"))
        runs = {
            "predict 256x256 (baseline)": peak(*cli, "predict", "--model", arguments.model, ordinary, "--output",
                                               os.path.join(folder, "out")),
            "fit, a 20000x20000 PNG": peak(*cli, "fit", "--dataset", os.path.join(folder, "pairs"), "--workdir",
                                           os.path.join(folder, "run")),
            "predict, a 20000x20000 PNG": peak(*cli, "predict", "--model", arguments.model, huge, "--output",
                                               os.path.join(folder, "out2")),
            "serving_default, a 10000x10000 PNG": peak(
                sys.executable, "-c", SERVE, os.path.join(arguments.model, "generator.keras"),
                os.path.join(folder, "saved_model"), large),
        }
    baseline = runs["predict 256x256 (baseline)"][1]
    for name, (status, megabytes) in runs.items():
        print(f"{name:38s} exit {status}  peak {megabytes:6d} MB  {megabytes / baseline:.2f}x the baseline")
    print(json.dumps({name: {"exit": status, "peak_mb": megabytes} for name, (status, megabytes) in runs.items()}))


if __name__ == "__main__":
    main()
