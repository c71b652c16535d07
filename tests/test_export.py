import base64
import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from conftest import SHARED_DATA, refused, run_command, tiny_config, write_ab_folder

from keras_pix2pix import exports as export_module
from keras_pix2pix import fast
from keras_pix2pix.cli import main
from keras_pix2pix.exports import export, run_tflite
from keras_pix2pix.metrics import psnr
from keras_pix2pix.models import build_generator
from keras_pix2pix.modes import export_form, translate
from keras_pix2pix.train import fit
from keras_pix2pix.translation import load_generator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import grpc_client  # noqa: E402
import rest_client  # noqa: E402
import tflite_tiles  # noqa: E402


def test_export_mode_is_paper_mode_without_dropout():
    generator = build_generator(image_size=32, filters=8, dropout=0.0)
    # Move BatchNorm's moving statistics away from the batch ones, so that a wrong mode shows.
    for variable in generator.non_trainable_variables:
        if "moving_mean" in variable.path:
            variable.assign(tf.fill(variable.shape, 0.3))
    images = tf.random.uniform((3, 32, 32, 3), -1, 1, seed=4)
    exported = export_form(generator)
    np.testing.assert_allclose(exported(images, training=False).numpy(), translate(generator, images, "paper").numpy(), atol=1e-5)
    assert not [layer for layer in exported.layers if "Dropout" in type(layer).__name__ or "BatchNorm" in type(layer).__name__]
    assert [layer for layer in exported.layers if isinstance(layer, keras.layers.GroupNormalization)]
    # translate's export mode is this model.
    np.testing.assert_allclose(translate(generator, images, "export").numpy(), exported(images).numpy(), atol=1e-6)


def test_float_tflite_has_only_4d_tensors():
    # XNNPACK, which runs float TFLite on CPUs, leaves 5-D tensors to the slow reference kernels.
    from ai_edge_litert.interpreter import Interpreter

    from keras_pix2pix.exports import tflite_model

    exported = fast.clone_as(export_form(build_generator(image_size=32, filters=8)), "tflite")
    interpreter = Interpreter(model_content=tflite_model(exported))
    assert max(len(tensor["shape"]) for tensor in interpreter.get_tensor_details()) == 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = write_ab_folder(tmp_path_factory.mktemp("pairs"), count=4)
    workdir = str(tmp_path_factory.mktemp("work") / "shoes")
    fit(tiny_config(dataset=folder, steps=2), workdir, verbose=False)
    output = str(tmp_path_factory.mktemp("exports"))
    report = export(workdir, output, quantize=("none", "float16", "dynamic", "int8", "int8_io"), log=lambda message: None)
    return workdir, output, report


@pytest.mark.slow
def test_layout_and_report(exported):
    _, output, report = exported
    assert os.path.isfile(os.path.join(output, "shoes", "1", "saved_model.pb"))
    assert os.path.isfile(os.path.join(output, "shoes", "1", "assets.extra", "tf_serving_warmup_requests"))
    for kind in ("float32", "float16", "dynamic", "int8", "int8_io"):
        assert os.path.isfile(os.path.join(output, "shoes", "tflite", "1", f"generator_{kind}.tflite"))
    assert report["saved_model"]["parity"]["max_abs"] <= 1e-5
    assert report["tflite_float32"]["parity"]["max_abs"] <= 1e-4
    assert report["tflite_int8"]["bytes"] < report["tflite_float32"]["bytes"] / 2
    assert not [name for name in os.listdir(output) if name.startswith(".export")]


