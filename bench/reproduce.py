"""Reproduce the paper's cityscapes photo -> labels figures (its Table 6) and put ours beside them.

    python bench/reproduce.py cityscapes --minutes M --val DIR --workdir DIR
    python bench/reproduce.py cityscapes --epochs 200 --val DIR --workdir DIR      # the paper's schedule

Trains photo -> labels (AtoB) on the cityscapes training split of the pix2pix release with the
paper's settings (the U-Net and 70x70 PatchGAN, L1 + cGAN with lambda 100, Adam 2e-4 / 0.5, batch
1, the 286 -> 256 jitter and flips) through `keras-pix2pix fit`: for --minutes, `fit --duration`
(the learning rate holds for the first half and decays linearly to 0 by the clock, so the run ends
annealed whatever the machine's speed), or for --epochs, the paper's own schedule of steps.

With --marks (minutes, in a --minutes run) the run is stopped at each mark by `fit --time-limit`,
its generator is saved as WORKDIR/snapshots/Nm.keras and scored, and the same command resumes:
the trajectory of one run (a resumed piece's start-up spends the run's clock too). Every snapshot
and the final generator is scored by `keras-pix2pix evaluate --palette cityscapes` on --val (a
folder of AB pairs) in the paper's test mode, with the paper's protocol (keras_pix2pix.metrics:
label_scores, as the authors' eval_cityscapes get_scores over the whole split's confusion).

Each scored row is kept in WORKDIR/rows/: the same command again (or after a kill) trains and
scores only what is missing. Writes WORKDIR/results.md (the paper's rows and ours), WORKDIR/sample.png (photo | ours | target
rows) and WORKDIR/results.json, and prints one JSON line last: pixel_accuracy, class_accuracy,
mean_iou, steps, train_seconds.

--hold-out N trains on all but the last N pairs of --train by number (1.jpg ... 2975.jpg), through a
folder of links in WORKDIR/data, so that those N can serve as --val (WORKDIR/data/held_out, the
default --val then).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_TRAIN = os.path.join(ROOT, "..", "shared", "data", "cityscapes", "train")
# The paper's Table 6 (Isola et al. 2017): photo -> labels on cityscapes, 256x256, 200 epochs.
PAPER_ROWS = [("L1", 0.86, 0.42, 0.35), ("cGAN", 0.74, 0.28, 0.22), ("L1 + cGAN", 0.83, 0.36, 0.29)]
METRICS = ("pixel_accuracy", "class_accuracy", "mean_iou")


def refuse(message):
    """One line on stderr and exit status 2: the user's input is wrong."""
    print(f"reproduce: {message}", file=sys.stderr)
    sys.exit(2)


def number_of(path):
    """The number in a release file's name (2975.jpg -> 2975), for ordering by number."""
    digits = re.findall(r"\d+", os.path.basename(path))
    return (int(digits[0]) if digits else -1, os.path.basename(path))


def split_train(train, hold_out, workdir):
    """(training folder, held-out folder or None): links to the pairs of train, the last hold_out held out."""
    names = sorted((name for name in os.listdir(train) if name.lower().endswith((".jpg", ".jpeg", ".png"))),
                   key=number_of)
    if hold_out <= 0:
        return os.path.dirname(os.path.abspath(train)), None
    if hold_out >= len(names):
        refuse(f"--hold-out {hold_out} leaves nothing to train on ({len(names)} pairs in {train})")
    root = os.path.join(workdir, "data")
    for part, chosen in (("train", names[:-hold_out]), ("held_out", names[-hold_out:])):
        folder = os.path.join(root, part)
        os.makedirs(folder, exist_ok=True)
        for name in set(os.listdir(folder)) - set(chosen):  # another --hold-out before: its links go
            if os.path.islink(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
        for name in chosen:
            link = os.path.join(folder, name)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(train, name)), link)
    return root, os.path.join(root, "held_out")


def command(*arguments):
    """Runs `python -m keras_pix2pix ARGUMENTS` here, its output passed through; returns its exit status."""
    line = [sys.executable, "-m", "keras_pix2pix", *map(str, arguments)]
    print("$ keras-pix2pix " + " ".join(map(str, arguments)), flush=True)
    return subprocess.run(line, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT)).returncode


