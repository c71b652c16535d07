"""Export a trained generator: a SavedModel that TF Serving loads, TFLite (LiteRT) files, ONNX and a web page.

All compute the generator's export mode (keras_pix2pix.modes): the paper's per-image
normalization statistics, no dropout, deterministic. The TFLite files take the layer forms
XNNPACK runs fastest (keras_pix2pix.fast, "tflite" and "tflite_int8").

One writer per format, each followed by its check: every file is written into a staging folder,
reloaded and compared with the Keras export-mode model, and only then moved into place, so a
failed export leaves nothing half-written. The SavedModel's signatures are keras_pix2pix.serving's.

Layout of an export to DIR:
    DIR/MODEL_NAME/VERSION/                     the SavedModel (TF Serving's model base path is DIR/MODEL_NAME)
        assets.extra/tf_serving_warmup_requests
    DIR/MODEL_NAME/tflite/VERSION/generator_{float32,float16,dynamic,int8,int8_io}.tflite
    DIR/MODEL_NAME/onnx/VERSION/generator.onnx  (--format onnx; keras_pix2pix.onnx_exports)
    DIR/MODEL_NAME/web/VERSION/                 a static site that translates in the browser (--format web;
                                                keras_pix2pix.web)
"""

import os
import tempfile
import time
import types

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from keras_pix2pix import checking, data, datasets, fast, web
from keras_pix2pix.config import MAX_PIXELS, UsageError, check_choice
from keras_pix2pix.files import output_folder, staging_folder, sweep_leftovers, write_atomically
from keras_pix2pix.metrics import parity
from keras_pix2pix.modes import export_form
from keras_pix2pix.onnx_exports import export_onnx, export_web, onnx_model, onnx_modules
from keras_pix2pix.options import FORMATS, QUANTIZATIONS, WEB_WEIGHTS, Export, check_setting, defaults
from keras_pix2pix.progress import Progress
from keras_pix2pix.serving import write_saved_model
from keras_pix2pix.translation import load_generator

TFLITE_NAMES = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8", "int8_io": "int8_io"}
# What each TFLite kind must match against the Keras export-mode model before it is kept.
TFLITE_LIMITS = {
    "none": ("max_abs", 1e-3), "float16": ("mean_abs", 1e-2), "dynamic": ("psnr", 25.0), "int8": ("psnr", 25.0),
    "int8_io": ("psnr", 25.0),
}
# The full-integer kinds: calibrated on training inputs.
INTEGER_KINDS = ("int8", "int8_io")


def _check_choices(name, values, allowed):
    values = tuple(values)
    if not values:
        raise UsageError(f"{name} must be some of {', '.join(allowed)}; got nothing")
    for value in values:
        check_choice(name, value, allowed)
    return values


def tflite_model(model, quantize="none", representative=None):
    """Converts the export-mode generator to a built-in-ops TFLite flatbuffer (batch size 1).

    Args:
        model: the export-mode generator.
        quantize: "none" (float32), "float16", "dynamic" (int8 weights, float activations),
            "int8" (full integer, calibrated on `representative`; float32 input and output) or
            "int8_io" (the same with int8 input and output tensors, for integer-only devices:
            each carries its scale and zero point, read by tflite_runner).
        representative: float32 inputs in [-1, 1] of shape (N, height, width, channels) for int8.
    """
    height, width, channels = model.input_shape[1:]
    # Converted from a SavedModel: converting a concrete function of a Keras 3 model leaves its
    # weights as TFLite resource variables, which read as garbage at run time.
    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        archive.add_endpoint(
            name="serving_default",
            fn=lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([1, height, width, channels], tf.float32, name="images")],
        )
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        # Built-in ops only: the file must run on a phone without the Flex delegate.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize in INTEGER_KINDS:
            if representative is None or not len(representative):
                raise UsageError("int8 quantization needs calibration images (a --calibration-dataset)")
            converter.representative_dataset = lambda: _calibration_feed(representative)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if quantize == "int8_io":
                converter.inference_input_type = converter.inference_output_type = tf.int8
        return converter.convert()