@pytest.mark.slow
def test_saved_model_stores_each_weight_once(exported):
    workdir, output, _ = exported
    variables = os.path.join(output, "shoes", "1", "variables")
    stored = sum(os.path.getsize(os.path.join(variables, name)) for name in os.listdir(variables))
    # The export-mode generator's weights (BatchNorm's moving statistics are not among them), in
    # float32; at this tiny size generator.keras's own overhead is more than 5% of the file.
    weights = sum(weight.nbytes for weight in export_form(load_generator(workdir)[0]).get_weights())
    assert weights <= stored <= 1.05 * weights, (stored, weights)
    reader = tf.train.load_checkpoint(os.path.join(variables, "variables"))
    tensors = [reader.get_tensor(name).tobytes() for name in reader.get_variable_to_shape_map() if "VARIABLE_VALUE" in name]
    assert len(tensors) == len(set(tensors))  # no weight twice


@pytest.mark.slow
def test_saved_model_serves_every_sizing_in_a_fresh_process_as_predict_does(exported, tmp_path, capsys):
    workdir, output, _ = exported
    image = np.random.RandomState(1).randint(0, 256, (70, 100, 3)).astype(np.uint8)
    tf.io.write_file(str(tmp_path / "input.png"), tf.io.encode_png(image))
    choices = ["auto", "resize", "native", "tiles"]
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({os.path.join(output, "shoes", "1")!r})
        png = tf.io.read_file({str(tmp_path / "input.png")!r})
        default = model.signatures["serving_default"](image_bytes=tf.stack([png]))["output_bytes"]
        sized = model.signatures["translate_bytes"](image_bytes=tf.stack([png] * 4), sizing=tf.constant({choices!r}))
        for name, answer in zip(["default"] + {choices!r}, [default[0], *sized["output_bytes"]]):
            tf.io.write_file({str(tmp_path)!r} + "/served_" + name + ".png", answer)
        floats = model.signatures["translate"](images=tf.zeros((2, 64, 96, 3)))["images"]
        print("translate", tuple(floats.shape))
        try:
            model.signatures["translate"](images=tf.zeros((1, 40, 32, 3)))
        except tf.errors.InvalidArgumentError as error:
            print("refused:", "multiples of 32" in str(error))
        print("keras_pix2pix imported:", "keras_pix2pix" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "translate (2, 64, 96, 3)" in result.stdout and "refused: True" in result.stdout
    assert "keras_pix2pix imported: False" in result.stdout

    def read(path):
        return tf.io.decode_png(open(path, "rb").read()).numpy().astype(int)

    for choice in choices:
        assert main(["predict", "--model", workdir, str(tmp_path / "input.png"), "--output", str(tmp_path / choice),
                     "--sizing", choice, "--mode", "export"]) == 0
        predicted, served = read(tmp_path / choice / "input.png"), read(tmp_path / f"served_{choice}.png")
        assert served.shape == predicted.shape == (70, 100, 3), choice
        assert np.abs(served - predicted).max() <= 1, choice  # float32 both; 8-bit rounding
    capsys.readouterr()
    assert (read(tmp_path / "served_default.png") == read(tmp_path / "served_auto.png")).all()
    # Three of the four differ from each other: the choice reached the graph (auto is tiles here).
    assert (read(tmp_path / "served_tiles.png") == read(tmp_path / "served_auto.png")).all()
    assert np.abs(read(tmp_path / "served_resize.png") - read(tmp_path / "served_native.png")).max() > 8
    assert np.abs(read(tmp_path / "served_native.png") - read(tmp_path / "served_tiles.png")).max() > 8


def _saved_model_cli(directory, tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((1, 32, 32, 3), np.float32))
    command = [
        os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
        "run",
        "--dir",
        directory,
        "--tag_set",
        "serve",
        "--signature_def",
        "translate",
        "--inputs",
        f"images={tmp_path / 'images.npy'}",
    ]
    if not os.path.exists(command[0]):
        pytest.skip("saved_model_cli is not installed beside this Python")
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow
def test_saved_model_cli_runs_translate_and_catches_a_plain_module_export(exported, tmp_path):
    workdir, output, _ = exported
    result = _saved_model_cli(os.path.join(output, "shoes", "1"), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key images" in result.stdout
    # The known trap: a Keras 3 model wrapped in a plain tf.Module reloads in Python but fails in
    # the C++ loader that saved_model_cli and TF Serving use. This check would catch it.
    generator, _ = load_generator(workdir)
    module = tf.Module()
    module.generator = generator
    module.translate = tf.function(
        lambda images: {"images": generator(images, training=False)},
        input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="images")],
    )
    tf.saved_model.save(module, str(tmp_path / "broken"), signatures={"translate": module.translate})
    assert _saved_model_cli(str(tmp_path / "broken"), tmp_path).returncode != 0


