"""The ONNX exports: generator.onnx (`--format onnx`) and the browser's static site (`--format web`).

Both hold the export-mode generator converted by tf2onnx, for any height and width that are
multiples of 2**depth, with metadata_props saying how predict sizes images for it (onnx_metadata),
so that a reader of the file alone (the web page) sizes them the same way. Each is run in ONNX
Runtime and compared with the Keras model before it is written (exports.export moves it into place).
"""

import importlib
import os

import numpy as np
import tensorflow as tf

from keras_pix2pix import onnx_weights, sizing, web
from keras_pix2pix.config import MAX_PIXELS, UsageError
from keras_pix2pix.files import write_atomically
from keras_pix2pix.metrics import parity
from keras_pix2pix.options import DEFAULT_OVERLAP, NATIVE_PIXELS

# What each storage of the web page's weights must match against the Keras model (the TFLite
# files' limits for the same storage) before the site is kept.
WEB_LIMITS = {"float32": ("max_abs", 1e-4), "float16": ("mean_abs", 1e-2), "int8": ("psnr", 25.0)}


def onnx_modules():
    """(tf2onnx, onnxruntime), or a UsageError saying how to install them."""
    try:
        return importlib.import_module("tf2onnx"), importlib.import_module("onnxruntime")
    except ImportError as error:
        raise UsageError(
            f"--format onnx and web need tf2onnx and onnxruntime ({error}): pip install \"keras-pix2pix[onnx]\""
        ) from None


def onnx_metadata(model, max_pixels=MAX_PIXELS):
    """What a reader of the ONNX file needs to size images as predict does: its metadata_props.

    Args:
        model: the export-mode generator.
        max_pixels: the largest image a reader should accept, in pixels.

    Example:
    >>> from keras_pix2pix.models import build_generator
    >>> onnx_metadata(build_generator(image_size=64, filters=4))["keras_pix2pix.multiple"]
    64
    """
    height, width, channels = model.input_shape[1:]
    return {
        "keras_pix2pix.height": height, "keras_pix2pix.width": width, "keras_pix2pix.input_channels": channels,
        "keras_pix2pix.output_channels": model.output_shape[-1], "keras_pix2pix.multiple": sizing.downsampling(model),
        "keras_pix2pix.tile_overlap": DEFAULT_OVERLAP, "keras_pix2pix.native_pixels": NATIVE_PIXELS,
        "keras_pix2pix.max_pixels": max_pixels, "keras_pix2pix.weights": "float32",
    }


def onnx_model(model, opset=17, max_pixels=MAX_PIXELS):
    """Converts the export-mode generator to ONNX with tf2onnx; returns the serialized model.

    Its input "images" is float32 (batch, height, width, channels) in [-1, 1] of any height and
    width that are multiples of 2**depth (the graph is the SavedModel's native one); its one output
    is the translated batch, the same shape, in [-1, 1]. Its metadata_props are onnx_metadata's.

    Args:
        model: the export-mode generator.
        opset: the ONNX opset (17: ONNX Runtime 1.13 and later, TensorRT 8.6 and later).
        max_pixels: the largest image a reader of the file should accept (onnx_metadata).
    """
    tf2onnx, _ = onnx_modules()
    channels = model.input_shape[-1]
    any_size = sizing.at_size(model, None, None)
    signature = (tf.TensorSpec([None, None, None, channels], tf.float32, name="images"),)
    function = tf.function(lambda images: any_size(images, training=False), input_signature=signature)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    return onnx_weights.with_metadata(proto.SerializeToString(), onnx_metadata(model, max_pixels))


def onnx_runner(content):
    """A function from a float32 batch (N, H, W, C) in [-1, 1] to the ONNX model's output, with ONNX Runtime."""
    _, onnxruntime = onnx_modules()
    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: np.asarray(images, np.float32)})[0]


def export_onnx(exported, content, path, checks, reference):
    """Checks the ONNX file in ONNX Runtime at the model's size and at twice it, and writes it to path.

    Args:
        exported: the export-mode generator.
        content: its ONNX file (onnx_model).
        path: where to write it.
        checks: float32 inputs (N, H, W, C) at the model's size; reference: the Keras outputs for them.

    Returns:
        (the file's size in bytes, its parity with the Keras model at the model's size).
    """
    run = onnx_runner(content)
    measured = parity(reference, run(checks))
    # Twice the size in each direction: the dynamic height and width work.
    larger = np.concatenate([np.concatenate([checks[:1]] * 2, axis=1)] * 2, axis=2)
    bigger = parity(sizing.at_size(exported, *larger.shape[1:3])(larger, training=False).numpy(), run(larger))
    worst = max(measured["max_abs"], bigger["max_abs"])
    if worst > 1e-4:
        raise UsageError(f"the ONNX file differs from the Keras model by {worst:.2g}: not kept")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, content)
    return len(content), measured


def export_web(content, folder, checks, reference, weights, runtime):
    """Writes the browser's site into folder, its weights stored as `weights` and checked in ONNX Runtime first.

    Args:
        content: the generator's ONNX file (onnx_model).
        folder: the site's folder (web.write_site).
        checks: float32 inputs at the model's size; reference: the Keras outputs for them.
        weights: "float32", "float16" or "int8" (onnx_weights.stored_as).
        runtime: a folder of ONNX Runtime Web's files to copy, or None for the CDN (web.find_runtime).

    Returns:
        (the model file's size in bytes, its parity with the Keras model).
    """
    stored = onnx_weights.stored_as(content, weights)
    measured = parity(reference, onnx_runner(stored)(checks))
    kind, bound = WEB_LIMITS[weights]
    if not (measured[kind] >= bound if kind == "psnr" else measured[kind] <= bound):
        raise UsageError(
            f"the web page's {weights} weights miss their check ({kind} {measured[kind]:.3g}, limit {bound}): not "
            "kept; pass --web-weights float16 or float32"
        )
    web.write_site(folder, stored, runtime)
    return len(stored), measured
