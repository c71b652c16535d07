"""Export a trained generator: a SavedModel that TF Serving loads, and TFLite (LiteRT) files.

Both run the generator in export mode: the paper's test-time normalization made deterministic.
At test time the paper normalizes each image with its own statistics (BatchNorm in training mode
at batch size 1) and keeps dropout on. Random dropout cannot go into a built-in-ops TFLite file
and makes served answers vary, so the export keeps the per-image statistics (each BatchNorm
becomes a PerImageNormalization with BatchNorm's scale and offset) and turns dropout off. The
TFLite files get the layer forms XNNPACK runs fastest (see export_generator).

Everything is written to a temporary folder, reloaded and compared with the Keras model, and only
then moved into place: a failed export leaves nothing half-written.

Layout of an export to DIR:
    DIR/MODEL_NAME/VERSION/                     the SavedModel (TF Serving's model base path is DIR/MODEL_NAME)
        assets.extra/tf_serving_warmup_requests
    DIR/MODEL_NAME/tflite/VERSION/generator_{float32,float16,dynamic,int8}.tflite
"""

import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_pix2pix import data, datasets, models
from keras_pix2pix.config import UsageError

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
TFLITE_NAMES = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8"}
# What each TFLite kind must match against the Keras export-mode model before it is kept.
TFLITE_LIMITS = {"none": ("max_abs", 1e-3), "float16": ("mean_abs", 1e-2), "dynamic": ("psnr", 25.0), "int8": ("psnr", 25.0)}