@pytest.mark.slow
def test_rest_and_grpc_payloads_and_warmup_run_through_the_saved_model(exported):
    _, output, _ = exported
    model = tf.saved_model.load(os.path.join(output, "shoes", "1"))
    serve = model.signatures["serving_default"]
    jpeg = tf.io.encode_jpeg(np.full((48, 40, 3), 99, np.uint8)).numpy()

    # REST: the JSON body as TF Serving decodes it ({"b64": ...} -> bytes), its answer encoded back.
    body = json.loads(json.dumps(rest_client.rest_request(jpeg)))
    assert body["signature_name"] == "serving_default"
    inputs = [base64.b64decode(instance["b64"]) for instance in body["instances"]]
    outputs = serve(image_bytes=tf.constant(inputs))["output_bytes"].numpy()
    response = {"predictions": [{"b64": base64.b64encode(png).decode()} for png in outputs]}
    assert tf.io.decode_png(rest_client.rest_response_image(json.loads(json.dumps(response)))).shape == (48, 40, 3)

    # gRPC: the PredictRequest's tensor is what the signature receives.
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = grpc_client.grpc_request(jpeg, "shoes")
    assert request.model_spec.signature_name == "serving_default"
    answer = serve(image_bytes=tf.constant(tf.make_ndarray(request.inputs["image_bytes"])))
    response = predict_pb2.PredictResponse()
    response.outputs["output_bytes"].CopyFrom(tf.make_tensor_proto(answer["output_bytes"].numpy()))
    assert tf.io.decode_png(grpc_client.grpc_response_image(response)).shape == (48, 40, 3)

    # With a sizing, both clients name translate_bytes and send the choice beside each image.
    body = json.loads(json.dumps(rest_client.rest_request(jpeg, "native")))
    assert body["signature_name"] == "translate_bytes"
    columns = {name: [instance[name] for instance in body["instances"]] for name in ("image_bytes", "sizing")}
    rest_answer = model.signatures[body["signature_name"]](
        image_bytes=tf.constant([base64.b64decode(value["b64"]) for value in columns["image_bytes"]]),
        sizing=tf.constant(columns["sizing"]),
    )["output_bytes"]
    request = grpc_client.grpc_request(jpeg, "shoes", "native")
    grpc_answer = model.signatures[request.model_spec.signature_name](
        **{name: tf.constant(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
    )["output_bytes"]
    assert rest_answer.numpy()[0] == grpc_answer.numpy()[0]
    assert tf.io.decode_png(rest_answer[0]).shape == (48, 40, 3)

    # The warmup records replay against the signature they name.
    path = os.path.join(output, "shoes", "1", "assets.extra", "tf_serving_warmup_requests")
    records = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in tf.data.TFRecordDataset(path)]
    assert records
    for log in records:
        warm = log.predict_log.request
        assert warm.model_spec.name == "shoes"
        result = model.signatures[warm.model_spec.signature_name](
            image_bytes=tf.constant(tf.make_ndarray(warm.inputs["image_bytes"]))
        )
        assert tf.io.decode_png(result["output_bytes"][0]).shape == (32, 32, 3)


@pytest.mark.slow
def test_tflite_files_run_with_litert(exported):
    workdir, output, _ = exported
    generator, _ = load_generator(workdir)
    images = np.random.RandomState(2).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    reference = export_form(generator)(images, training=False).numpy()
    folder = os.path.join(output, "shoes", "tflite", "1")
    assert np.abs(run_tflite(os.path.join(folder, "generator_float32.tflite"), images) - reference).max() <= 1e-4
    assert np.abs(run_tflite(os.path.join(folder, "generator_float16.tflite"), images) - reference).mean() <= 5e-3
    assert psnr(reference, run_tflite(os.path.join(folder, "generator_int8.tflite"), images)) >= 25


@pytest.mark.slow
def test_the_tflite_tiles_client_matches_predict_in_tiles(exported, tmp_path, capsys, monkeypatch):
    workdir, output, _ = exported
    image = np.random.RandomState(4).randint(0, 256, (70, 90, 3)).astype(np.uint8)
    tf.io.write_file(str(tmp_path / "large.png"), tf.io.encode_png(image))
    model = os.path.join(output, "shoes", "tflite", "1", "generator_float32.tflite")
    monkeypatch.setattr(sys, "argv", ["tflite_tiles.py", model, str(tmp_path / "large.png"), "--output",
                                      str(tmp_path / "tflite.png")])
    tflite_tiles.main()
    assert main(["predict", "--model", workdir, str(tmp_path / "large.png"), "--output", str(tmp_path / "keras"),
                 "--sizing", "tiles", "--mode", "export"]) == 0
    capsys.readouterr()
    tiled = tf.io.decode_png(open(tmp_path / "tflite.png", "rb").read()).numpy().astype(int)
    predicted = tf.io.decode_png(open(tmp_path / "keras" / "large.png", "rb").read()).numpy().astype(int)
    assert tiled.shape == predicted.shape == (70, 90, 3)
    assert np.abs(tiled - predicted).max() <= 1  # the float32 file's 1e-4, rounded to 8 bits


@pytest.mark.slow
def test_failed_export_leaves_nothing_and_versions_are_not_overwritten(exported, tmp_path, monkeypatch):
    workdir, output, _ = exported
    with pytest.raises(ValueError, match=r"shoes.1 exists already: pass another --version"):
        export(workdir, output, formats=("saved_model",), log=lambda message: None)

    def broken(*arguments, **keywords):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_module, "tflite_model", broken)
    target = tmp_path / "new"
    with pytest.raises(RuntimeError, match="converter crashed"):
        export(workdir, str(target), quantize=("none",), log=lambda message: None)
    # The SavedModel had passed its checks, but nothing is moved into place unless all did,
    # and the output folder this export made is gone with it.
    assert not target.exists()