def _calibration_feed(images):
    """The int8 converter's representative dataset, one image at a time, with its progress (the slow part)."""
    progress = Progress(len(images), "calibrated", log_every=max(1, len(images) // 4))
    for index, image in enumerate(images):
        yield [image[None]]
        progress.update(index + 1)
    progress.close()


def tflite_runner(model_content, threads=None):
    """A function from one float32 image batch (1, H, W, C) in [-1, 1] to its float32 output (H, W, C), with LiteRT.

    An int8_io file's int8 input and output are quantized and dequantized here with the scale and
    zero point each tensor carries: real = scale * (integer - zero_point).

    Args:
        model_content: the flatbuffer bytes, or a path to a .tflite file.
        threads: interpreter threads; None uses every core (XNNPACK runs float models).
    """
    if isinstance(model_content, (str, os.PathLike)):
        with open(model_content, "rb") as file:
            model_content = file.read()
    interpreter = Interpreter(model_content=model_content, num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(batch):
        batch = np.asarray(batch, np.float32)
        if source["dtype"] == np.int8:
            scale, zero_point = source["quantization"]
            # Halves round up: with int8_io's calibrated scale of 2/255, integer = pixel - 128 exactly.
            batch = np.clip(np.floor(batch / scale + zero_point + 0.5), -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        output = interpreter.get_tensor(result["index"])[0].copy()
        if result["dtype"] == np.int8:
            scale, zero_point = result["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        return output

    run.input_shape, run.output_channels = tuple(source["shape"]), int(result["shape"][-1])
    return run


def run_tflite(model_content, images, threads=None):
    """Runs a TFLite generator on float32 images (N, H, W, C) one by one with LiteRT; returns float32.

    Args:
        model_content: the flatbuffer bytes (or a path to a .tflite file).
        images: float32 inputs in [-1, 1].
        threads: interpreter threads; None uses every core (XNNPACK runs float models).
    """
    run = tflite_runner(model_content, threads)
    return np.stack([run(image[None]) for image in np.asarray(images, np.float32)])


def calibration_images(dataset, model, count=100, *, data_dir=None, manual_dir=None, direction=None,
                       max_pixels=MAX_PIXELS):
    """Up to count training inputs in [-1, 1] at the model's size, for int8 calibration and checks.

    Args:
        dataset: "demo", a release name or a folder.
        model: the generator: its input size and its input and output channels say how to read the pairs.
        count: the most inputs taken.
        data_dir, manual_dir: where prepared datasets and hand-downloaded archives are kept.
        direction: which half of a pair is the input; None: the dataset's usual one.
        max_pixels: the largest image accepted, in pixels.
    """
    splits = datasets.find_dataset(dataset, data_dir, manual_dir)
    pairs = checking.check_pairs(splits.train.take(count), True, lambda message: None, max_pixels)
    image_size, channels = model.input_shape[1:3], (model.input_shape[-1], model.output_shape[-1])
    batches = data.resized_pairs(pairs, direction or splits.direction, image_size, channels)
    return np.stack([inputs[0].numpy() for inputs, _ in batches])


def _served_name(model_path, model_name):
    """The served model's name: the given one or the work directory's, made safe for a folder name."""
    given = model_name
    if model_name is None:
        model_name = os.path.basename(os.path.normpath(model_path)) if os.path.isdir(model_path) else "pix2pix"
    safe = "".join(character if character.isalnum() or character in "-_" else "_" for character in model_name)
    if not safe.strip("_"):
        raise UsageError(f"--name must hold letters or digits (and - or _), the served model's folder; got {given!r}")
    return safe


def _check_images(exported, config, calibration_dataset, calibration_count, quantize):
    """Inputs for int8 calibration and the parity checks: the run's data, else random images."""
    if calibration_dataset is None and config is not None:
        calibration_dataset = config.dataset
    if calibration_dataset is not None:
        if config is None:  # a bare .keras file: no run says where its data is kept
            return calibration_images(calibration_dataset, exported, calibration_count)
        return calibration_images(
            calibration_dataset, exported, calibration_count, data_dir=config.data_dir, manual_dir=config.manual_dir,
            direction=config.direction, max_pixels=config.max_pixels,
        )
    if set(INTEGER_KINDS) & set(quantize):
        raise UsageError(
            "int8 quantization needs calibration images: pass --calibration-dataset (a bare .keras file has "
            "no config.json naming its dataset)"
        )
    height, width, channels = exported.input_shape[1:]
    return np.random.RandomState(0).uniform(-1, 1, (4, height, width, channels)).astype(np.float32)


def _export_saved_model(exported, folder, model_name, checks, reference, max_pixels):
    """Writes the SavedModel into folder and checks both signatures; returns its parity."""
    write_saved_model(exported, folder, model_name, max_pixels)
    loaded = tf.saved_model.load(folder)
    measured = parity(reference, loaded.signatures["translate"](images=tf.constant(checks))["images"].numpy())
    if measured["max_abs"] > 1e-4:
        raise UsageError(f"the SavedModel differs from the Keras model by {measured['max_abs']:.2g}: not kept")
    sample = tf.io.encode_jpeg(data.denormalize(tf.constant(checks[0]))).numpy()
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([sample]))["output_bytes"]
    sized = loaded.signatures["translate_bytes"](
        image_bytes=tf.constant([sample] * 3), sizing=tf.constant(["resize", "native", "tiles"])
    )["output_bytes"]
    if any(tf.io.decode_png(png).shape[:2] != checks[0].shape[:2] for png in [served[0], *sized]):
        raise UsageError("the SavedModel's serving signatures answered an image of the wrong size: not kept")
    return measured


def _export_tflite(form, kind, path, samples, checks, reference):
    """Converts one TFLite kind, checks it against the Keras model and writes it to path; returns its size and parity."""
    content = tflite_model(form, kind, samples)
    measured = parity(reference, run_tflite(content, checks))
    limit_kind, bound = TFLITE_LIMITS[kind]
    within = measured[limit_kind] >= bound if limit_kind == "psnr" else measured[limit_kind] <= bound
    if not within:
        raise UsageError(
            f"the {TFLITE_NAMES[kind]} TFLite file misses its check ({limit_kind} "
            f"{measured[limit_kind]:.3g}, limit {bound}): not kept"
        )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, content)
    return len(content), measured


def _export_all(exported, staging, destinations, samples, settings, log):
    """Writes and checks every requested export in staging; returns the report (with final paths).

    settings: model_name, quantize, max_pixels, web_weights and the web runtime's folder (or None).
    """
    checks = samples[:4]
    reference = exported(checks, training=False).numpy()
    report = {}
    stages = ["the SavedModel"] * ("saved_model" in destinations) + ["ONNX"] * ("onnx" in destinations)
    stages += [f"the web page ({settings.web_weights} weights)"] * ("web" in destinations)
    stages += [f"TFLite {TFLITE_NAMES[kind]}" for kind in settings.quantize]
    started = time.monotonic()

    def stage():
        done = len(report)
        log(f"export {done + 1}/{len(stages)}: {stages[done]} (writing, reloading, checking)"
            f"{_elapsed(started) if done else ''}")

    if "saved_model" in destinations:
        stage()
        folder = os.path.join(staging, "saved_model")
        measured = _export_saved_model(exported, folder, settings.model_name, checks, reference, settings.max_pixels)
        report["saved_model"] = {"path": destinations["saved_model"], "bytes": _folder_size(folder), "parity": measured}
    # One conversion for both ONNX exports.
    content = onnx_model(exported, max_pixels=settings.max_pixels) if {"onnx", "web"} & set(destinations) else None
    if "onnx" in destinations:
        stage()
        size, measured = export_onnx(exported, content, os.path.join(staging, "onnx", "generator.onnx"), checks, reference)
        report["onnx"] = {"path": os.path.join(destinations["onnx"], "generator.onnx"), "bytes": size, "parity": measured}
    if "web" in destinations:
        stage()
        folder = os.path.join(staging, "web")
        model_size, measured = export_web(content, folder, checks, reference, settings.web_weights, settings.runtime)
        report["web"] = {
            "path": destinations["web"], "bytes": _folder_size(folder), "model_bytes": model_size, "parity": measured,
        }
    # One TFLite form per target, shared by the files that use it.
    targets = {kind: "tflite_int8" if kind in INTEGER_KINDS else "tflite" for kind in settings.quantize}
    forms = {target: fast.clone_as(exported, target) for target in set(targets.values())}
    for kind in settings.quantize:
        stage()
        name = f"generator_{TFLITE_NAMES[kind]}.tflite"
        size, measured = _export_tflite(
            forms[targets[kind]], kind, os.path.join(staging, "tflite", name), samples, checks, reference
        )
        report[f"tflite_{TFLITE_NAMES[kind]}"] = {
            "path": os.path.join(destinations["tflite"], name), "bytes": size, "parity": measured,
        }
    return report


# Every default of export is its option's (keras_pix2pix.options), the command line's too.
_DEFAULT = defaults(Export)


def export(
    model,
    output_dir,
    *,
    formats=_DEFAULT.formats,
    quantize=_DEFAULT.quantize,
    version=_DEFAULT.version,
    model_name=_DEFAULT.model_name,
    calibration_dataset=_DEFAULT.calibration_dataset,
    calibration_count=100,
    max_pixels=_DEFAULT.max_pixels,
    web_weights=_DEFAULT.web_weights,
    web_runtime=_DEFAULT.web_runtime,
    log=print,
):
    """Exports a trained generator, proves each export matches it, and moves them into place.

    Args:
        model: a work directory or a .keras file (see translation.load_generator).
        output_dir: where to write (see the module docstring for the layout).
        formats: some of "saved_model", "tflite", "onnx" and "web" (a static site that translates in
            the browser, keras_pix2pix.web; onnx and web need tf2onnx and onnxruntime).
        quantize: TFLite kinds: "none" (float32), "float16", "dynamic", "int8", "int8_io" (int8
            input and output tensors, for integer-only devices).
        version: the SavedModel version number (a new one for each export TF Serving should load).
        model_name: the served model's name; default: the work directory's name, else "pix2pix".
        calibration_dataset: data for int8 calibration and the parity checks; default: the run's
            dataset from config.json.
        calibration_count: training inputs used for int8 calibration.
        max_pixels: the largest image the SavedModel's serving_default accepts (checked from
            each image's header before it is decoded), and the web page accepts.
        web_weights: how the web page's model stores its weights: "float32", "float16" (half the
            download) or "int8" (a quarter); it computes in float32 whichever.
        web_runtime: where the site's copy of ONNX Runtime Web comes from: "auto" (the one `npm
            install` puts beside the page's template, else none), "cdn" (none: the page loads the
            pinned version from its CDN), or a folder of its dist files.
        log: where the report lines go.

    Returns:
        A dict: the path of each artifact, its size in bytes and its parity with the Keras model.

    Example:
    >>> report = export(model_file, export_folder, formats=("tflite",), quantize=("none",), log=lambda line: None)
    >>> report["tflite_float32"]["parity"]["max_abs"] < 1e-3
    True
    """
    check_setting("max_pixels", max_pixels)
    formats = _check_choices("format", formats, FORMATS)
    check_choice("web_weights", web_weights, WEB_WEIGHTS)
    if {"onnx", "web"} & set(formats):
        onnx_modules()  # refused now, not after the other formats are written
    runtime = web.find_runtime(web_runtime) if "web" in formats else None
    quantize = _check_choices("quantize", quantize, QUANTIZATIONS)
    quantize = quantize if "tflite" in formats else ()
    if not isinstance(version, int) or version < 1:
        raise UsageError(f"version must be a positive integer; got {version!r}")
    generator, config = load_generator(model)
    model_name = _served_name(model, model_name)
    if "dynamic" in quantize:
        log(
            "note: dynamic-range int8 TFLite runs very slowly on x86 CPUs (measured here ~100x slower than "
            "float32): prefer --quantize int8 (full integer) for speed"
        )
    destinations = _export_destinations(os.path.join(output_dir, model_name), version, formats, quantize)
    # In float32 whatever the run's precision (see fast.in_float32).
    exported = fast.in_float32(export_form(generator))
    samples = _check_images(exported, config, calibration_dataset, calibration_count, quantize)
    with output_folder(output_dir, "--output"), staging_folder(output_dir, f"export-{model_name}") as staging:
        sweep_leftovers(output_dir, log)
        settings = types.SimpleNamespace(
            model_name=model_name, quantize=quantize, max_pixels=max_pixels, web_weights=web_weights, runtime=runtime
        )
        report = _export_all(exported, staging, destinations, samples, settings, log)
        # Every export is checked: move them into place, each with one rename.
        for name, destination in destinations.items():
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            os.replace(os.path.join(staging, name), destination)
    _summarize(report, runtime, log)
    return report


def _summarize(report, runtime, log):
    """One line per export (its path, size and parity), and how to try the web page."""
    for name, entry in report.items():
        measured = entry["parity"]
        size = f"{entry['bytes'] / 1e6:.1f} MB"
        if name == "web":
            size = f"site {size}, model {entry['model_bytes'] / 1e6:.1f} MB"
        log(
            f"{name}: {entry['path']} ({size}); against Keras: max abs "
            f"{measured['max_abs']:.2g}, mean abs {measured['mean_abs']:.2g}, PSNR {measured['psnr']:.1f} dB"
        )
    if "web" not in report:
        return
    if runtime is None:
        log(
            f"note: the site holds no copy of ONNX Runtime Web, so the page loads it from {web.cdn_url()} and needs "
            "that host; for a site that works offline pass --web-runtime (the dist folder of npm install "
            f"onnxruntime-web@{web.runtime_version()})"
        )
    log(f"try it: {web.serve_command(report['web']['path'])}")


def _export_destinations(base, version, formats, quantize):
    """{format: the folder it goes to}; an existing one is refused (a version is never overwritten)."""
    destinations = {"saved_model": os.path.join(base, str(version))} if "saved_model" in formats else {}
    for name in ("onnx", "web"):
        if name in formats:
            destinations[name] = os.path.join(base, name, str(version))
    if quantize:
        destinations["tflite"] = os.path.join(base, "tflite", str(version))
    for path in destinations.values():
        if os.path.exists(path):
            raise UsageError(f"{path} exists already: pass another --version")
    return destinations


def _elapsed(started):
    return f"; {time.monotonic() - started:.0f} s so far"


def _folder_size(path):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)