def progress_of(run):
    """(steps, trained seconds) held by the run's latest checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(run, "checkpoints"))
    names = reader.get_variable_to_shape_map()

    def value(name):
        key = next(key for key in names if key.split("/")[0] == name)
        return reader.get_tensor(key)

    return int(value("step")), float(value("trained_seconds"))


def snapshot(run, path):
    """Saves the run's current generator (its latest checkpoint's) as a .keras file."""
    code = ("import sys; from keras_pix2pix import load_generator; "
            "load_generator(sys.argv[1])[0].save(sys.argv[2])")
    environment = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, "-c", code, run, path], check=True, cwd=ROOT, env=environment)


def score(model, val, output, seed):
    """The paper's three figures (whole split) and the per-image means of one generator on val."""
    if command("evaluate", "--model", model, "--dataset", val, "--split", "val", "--direction", "AtoB",
               "--palette", "cityscapes", "--seed", seed, "--output", output) != 0:
        sys.exit(f"reproduce: evaluate of {model} failed")
    with open(os.path.join(output, "metrics.json")) as file:
        summary = json.load(file)["summary"]
    return {key: summary[key] for key in (*METRICS, *(f"image_mean_{name}" for name in METRICS))}


def sample_picture(report, path, rows=4):
    """photo | ours | target rows from an evaluate report's images, spread over the split."""
    import numpy as np
    from PIL import Image

    outputs = sorted(name for name in os.listdir(os.path.join(report, "images")) if name.endswith("_output.png"))
    chosen = [outputs[int(i * len(outputs) / rows)] for i in range(min(rows, len(outputs)))]
    strips = []
    for name in chosen:
        images = [np.asarray(Image.open(os.path.join(report, "images", name.replace("_output", f"_{role}"))))
                  for role in ("input", "output", "target")]
        gap = np.full((images[0].shape[0], 4, 3), 255, np.uint8)
        strips.append(np.concatenate([images[0], gap, images[1], gap, images[2]], axis=1))
        strips.append(np.full((4, strips[-1].shape[1], 3), 255, np.uint8))
    Image.fromarray(np.concatenate(strips[:-1], axis=0)).save(path)


def results_table(rows, machine):
    """The paper's rows and ours as a markdown table."""
    lines = ["| method | training | wall-clock | machine | per-pixel acc. | per-class acc. | class IoU |",
             "|---|---|---|---|---|---|---|"]
    for name, *figures in PAPER_ROWS:
        lines.append(f"| paper, {name} | 200 epochs (~600k steps, batch 1) | | GPU (paper) | "
                     + " | ".join(f"{value:.2f}" for value in figures) + " |")
    for row in rows:
        lines.append(f"| keras-pix2pix, {row['objective']} | {row['steps']} steps ({row['epochs']:.2f} epochs) | "
                     f"{row['train_seconds'] / 60:.1f} min | {machine} | "
                     + " | ".join(f"{row[key]:.3f}" for key in METRICS) + " |")
    return "\n".join(lines) + "\n"


def machine_name():
    try:
        with open("/proc/cpuinfo") as file:
            model = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=["cityscapes"])
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--minutes", type=float, help="train for this wall-clock time (fit --duration)")
    length.add_argument("--epochs", type=float, help="train for this many epochs (the paper: 200)")
    parser.add_argument("--val", help="folder of AB pairs to score on (default with --hold-out: the held-out pairs)")
    parser.add_argument("--workdir", required=True, help="where the run, the reports and the results go")
    parser.add_argument("--train", default=DEFAULT_TRAIN, help="the training pairs (default: ../shared/data's)")
    parser.add_argument("--hold-out", type=int, default=0, help="train without the last N pairs of --train")
    parser.add_argument("--marks", default="", help="minutes at which to score the run on the way, e.g. 15,30")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="float32", help="fit --precision (mixed_bfloat16 on CPUs with it)")
    parser.add_argument("--fit", action="append", default=[], metavar="FLAG",
                        help="another fit flag, e.g. --fit=--batch-size=4 (repeatable): the quality-per-hour rows")
    arguments = parser.parse_args(argv)
    if arguments.marks and arguments.minutes is None:
        parser.error("--marks needs --minutes")
    return arguments