@pytest.mark.slow
def test_export_command(exported, tmp_path, capsys):
    workdir, _, _ = exported
    assert main(["export", "--model", workdir, "--output", str(tmp_path), "--quantize", "none", "--version", "3"]) == 0
    assert "saved_model:" in capsys.readouterr().out
    assert os.path.isdir(tmp_path / "shoes" / "3") and os.path.isfile(
        tmp_path / "shoes" / "tflite" / "3" / "generator_float32.tflite"
    )
    assert main(["export", "--model", workdir, "--output", str(tmp_path), "--quantize", "int4"]) == 2
    assert "quantize must be one of none, float16, dynamic, int8, int8_io; got 'int4'" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "facades")), reason="../shared/data/facades absent")
@pytest.mark.slow
def test_parity_on_real_facades(tmp_path):
    facades = os.path.join(SHARED_DATA, "facades")
    workdir = str(tmp_path / "facades")
    config = tiny_config(dataset=facades, direction="BtoA", image_size=256, discriminator_layers=3, steps=3, sample_count=1)
    fit(config, workdir, verbose=False)
    report = export(
        # int8_io is int8's calibration with integer ends: the exported fixture checks it.
        workdir, str(tmp_path / "out"), quantize=("none", "float16", "int8"), calibration_count=16,
        log=lambda message: None,
    )
    generator, _ = load_generator(workdir)
    from keras_pix2pix import data, datasets

    validation = datasets.local_splits(facades).validation.take(4)
    images = np.concatenate([inputs.numpy() for inputs, _ in data.eval_dataset(validation, config, "BtoA")])
    reference = export_form(generator)(images, training=False).numpy()
    saved = tf.saved_model.load(report["saved_model"]["path"]).signatures["translate"](images=tf.constant(images))["images"]
    assert np.abs(saved.numpy() - reference).max() <= 1e-5
    assert np.abs(run_tflite(report["tflite_float32"]["path"], images) - reference).max() <= 1e-4
    assert np.abs(run_tflite(report["tflite_float16"]["path"], images) - reference).mean() <= 5e-3
    assert psnr(reference, run_tflite(report["tflite_int8"]["path"], images)) >= 30