@keras.saving.register_keras_serializable(package="keras_pix2pix")
class PerImageNormalization(keras.layers.Layer):
    """Normalizes each image's channels with that image's own mean and variance, then scales and shifts.

    What BatchNorm in training mode computes at batch size 1, for any batch size: instance norm
    with a per-channel scale and offset. keras.layers.GroupNormalization(groups=-1) computes the
    same, but through 5-D reshapes that XNNPACK does not run, which left the float TFLite file
    slower than Keras; this layer stays 4-D.

    Args:
        epsilon: added to the variance.

    Example:
    >>> layer = PerImageNormalization()
    >>> outputs = layer(keras.random.normal((2, 8, 8, 3)) * 5 + 2)
    >>> round(float(keras.ops.std(outputs[0, :, :, 0])), 2)
    1.0
    """

    def __init__(self, epsilon=1e-5, **keywords):
        super().__init__(**keywords)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="beta")

    def call(self, inputs):
        mean, variance = tf.nn.moments(inputs, axes=[1, 2], keepdims=True)
        return (inputs - mean) * tf.math.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def export_generator(generator, tflite=False, grouped_statistics=False):
    """The generator in export mode: per-image normalization statistics, no dropout, deterministic.

    Args:
        generator: a model from build_generator (or generator.keras).
        tflite: the layer forms TFLite converts and XNNPACK runs fastest: transposed convolutions
            as SubPixelConvolution, and plain Conv2D for the DownConvolution layers (whose matrix
            form has 8-D tensors that TFLite lacks).
        grouped_statistics: normalize with keras.layers.GroupNormalization(groups=-1) (5-D
            reshapes) instead of PerImageNormalization: the same function, but after full-integer
            TFLite quantization it measured faster and closer to float (facades: 30 ms and 32.5 dB
            against 43 ms and 29.1 dB), while in float XNNPACK runs the 4-D form faster (129
            against 141 ms). export() uses it for the int8 file only.

    Returns:
        A keras.Model with the same weights whose inference call (training=False) gives the
        paper's test-time output without dropout.

    Example:
    >>> exported = export_generator(build_generator(image_size=64, filters=8))  # doctest: +SKIP
    """

    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization) and grouped_statistics:
            return keras.layers.GroupNormalization(groups=-1, epsilon=layer.epsilon, name=layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            return PerImageNormalization(epsilon=layer.epsilon, name=layer.name)
        if isinstance(layer, keras.layers.Dropout):
            return keras.layers.Identity(name=layer.name)
        if tflite and isinstance(layer, keras.layers.Conv2DTranspose):
            return models.SubPixelConvolution.from_config(layer.get_config())
        if tflite and isinstance(layer, models.DownConvolution):
            return keras.layers.Conv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    def call(layer, *arguments, **keywords):
        # The graph recorded BatchNorm's call with a mask argument, which these layers lack.
        if isinstance(layer, (PerImageNormalization, keras.layers.GroupNormalization)):
            keywords.pop("mask", None)
        return layer(*arguments, **keywords)

    exported = keras.models.clone_model(generator, clone_function=clone, call_function=call)
    for original, copy in zip(generator.layers, exported.layers):
        if isinstance(original, keras.layers.BatchNormalization):
            copy.set_weights([original.gamma.numpy(), original.beta.numpy()])
        else:
            copy.set_weights(original.get_weights())
    return exported


def _check_choices(name, values, allowed):
    values = tuple(values)
    unknown = [value for value in values if value not in allowed]
    if unknown or not values:
        raise UsageError(f"{name} must be some of {', '.join(allowed)}; got {','.join(values) or 'nothing'}")
    return values


def _serving_functions(model):
    height, width, channels = model.input_shape[1:]

    def translate(images):
        """float32 images in [-1, 1] at the model's size -> float32 in [-1, 1]."""
        return {"images": tf.cast(model(images, training=False), tf.float32)}

    def serve(image_bytes):
        """Encoded JPEG or PNG images of any size -> PNG images of the same sizes."""

        def decode(contents):
            image = tf.io.decode_image(contents, channels=channels, dtype=tf.float32, expand_animations=False)
            size = tf.shape(image)[:2]
            return data.normalize(data.resize(image, (height, width))), size

        images, sizes = tf.map_fn(
            decode,
            image_bytes,
            fn_output_signature=(tf.TensorSpec([height, width, channels], tf.float32), tf.TensorSpec([2], tf.int32)),
        )
        outputs = tf.cast(model(images, training=False), tf.float32)

        def encode(arguments):
            output, size = arguments
            return tf.io.encode_png(data.denormalize(data.resize(output, size, -1.0, 1.0)))

        # The _bytes suffix makes TF Serving's REST API return the PNGs base64-encoded.
        return {"output_bytes": tf.map_fn(encode, (outputs, sizes), fn_output_signature=tf.string)}

    return translate, serve, (height, width, channels)


def _warmup_records(path, model_name, sample_png):
    """assets.extra/tf_serving_warmup_requests: TF Serving replays these before it serves."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
    )
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([sample_png], dtype=tf.string))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(log.SerializeToString())


def write_saved_model(model, path, model_name="pix2pix"):
    """Writes the SavedModel (ExportArchive) with its two signatures and the warmup records.

    Args:
        model: the export-mode generator.
        path: the version folder to write.
        model_name: the name TF Serving serves it under (used in the warmup requests).
    """
    translate, serve, (height, width, channels) = _serving_functions(model)
    # Not archive.track(model): the archive saves the variables its endpoints use in any case,
    # and tracking the model saves each of them a second time (as its Keras variable), which
    # doubled variables/ (435.8 MB instead of 217.7 MB at 256x256) for TF Serving to download.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(
        name="serving_default", fn=serve, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    archive.add_endpoint(
        name="translate",
        fn=translate,
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name="images")],
    )
    archive.write_out(path, verbose=False)
    sample = tf.io.encode_png(tf.fill([height, width, channels], tf.constant(128, tf.uint8))).numpy()
    _warmup_records(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"), model_name, sample)


def tflite_model(model, quantize="none", representative=None):
    """Converts the export-mode generator to a built-in-ops TFLite flatbuffer (batch size 1).

    Args:
        model: the export-mode generator.
        quantize: "none" (float32), "float16", "dynamic" (int8 weights, float activations) or
            "int8" (full integer, calibrated on `representative`; float32 input and output).
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
        elif quantize == "int8":
            if representative is None or not len(representative):
                raise UsageError("int8 quantization needs calibration images (a --calibration-dataset)")
            converter.representative_dataset = lambda: ([image[None]] for image in representative)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


def run_tflite(model_content, images, threads=None):
    """Runs a TFLite generator on float32 images (N, H, W, C) one by one with LiteRT; returns float32.

    Args:
        model_content: the flatbuffer bytes (or a path to a .tflite file).
        images: float32 inputs in [-1, 1].
        threads: interpreter threads; None uses every core (XNNPACK runs float models).
    """
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model_content, (str, os.PathLike)):
        with open(model_content, "rb") as file:
            model_content = file.read()
    interpreter = Interpreter(model_content=model_content, num_threads=threads or os.cpu_count())
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for image in np.asarray(images, np.float32):
        interpreter.set_tensor(input_index, image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(outputs)


def psnr(reference, other):
    """PSNR in dB of other against reference, both in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(other, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def parity(reference, other):
    """Max and mean absolute difference and PSNR of other against reference."""
    difference = np.abs(np.asarray(reference, np.float64) - np.asarray(other, np.float64))
    return {"max_abs": float(difference.max()), "mean_abs": float(difference.mean()), "psnr": psnr(reference, other)}


def _within(measured, limit):
    kind, bound = limit
    return measured[kind] >= bound if kind == "psnr" else measured[kind] <= bound


def calibration_images(dataset, config, count=100, data_dir=None, direction=None):
    """Up to count training inputs in [-1, 1] at the model's size, for int8 calibration and checks."""
    splits = datasets.find_dataset(dataset, data_dir or config.data_dir, config.manual_dir)
    pairs = datasets.check_pairs(splits.train.take(count), skip_bad=True, log=lambda message: None)
    direction = direction or config.direction or splits.direction
    images = [inputs[0].numpy() for inputs, _ in data.eval_dataset(pairs, config, direction)]
    return np.stack(images)


def export(
    model,
    output_dir,
    *,
    formats=FORMATS,
    quantize=("none", "float16", "int8"),
    version=1,
    model_name=None,
    calibration_dataset=None,
    calibration_count=100,
    log=print,
):
    """Exports a trained generator, proves each export matches it, and moves them into place.

    Args:
        model: a work directory or a .keras file (see predict.load_generator).
        output_dir: where to write (see the module docstring for the layout).
        formats: "saved_model" and/or "tflite".
        quantize: TFLite kinds: "none" (float32), "float16", "dynamic", "int8".
        version: the SavedModel version number (a new one for each export TF Serving should load).
        model_name: the served model's name; default: the work directory's name, else "pix2pix".
        calibration_dataset: data for int8 calibration and the parity checks; default: the run's
            dataset from config.json.
        calibration_count: training inputs used for int8 calibration.
        log: where the report lines go.

    Returns:
        A dict: the path of each artifact, its size in bytes and its parity with the Keras model.

    Example:
    >>> report = export("runs/facades", "exports", quantize=("none", "int8"))  # doctest: +SKIP
    """
    from keras_pix2pix.predict import load_generator

    formats = _check_choices("format", formats, FORMATS)
    quantize = _check_choices("quantize", quantize, QUANTIZATIONS) if "tflite" in formats else ()
    if not isinstance(version, int) or version < 1:
        raise UsageError(f"version must be a positive integer; got {version!r}")
    generator, config = load_generator(model)
    if model_name is None:
        model_name = os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else "pix2pix"
    model_name = "".join(character if character.isalnum() or character in "-_" else "_" for character in model_name)
    if "dynamic" in quantize:
        log(
            "note: dynamic-range int8 TFLite runs very slowly on x86 CPUs (measured here ~100x slower than "
            "float32): prefer --quantize int8 (full integer) for speed"
        )

    base = os.path.join(output_dir, model_name)
    saved_model_path = os.path.join(base, str(version))
    tflite_folder = os.path.join(base, "tflite", str(version))
    for path in ([saved_model_path] if "saved_model" in formats else []) + ([tflite_folder] if quantize else []):
        if os.path.exists(path):
            raise UsageError(f"{path} exists already: pass another --version")

    exported = export_generator(generator)
    if calibration_dataset is None and config is not None:
        calibration_dataset = config.dataset
    if calibration_dataset is not None:
        if config is None:
            raise UsageError("a bare .keras file has no config.json: calibration needs its work directory")
        samples = calibration_images(calibration_dataset, config, calibration_count)
    elif "int8" in quantize:
        raise UsageError("int8 quantization needs calibration images: pass --calibration-dataset")
    else:
        height, width, channels = exported.input_shape[1:]
        samples = np.random.RandomState(0).uniform(-1, 1, (4, height, width, channels)).astype(np.float32)
    checks = samples[:4]
    reference = exported(checks, training=False).numpy()

    os.makedirs(output_dir, exist_ok=True)
    staging = os.path.join(output_dir, f".export-{model_name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    report = {}
    try:
        if "saved_model" in formats:
            path = os.path.join(staging, "saved_model")
            write_saved_model(exported, path, model_name)
            loaded = tf.saved_model.load(path)
            measured = parity(reference, loaded.signatures["translate"](images=tf.constant(checks))["images"].numpy())
            if measured["max_abs"] > 1e-4:
                raise UsageError(f"the SavedModel differs from the Keras model by {measured['max_abs']:.2g}: not kept")
            sample = tf.io.encode_jpeg(data.denormalize(tf.constant(checks[0]))).numpy()
            served = loaded.signatures["serving_default"](image_bytes=tf.constant([sample]))["output_bytes"]
            if tf.io.decode_png(served[0]).shape[:2] != checks[0].shape[:2]:
                raise UsageError("the SavedModel's serving_default answered an image of the wrong size: not kept")
            report["saved_model"] = {"path": saved_model_path, "bytes": _folder_size(path), "parity": measured}
        # One TFLite form per normalization kind, shared by the files that use it.
        tflite_forms = {
            grouped: export_generator(generator, tflite=True, grouped_statistics=grouped)
            for grouped in {kind == "int8" for kind in quantize}
        }
        for kind in quantize:
            content = tflite_model(tflite_forms[kind == "int8"], kind, samples)
            measured = parity(reference, run_tflite(content, checks))
            if not _within(measured, TFLITE_LIMITS[kind]):
                raise UsageError(
                    f"the {TFLITE_NAMES[kind]} TFLite file misses its check ({TFLITE_LIMITS[kind][0]} "
                    f"{measured[TFLITE_LIMITS[kind][0]]:.3g}, limit {TFLITE_LIMITS[kind][1]}): not kept"
                )
            name = f"generator_{TFLITE_NAMES[kind]}.tflite"
            os.makedirs(os.path.join(staging, "tflite"), exist_ok=True)
            with open(os.path.join(staging, "tflite", name), "wb") as file:
                file.write(content)
            report[f"tflite_{TFLITE_NAMES[kind]}"] = {
                "path": os.path.join(tflite_folder, name),
                "bytes": len(content),
                "parity": measured,
            }
        # Every export is checked: move them into place, each with one rename.
        if "saved_model" in formats:
            os.makedirs(base, exist_ok=True)
            os.replace(os.path.join(staging, "saved_model"), saved_model_path)
        if quantize:
            os.makedirs(os.path.dirname(tflite_folder), exist_ok=True)
            os.replace(os.path.join(staging, "tflite"), tflite_folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    for name, entry in report.items():
        measured = entry["parity"]
        log(
            f"{name}: {entry['path']} ({entry['bytes'] / 1e6:.1f} MB); against Keras: max abs "
            f"{measured['max_abs']:.2g}, mean abs {measured['mean_abs']:.2g}, PSNR {measured['psnr']:.1f} dB"
        )
    return report


def _folder_size(path):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)
