"""Inference speed and fidelity at batch 1: Keras (paper, export and inference modes), the SavedModel,
each TFLite kind and ONNX (ONNX Runtime; needs the [onnx] extra), on real images. The browser page
(ONNX Runtime Web in Chromium) has its own: bench/web.py.

    python bench/infer.py --model runs/facades --dataset ../shared/data/facades --direction BtoA [--dynamic]

Prints the machine, then for each path ms/image (median over --repeats single-image calls after a
warm-up) and its PSNR against the fp32 Keras export-mode output; then the L1 to the targets of paper
mode and export mode (what the deterministic export costs in quality); then a JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import describe  # noqa: E402

import keras_pix2pix  # noqa: E402, F401
from keras_pix2pix import data, datasets, fast  # noqa: E402
from keras_pix2pix.exports import export, tflite_runner  # noqa: E402
from keras_pix2pix.metrics import psnr  # noqa: E402
from keras_pix2pix.modes import export_form, translate  # noqa: E402
from keras_pix2pix.onnx_exports import onnx_runner  # noqa: E402
from keras_pix2pix.translation import load_generator  # noqa: E402


def median_ms(function, image, repeats):
    function(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a work directory")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--direction", default=None)
    parser.add_argument("--images", type=int, default=8, help="validation images for PSNR and L1")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dynamic", action="store_true", help="also time dynamic-range int8 (very slow on CPUs)")
    arguments = parser.parse_args()
    print(describe(), flush=True)

    generator, config = load_generator(arguments.model)
    direction = arguments.direction or config.direction
    splits = datasets.find_dataset(arguments.dataset, config.data_dir)
    pairs = list(data.eval_dataset(splits.validation.take(arguments.images), config, direction))
    inputs = np.concatenate([x.numpy() for x, _ in pairs])
    targets = np.concatenate([y.numpy() for _, y in pairs])

    exported = fast.in_float32(export_form(generator))  # what every export computes
    reference = exported(inputs, training=False).numpy()
    keras.utils.set_random_seed(0)
    paper = np.concatenate([translate(generator, inputs[i : i + 1], "paper").numpy() for i in range(len(inputs))])
    inference = generator(inputs, training=False).numpy()

    export_call = tf.function(lambda x: exported(x, training=False))
    inference_call = tf.function(lambda x: generator(x, training=False))
    paper_call = tf.function(lambda x: generator(x, training=True))  # what paper mode runs per image
    rows = {
        "keras_paper": (median_ms(lambda x: paper_call(x).numpy(), inputs[:1], arguments.repeats), psnr(reference, paper)),
        "keras_export": (median_ms(lambda x: export_call(x).numpy(), inputs[:1], arguments.repeats), 999.0),
        "keras_inference": (
            median_ms(lambda x: inference_call(x).numpy(), inputs[:1], arguments.repeats),
            psnr(reference, inference),
        ),
    }
    kinds = ("none", "float16", "int8", "int8_io") + (("dynamic",) if arguments.dynamic else ())
    with tempfile.TemporaryDirectory() as folder:
        report = export(arguments.model, folder, formats=("saved_model", "tflite", "onnx"), quantize=kinds,
                        calibration_dataset=arguments.dataset, log=lambda message: None)
        saved = tf.saved_model.load(report["saved_model"]["path"]).signatures["translate"]
        rows["saved_model"] = (
            median_ms(lambda x: saved(images=tf.constant(x))["images"].numpy(), inputs[:1], arguments.repeats),
            psnr(reference, saved(images=tf.constant(inputs))["images"].numpy()),
        )
        sizes = {name: entry["bytes"] for name, entry in report.items()}
        with open(report["onnx"]["path"], "rb") as file:
            onnx = onnx_runner(file.read())
        rows["onnx"] = (median_ms(onnx, inputs[:1], arguments.repeats), psnr(reference, onnx(inputs)))
        for name, entry in report.items():
            if not name.startswith("tflite"):
                continue
            # int8_io's integer tensors are converted from and to float by the runner (numpy, ~1 ms).
            run = tflite_runner(entry["path"])
            repeats = 2 if name == "tflite_dynamic" else arguments.repeats
            outputs = np.stack([run(inputs[i : i + 1]) for i in range(len(inputs))])
            rows[name] = (median_ms(run, inputs[:1], repeats), psnr(reference, outputs))

    keras_ms = rows["keras_paper"][0]
    print(f"{'path':<18}{'ms/image':>10}{'vs paper':>10}{'PSNR dB':>9}{'MB':>8}")
    for name, (ms, quality) in rows.items():
        size = sizes.get(name.replace("tflite_", "tflite_"), None)
        print(f"{name:<18}{ms:>10.1f}{keras_ms / ms:>9.2f}x{quality:>9.1f}{(size or 0) / 1e6:>8.1f}")
    l1_paper = float(np.mean(np.abs(paper - targets)))
    l1_export = float(np.mean(np.abs(reference - targets)))
    l1_inference = float(np.mean(np.abs(inference - targets)))
    print(
        f"L1 to targets on {len(inputs)} validation images: "
        f"paper {l1_paper:.4f}, export {l1_export:.4f}, inference {l1_inference:.4f}"
    )
    print(
        json.dumps(
            {
                "benchmark": "infer",
                "image_size": list(config.image_size),
                "ms_per_image": {name: round(ms, 1) for name, (ms, _) in rows.items()},
                "psnr_vs_export_fp32": {name: round(quality, 1) for name, (_, quality) in rows.items()},
                "bytes": sizes,
                "l1_to_targets": {
                    "paper": round(l1_paper, 4),
                    "export": round(l1_export, 4),
                    "inference": round(l1_inference, 4),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