@pytest.mark.slow
def test_the_int8_io_file_takes_and_gives_integers_with_their_scale(exported):
    workdir, output, report = exported
    path = os.path.join(output, "shoes", "tflite", "1", "generator_int8_io.tflite")
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    source, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert source["dtype"] == result["dtype"] == np.int8
    # Calibrated on inputs in [-1, 1]: a step of 2/255 per integer, so that q = pixel - 128.
    scale, zero_point = source["quantization"]
    assert abs(scale - 2 / 255) < 1e-6 and zero_point == -1
    images = np.random.RandomState(5).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    reference = export_form(load_generator(workdir)[0])(images, training=False).numpy()
    assert psnr(reference, run_tflite(path, images)) >= 25
    assert report["tflite_int8_io"]["parity"]["psnr"] >= 25
    # The integers a device feeds (pixel - 128) and what run_tflite makes of their real values agree.
    integers = np.random.RandomState(6).randint(0, 256, (1, 32, 32, 3)) - 128
    interpreter.set_tensor(source["index"], integers.astype(np.int8))
    interpreter.invoke()
    answer = interpreter.get_tensor(result["index"]).astype(np.float32)
    out_scale, out_zero_point = result["quantization"]
    floats = ((integers - zero_point) * scale).astype(np.float32)
    assert np.abs((answer - out_zero_point) * out_scale - run_tflite(path, floats)).max() <= 1e-6


def _operators(path):
    interpreter = Interpreter(model_path=path)
    return {operator["op_name"] for operator in interpreter._get_ops_details()}