def main(argv=None):
    arguments = parse(argv)
    workdir = os.path.abspath(arguments.workdir)
    os.makedirs(workdir, exist_ok=True)
    dataset, held_out = split_train(arguments.train, arguments.hold_out, workdir)
    val = arguments.val or held_out
    if val is None:
        refuse("give --val (a folder of AB pairs), or --hold-out N to score on the last N of --train")
    if not os.path.isdir(val):  # found now, not after an hour of training
        refuse(f"--val {val} is not a folder (give a folder of AB pairs)")
    pairs = len([name for name in os.listdir(os.path.join(dataset, "train")) if not name.startswith(".")])
    run = os.path.join(workdir, "run")
    fit = ["fit", "--dataset", dataset, "--direction", "AtoB", "--workdir", run, "--seed", arguments.seed,
           "--precision", arguments.precision, *arguments.fit]
    fit += ["--duration", f"{arguments.minutes}m"] if arguments.minutes else ["--epochs", arguments.epochs]
    marks = sorted(float(mark) for mark in arguments.marks.split(",") if mark)
    os.makedirs(os.path.join(workdir, "snapshots"), exist_ok=True)
    rows, started = [], time.monotonic()
    os.makedirs(os.path.join(workdir, "rows"), exist_ok=True)
    for mark in [*marks, None]:
        name = f"{mark:g}m" if mark is not None else "final"
        saved = os.path.join(workdir, "rows", f"{name}.json")
        if os.path.exists(saved):  # the same command again, or after a kill: what was scored stays
            with open(saved) as file:
                rows.append(json.load(file))
            continue
        if mark is not None:
            # The time limit counts from this command's start: what the run has trained is already spent.
            _, trained = progress_of(run) if os.path.isdir(os.path.join(run, "checkpoints")) else (0, 0.0)
            if trained >= mark * 60:
                print(f"reproduce: the run is past {name} already and its snapshot was not scored: no row for it")
                continue
            status = command(*fit, "--time-limit", f"{mark * 60 - trained:.0f}s")
        else:
            # config.json keeps the last piece's time limit: the last piece is given room to finish.
            room = ["--time-limit", f"{arguments.minutes * 120 + 600:.0f}s"] if marks else []
            status = command(*fit, *room)
        if status != 0:  # a stop by the time limit exits 0 too, its checkpoint saved
            sys.exit(f"reproduce: fit failed with status {status}")
        steps, trained = progress_of(run)
        model = os.path.join(workdir, "snapshots", f"{name}.keras")
        if mark is None:
            model = os.path.join(run, "generator.keras")
        else:
            snapshot(run, model)
        figures = score(model, val, os.path.join(workdir, "evaluation", name), arguments.seed)
        row = {"name": name, "steps": steps, "epochs": steps / pairs, "train_seconds": trained,
               "objective": "L1 + cGAN" + (" " + " ".join(arguments.fit) if arguments.fit else ""),
               "precision": arguments.precision, **{key: figures[key] for key in METRICS},
               "image_means": {key: figures[f"image_mean_{key}"] for key in METRICS}}
        rows.append(row)
        with open(saved, "w") as file:
            json.dump(row, file)
        print(json.dumps({"mark": name, **{key: row[key] for key in ("steps", "train_seconds", *METRICS)}}), flush=True)
    machine = machine_name()
    with open(os.path.join(workdir, "results.md"), "w") as file:
        file.write(results_table(rows, machine))
    with open(os.path.join(workdir, "results.json"), "w") as file:
        json.dump({"machine": machine, "val": os.path.abspath(val), "wall_seconds": time.monotonic() - started,
                   "rows": rows}, file, indent=1)
    sample_picture(os.path.join(workdir, "evaluation", "final"), os.path.join(workdir, "sample.png"))
    final = rows[-1]
    print(json.dumps({key: final[key] for key in (*METRICS, "steps", "train_seconds")}))


if __name__ == "__main__":
    main()