@pytest.mark.slow
def test_a_resize_upsampling_generator_trains_and_exports_without_transposed_convolutions(tmp_path):
    folder = write_ab_folder(tmp_path / "pairs", count=4)
    workdir = str(tmp_path / "resize")
    # Trained in mixed_bfloat16: every export still computes in float32 (ONNX Runtime has no bf16 Conv).
    fit(tiny_config(dataset=folder, steps=2, upsample="resize", precision="mixed_bfloat16"), workdir, verbose=False)
    report = export(workdir, str(tmp_path / "exports"), formats=("saved_model", "tflite", "onnx"),
                    quantize=("none", "int8"), log=lambda message: None)
    assert report["saved_model"]["parity"]["max_abs"] <= 1e-5
    assert report["onnx"]["parity"]["psnr"] >= 60
    assert report["tflite_float32"]["parity"]["max_abs"] <= 1e-4
    assert report["tflite_int8"]["parity"]["psnr"] >= 25
    generator, _ = load_generator(workdir)
    assert not [layer for layer in generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    for kind in ("float32", "int8"):
        operators = _operators(report[f"tflite_{kind}"]["path"])
        assert "TRANSPOSE_CONV" not in operators and "RESIZE_BILINEAR" in operators, operators


@pytest.fixture(scope="module")
def onnx_export(exported, tmp_path_factory):
    workdir, _, _ = exported
    output = tmp_path_factory.mktemp("onnx")
    report = export(workdir, str(output / "exports"), formats=("onnx",), log=lambda message: None)
    return workdir, output, report


@pytest.mark.slow
def test_onnx_matches_keras_and_runs_in_a_fresh_process_at_two_sizes(onnx_export):
    workdir, tmp_path, report = onnx_export
    assert list(report) == ["onnx"] and report["onnx"]["parity"]["psnr"] >= 60
    path = report["onnx"]["path"]
    assert path == str(tmp_path / "exports" / "shoes" / "onnx" / "1" / "generator.onnx")
    images = np.random.RandomState(7).uniform(-1, 1, (1, 64, 96, 3)).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import onnxruntime
        session = onnxruntime.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
        images = np.load({str(tmp_path / "images.npy")!r})
        for batch in (images[:, :32, :32], images):
            output = session.run(None, {{"images": batch}})[0]
            np.save({str(tmp_path)!r} + f"/onnx_{{batch.shape[1]}}.npy", output)
        print("tensorflow imported:", "tensorflow" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow imported: False" in result.stdout
    exported_form = export_form(load_generator(workdir)[0])
    from keras_pix2pix.sizing import at_size

    for height, batch in ((32, images[:, :32, :32]), (64, images)):
        reference = at_size(exported_form, *batch.shape[1:3])(batch, training=False).numpy()
        assert psnr(reference, np.load(tmp_path / f"onnx_{height}.npy")) >= 60


def test_onnx_without_its_packages_is_one_line(tmp_path, capsys, monkeypatch):
    real_import = importlib.import_module

    def missing(name, *arguments):
        if name in ("tf2onnx", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *arguments)

    monkeypatch.setattr(importlib, "import_module", missing)
    refused(capsys, r"^keras-pix2pix: error: --format onnx and web need tf2onnx and onnxruntime \(No module named 'tf2onnx'\): "
            r"pip install \"keras-pix2pix\[onnx\]\"$", "export", "--model", tmp_path / "none.keras", "--output",
            tmp_path / "out", "--format", "onnx")
    assert not (tmp_path / "out").exists()


# --- names, kinds and a killed export's staging (on a copy of the trained run) ----------------------


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--name", ""], r"--name must hold letters or digits .*; got ''"),
        (
            ["--format", "saved_model", "--quantize", "bogus"],
            r"quantize must be one of none, float16, dynamic, int8, int8_io; got 'bogus'",
        ),
        (["--format", "tflite", "--quantize", "int8"], None),
    ],
)
def test_export_names_and_kinds(run, tmp_path, capsys, flags, pattern):
    if pattern:
        refused(capsys, pattern, "export", "--model", run, "--output", tmp_path / "exports", *flags)
        assert not os.path.exists(tmp_path / "exports")
        return
    # A bare .keras file: int8 asks for calibration data once, and then uses it.
    bare = str(tmp_path / "bare.keras")
    shutil.copy(os.path.join(run, "generator.keras"), bare)
    refused(
        capsys,
        r"int8 quantization needs calibration images: pass --calibration-dataset \(a bare \.keras file",
        "export", "--model", bare, "--output", tmp_path / "exports", *flags,
    )
    status, out, err = run_command(
        capsys,
        "export", "--model", bare, "--output", tmp_path / "exports", *flags,
        "--calibration-dataset", json.load(open(os.path.join(run, "config.json")))["dataset"],
    )
    assert status == 0, err
    assert os.path.exists(tmp_path / "exports" / "pix2pix" / "tflite" / "1" / "generator_int8.tflite")


def test_export_sweeps_a_killed_export_staging_folder(run, tmp_path, capsys):
    staging = tmp_path / "exports" / ".export-run.tmp-keras-pix2pix-999999999"
    staging.mkdir(parents=True)
    (staging / "half.tflite").write_bytes(b"half")
    (staging / ".keras-pix2pix-staging").write_bytes(b"")
    status, out, err = run_command(capsys, "export", "--model", run, "--output", tmp_path / "exports", "--format",
                                   "tflite", "--quantize", "none")
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "exports")) == ["run"]
