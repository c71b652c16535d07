"""Hostile and careless use, one case per class of what it found (issue 15).

Every case runs the command line in this process (cli.main), and asserts: no traceback, the exit
status, the one line that names what is wrong, and that every file that existed before is
byte-identical afterwards unless the command's purpose was to change it. Kills, full disks and
memory bounds are in tests/test_stops.py.
"""

import functools
import json
import os
import re
import shutil
import signal
import tarfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, huge_png, png, refused, run_command, snapshot, write_ab_folder

from keras_pix2pix import exports, files, train


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run in tmp_path/run (modification times kept)."""
    copy = str(tmp_path / "run")
    shutil.copytree(trained[1], copy)
    return copy


# --- 1. predict never loses data -------------------------------------------------------------


def test_huge_png_helper_writes_a_valid_png(tmp_path):
    image = tf.io.decode_png(open(huge_png(tmp_path / "small.png", 7, 5), "rb").read())
    assert image.shape == (5, 7, 3) and int(tf.reduce_max(image)) == 0


@pytest.mark.parametrize("where", ["same", "inside"])
def test_predict_refuses_an_output_in_its_input_folder(run, tmp_path, capsys, where):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    png(inputs / "x.png")
    output = inputs if where == "same" else inputs / "translated"
    before = snapshot(tmp_path)
    refused(capsys, r"--output .* is the input folder .* or inside it", "predict", "--model", run, inputs, "--output", output)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("layout", ["two_kinds", "two_folders"])
def test_predict_refuses_inputs_that_share_an_output_name(run, tmp_path, capsys, layout):
    first, second = tmp_path / "a", tmp_path / ("a" if layout == "two_kinds" else "b")
    first.mkdir(exist_ok=True)
    second.mkdir(exist_ok=True)
    png(first / "x.png")
    with open(second / ("x.jpg" if layout == "two_kinds" else "x.png"), "wb") as file:
        file.write(tf.io.encode_jpeg(np.zeros((16, 16, 3), np.uint8)).numpy())
    inputs = [first] if layout == "two_kinds" else [first, second]
    refused(capsys, r"x\.\w+ and .*x\.\w+ would both be written to .*x\.png", "predict", "--model", run, *inputs,
            "--output", tmp_path / "out")  # fmt: skip
    assert not os.path.exists(tmp_path / "out")


def test_predict_replaces_existing_outputs_only_when_asked(run, tmp_path, capsys):
    png(tmp_path / "x.png")
    output = tmp_path / "out"
    output.mkdir()
    mine = png(output / "x.png", seed=1)
    before = snapshot(output)
    refused(capsys, r"out/x\.png exists already \(1 of the 1 outputs do\): pass --overwrite", "predict", "--model", run,
            tmp_path / "x.png", "--output", output)  # fmt: skip
    assert snapshot(output) == before
    status, out, _ = run_command(capsys, "predict", "--model", run, tmp_path / "x.png", "--output", output, "--overwrite")
    assert status == 0 and "wrote 1 image(s)" in out
    assert snapshot(output) != before and os.path.exists(mine)


# --- 2. a damaged work directory is repaired from what is intact, or refused ---------------------


def _fit_more(capsys, run, steps=3):
    status, out, err = run_command(capsys, "fit", "--workdir", run, "--steps", steps)
    return status, out + err


@pytest.mark.parametrize("state", ["garbage", "empty", "missing files"])
def test_a_damaged_state_file_resumes_from_the_checkpoints_beside_it(run, capsys, state):
    contents = {"garbage": "garbage\n", "empty": "", "missing files": 'model_checkpoint_path: "ckpt-9"\n'}[state]
    with open(os.path.join(run, "checkpoints", "checkpoint"), "w") as file:
        file.write(contents)
    status, output = _fit_more(capsys, run)
    assert status == 0, output
    assert f"resuming {run} at step 2 of 3" in output
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-3")


@pytest.mark.parametrize("damage", ["truncated index", "truncated data", "missing data"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(run, capsys, damage):
    folder = os.path.join(run, "checkpoints")
    if damage == "truncated index":
        os.truncate(os.path.join(folder, "ckpt-2.index"), 10)
    elif damage == "truncated data":
        os.truncate(os.path.join(folder, "ckpt-2.data-00000-of-00001"), 100)
    else:
        os.remove(os.path.join(folder, "ckpt-2.data-00000-of-00001"))
    status, output = _fit_more(capsys, run)
    assert status == 0, output
    assert re.search(r"warning: checkpoint .*ckpt-2 is damaged \(.+\); moved to .*damaged", output)
    assert f"resuming {run} at step 1 of 3" in output
    assert "ckpt-2.index" in os.listdir(os.path.join(folder, "damaged"))


def test_no_readable_checkpoint_is_refused_and_nothing_changes(run, capsys):
    folder = os.path.join(run, "checkpoints")
    for name in os.listdir(folder):
        if name.endswith(".index"):
            os.truncate(os.path.join(folder, name), 10)
    before = snapshot(run)
    refused(capsys, r"no checkpoint in .*checkpoints can be read \(the newest, ckpt-2: .*\); move .* away", "fit",
            "--workdir", run, "--steps", "3")  # fmt: skip
    assert snapshot(run) == before


# Refused one after the other on one work directory, which then resumes once: a fit per case
# would cost a resume each and check nothing more.
REFUSED_FITS = [
    (["--precision", "mixed_float16"], r"trained with precision='float32'.*cannot change to or from mixed_float16"),
    (["--image-size", "64"], r"was trained with image_size=\[32, 32\] but this run asks for image_size=\[64, 64\]"),
    (["--image-size", "100"], r"was trained with image_size"),
    (["--steps", "1"], r"has trained 2 steps, more than the 1 this run asks for"),
    (["--generator-filters", "0"], r"--generator-filters must be an integer >= 1; got 0"),
]


def test_a_refused_fit_leaves_the_work_directory_as_it_was(run, capsys):
    before = snapshot(run)
    for flags, pattern in REFUSED_FITS:
        refused(capsys, pattern, "fit", "--workdir", run, *flags)
        assert snapshot(run) == before, flags
    status, output = _fit_more(capsys, run)  # and the run goes on as before
    assert status == 0 and f"resuming {run} at step 2 of 3" in output


@pytest.mark.parametrize("contents", [b"null", b"[]", b"\xff\xfe\x00garbage", b'{"batch_size": "two"}'])
def test_a_broken_config_json_is_named(run, capsys, contents):
    with open(os.path.join(run, "config.json"), "wb") as file:
        file.write(contents)
    before = snapshot(run)
    refused(capsys, r"config\.json (is not readable JSON|holds an invalid setting).*use another --workdir", "fit",
            "--workdir", run, "--steps", "3")  # fmt: skip
    assert snapshot(run) == before


def test_a_damaged_generator_keras_falls_back_to_the_checkpoint(run, tmp_path, capsys):
    with open(os.path.join(run, "generator.keras"), "wb") as file:
        file.write(b"PK\x03\x04 not really a zip")
    png(tmp_path / "x.png")
    status, out, err = run_command(capsys, "predict", "--model", run, tmp_path / "x.png", "--output", tmp_path / "out")
    assert status == 0
    assert "generator.keras is damaged or not a .keras file" in err and "latest checkpoint instead" in err
    assert os.path.exists(tmp_path / "out" / "x.png")


def test_a_config_edited_away_from_its_checkpoint_is_refused(run, tmp_path, capsys):
    os.remove(os.path.join(run, "generator.keras"))
    path = os.path.join(run, "config.json")
    settings = json.load(open(path))
    settings["generator_filters"] = 4
    json.dump(settings, open(path, "w"))
    png(tmp_path / "x.png")
    refused(capsys, r"the checkpoint in .* does not fit this run's settings \(was config\.json edited", "predict",
            "--model", run, tmp_path / "x.png", "--output", tmp_path / "out")  # fmt: skip


def test_a_workdir_inside_the_dataset_is_refused(trained, capsys):
    folder = trained[0]
    before = snapshot(folder)
    refused(capsys, r"--workdir .* is inside the dataset folder", "fit", "--dataset", folder, "--workdir",
            os.path.join(folder, "run"), *TINY)  # fmt: skip
    assert snapshot(folder) == before


def test_a_second_fit_on_a_locked_work_directory_is_refused(run, capsys):
    before = snapshot(run)
    with files.locked(run, "fit"):
        refused(capsys, rf"{re.escape(run)} is in use by fit \(process {os.getpid()}\): wait for it", "fit",
                "--workdir", run, "--steps", "3")  # fmt: skip
    assert {path: digest for path, digest in snapshot(run).items() if not path.endswith(".lock")} == {
        path: digest for path, digest in before.items() if not path.endswith(".lock")
    }


def test_a_trained_generator_without_checkpoints_is_not_replaced(run, capsys):
    shutil.rmtree(os.path.join(run, "checkpoints"))
    before = snapshot(run)
    refused(capsys, r"holds a generator\.keras but no checkpoint to resume: a new run would replace it", "fit",
            "--workdir", run, "--steps", "3")  # fmt: skip
    assert snapshot(run) == before


# --- 3. no hang ----------------------------------------------------------------------------------


@pytest.fixture
def always_nan(monkeypatch):
    """Every training step reports a non-finite loss (fit's train_step_factory, under the command line's fit)."""

    def factory(*arguments, **keywords):
        real = train.make_train_step(*arguments, **keywords)

        def step(inputs, targets):
            return {**real(inputs, targets), "generator_total": tf.constant(np.nan), "finite": tf.constant(False)}

        return step

    monkeypatch.setattr(train, "fit", functools.partial(train.fit, train_step_factory=factory))


def _hung(number, frame):
    raise TimeoutError("fit did not give up within 900 s")


def test_on_nan_skip_gives_up_when_the_loss_stays_non_finite(run, capsys, always_nan):
    # A hang fails the test through the alarm rather than block the suite. The alarm needs a
    # handler: SIGALRM's default action ends the process, here the test worker, and the bound
    # is far above the 35 s this takes, so that a busy machine does not trip it.
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(900)
    try:
        line = refused(capsys, r"non-finite loss 11 times since .*ckpt-2, rolled back each time .* diverged", "fit",
                       "--workdir", run, "--steps", "50", "--on-nan", "skip", status=1)  # fmt: skip
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "lower --learning-rate" in line
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-2")


# --- 4. memory is bounded by the header, before decoding -----------------------------------------


def test_fit_refuses_a_huge_image_from_its_header(tmp_path, capsys, huge):
    folder = tmp_path / "pairs"
    folder.mkdir()
    png(folder / "0.png", 32, 64)
    shutil.copy(huge, folder / "1.png")
    refused(capsys, r"1\.png is 20000x20000 \(400 megapixels\), over the limit of 50 megapixels \(--max-pixels",
            "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY)  # fmt: skip
    status, output = run_command(capsys, "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY,
                                 "--steps", "1", "--skip-bad")[:2]  # fmt: skip
    assert status == 0 and "skipped 1 bad file(s) of 2" in output


def test_predict_refuses_a_huge_image_and_skips_it_when_asked(run, tmp_path, capsys, huge):
    refused(capsys, r"huge\.png is 20000x20000 .* over the limit of 0\.1 megapixels .*--skip-bad goes on past it",
            "predict", "--model", run, huge, "--output", tmp_path / "out", "--max-pixels", "100000")  # fmt: skip
    png(tmp_path / "small.png")
    status, out, _ = run_command(capsys, "predict", "--model", run, huge, tmp_path / "small.png", "--output",
                                 tmp_path / "out", "--skip-bad")  # fmt: skip
    assert status == 0 and "skipped 1 bad input(s) of 2; the first: " in out and "wrote 1 image(s)" in out


# --- 5. archives ---------------------------------------------------------------------------------


def test_a_truncated_manual_archive_is_one_line(tmp_path, capsys):
    manual = tmp_path / "manual"
    write_ab_folder(tmp_path / "facades", count=2, splits=("train", "val", "test"))
    manual.mkdir()
    archive = manual / "facades.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "facades", arcname="facades")
    os.truncate(archive, os.path.getsize(archive) // 2)
    before = snapshot(manual)
    refused(capsys, r"facades\.tar\.gz is damaged \(truncated or corrupt", "fit", "--dataset", "facades", "--manual-dir",
            manual, "--data-dir", tmp_path / "data", "--workdir", tmp_path / "run", *TINY)  # fmt: skip
    assert snapshot(manual) == before


# --- 6. one line, not a traceback ------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_trains_and_translates(tmp_path, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1, not UTF-8
    png(folder / name, 32, 64)
    status, out, err = run_command(capsys, "fit", "--dataset", folder, "--workdir", tmp_path / "run", *TINY, "--steps", "1")
    assert status == 0, err
    status, out, err = run_command(capsys, "predict", "--model", tmp_path / "run", folder / name, "--output", tmp_path / "out")
    assert status == 0, err
    assert os.fsencode(os.listdir(tmp_path / "out")[0]) == b"caf\xe9.png"


@pytest.mark.parametrize("command", ["fit", "predict", "evaluate", "export"])
@pytest.mark.parametrize("under", [False, True])
def test_an_output_that_is_a_file_is_named(run, trained, tmp_path, capsys, command, under):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    target = blocker / "out" if under else blocker
    png(tmp_path / "x.png")
    arguments = {
        "fit": ["fit", "--dataset", trained[0], "--workdir", target, *TINY],
        "predict": ["predict", "--model", run, tmp_path / "x.png", "--output", target],
        "evaluate": ["evaluate", "--model", run, "--split", "val", "--output", target],
        "export": ["export", "--model", run, "--output", target, "--format", "tflite", "--quantize", "none"],
    }[command]
    flag = "--workdir" if command == "fit" else "--output"
    expected = r"sits under .*notes\.txt, which is a file" if under else r"notes\.txt is a file, not a folder"
    refused(capsys, rf"{flag} .*{expected}", *arguments)
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--image-size", "1", "--discriminator-layers", "0"], r"image_size must be at least 2 on each side"),
        (["--image-size", "100"], r"image_size must be a multiple of 2\*\*depth = 64 on each side"),
        (["--steps", str(2**64)], r"steps must be an integer between 1 and 9007199254740992; got 18446744073709551616"),
        (["--epochs", "1e300"], r"epochs must be a number > 0\.0 and <= 9\.0072e\+15"),
    ],
)
def test_impossible_sizes_and_lengths_are_named(trained, tmp_path, capsys, flags, pattern):
    refused(capsys, pattern, "fit", "--dataset", trained[0], "--workdir", tmp_path / "run", *TINY, *flags)
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_predict_pairs_on_an_image_too_narrow_to_split(run, tmp_path, capsys):
    png(tmp_path / "thin.png", 16, 1)
    refused(capsys, r"thin\.png is 1 px wide: an AB pair image needs an even width", "predict", "--model", run,
            tmp_path / "thin.png", "--output", tmp_path / "out", "--pairs")  # fmt: skip


def test_a_corrupt_prediction_is_named_by_evaluate(tmp_path, capsys):
    for folder in ("predictions", "targets"):
        (tmp_path / folder).mkdir()
        png(tmp_path / folder / "a.png")
    (tmp_path / "predictions" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    png(tmp_path / "targets" / "b.png")
    refused(capsys, r"predictions/b\.png is not a readable JPEG or PNG image", "evaluate", "--predictions",
            tmp_path / "predictions", "--targets", tmp_path / "targets", "--output", tmp_path / "report")  # fmt: skip


def test_an_invalid_tf_config_is_named(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{bad")
    refused(capsys, r"TF_CONFIG is not valid JSON", "fit", "--dataset", trained[0], "--workdir", tmp_path / "run",
            *TINY, "--strategy", "multiworker")  # fmt: skip


def test_a_data_directory_that_is_a_file_is_named(tmp_path, capsys):
    (tmp_path / "data").write_text("mine")
    refused(capsys, r"the data directory .*data is a file, not a folder", "fit", "--dataset", "demo", "--data-dir",
            tmp_path / "data", "--workdir", tmp_path / "run", *TINY)  # fmt: skip


def test_a_model_file_that_is_unsafe_or_not_a_generator_is_refused(tmp_path, capsys):
    inputs = keras.Input((32, 32, 3))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda images: images * 2.0)(inputs))
    unsafe.save(tmp_path / "unsafe.keras")
    classifier = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    classifier.save(tmp_path / "classifier.keras")
    png(tmp_path / "x.png")
    refused(capsys, r"unsafe\.keras cannot be loaded as a Keras model: it holds Python code \(a Lambda layer\)",
            "predict", "--model", tmp_path / "unsafe.keras", tmp_path / "x.png", "--output", tmp_path / "out")  # fmt: skip
    refused(capsys, r"classifier\.keras is not an image-to-image generator: it maps \(None, 32, 32, 3\) to \(None, 2\)",
            "predict", "--model", tmp_path / "classifier.keras", tmp_path / "x.png", "--output", tmp_path / "out")  # fmt: skip


# --- 7. leftovers and small lies -------------------------------------------------------------------


def test_leftovers_of_killed_commands_are_swept_at_the_next_start(run, capsys):
    leftovers = [
        os.path.join(run, "checkpoints", "ckpt-9_temp"),
        os.path.join(run, "checkpoints", "checkpoint.tmp0123abcd"),
        os.path.join(run, ".generator.tmp-keras-pix2pix-999999999.keras"),
        os.path.join(run, ".config.tmp-keras-pix2pix-999999999.json"),
    ]
    os.makedirs(os.path.join(leftovers[0], "part"))
    for path in leftovers[1:]:
        open(path, "w").close()
    status, output = _fit_more(capsys, run)
    assert status == 0, output
    assert not any(os.path.exists(path) for path in leftovers)


def test_a_finished_run_says_so_and_writes_nothing(run, capsys):
    before = snapshot(run)
    status, out, err = run_command(capsys, "fit", "--workdir", run)
    assert status == 0, err
    assert f"{run} is finished (step 2 of 2, generator.keras written): nothing to do; to train longer, run it " \
           "again with more --steps, --epochs or --duration" in out
    assert "resuming" not in out
    assert snapshot(run) == before


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--name", ""], r"--name must hold letters or digits .*; got ''"),
        (["--format", "saved_model", "--quantize", "bogus"], r"quantize must be one of none, float16, dynamic, int8, int8_io; got 'bogus'"),
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
    refused(capsys, r"int8 quantization needs calibration images: pass --calibration-dataset \(a bare \.keras file",
            "export", "--model", bare, "--output", tmp_path / "exports", *flags)  # fmt: skip
    status, out, err = run_command(capsys, "export", "--model", bare, "--output", tmp_path / "exports", *flags,
                                   "--calibration-dataset", json.load(open(os.path.join(run, "config.json")))["dataset"])  # fmt: skip
    assert status == 0, err
    assert os.path.exists(tmp_path / "exports" / "pix2pix" / "tflite" / "1" / "generator_int8.tflite")


def test_export_sweeps_a_killed_export_staging_folder(run, tmp_path, capsys):
    staging = tmp_path / "exports" / ".export-run.tmp-keras-pix2pix-999999999"
    staging.mkdir(parents=True)
    (staging / "half.tflite").write_bytes(b"half")
    (staging / ".keras-pix2pix-staging").write_bytes(b"")
    status, out, err = run_command(capsys, "export", "--model", run, "--output", tmp_path / "exports", "--format",
                                   "tflite", "--quantize", "none")  # fmt: skip
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "exports")) == ["run"]


def test_predict_skip_bad_goes_on_past_a_corrupt_input(run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    png(inputs / "a.png")
    (inputs / "b.png").write_bytes(b"not an image")
    png(inputs / "c.png")
    refused(capsys, r"b\.png is not a readable JPEG or PNG image .*\(1 image\(s\) written before it; --skip-bad",
            "predict", "--model", run, inputs, "--output", tmp_path / "out")  # fmt: skip
    status, out, _ = run_command(capsys, "predict", "--model", run, inputs, "--output", tmp_path / "out2", "--skip-bad")
    assert status == 0 and "skipped 1 bad input(s) of 3" in out
    assert sorted(os.listdir(tmp_path / "out2")) == ["a.png", "c.png"]


def test_the_serving_signature_answers_an_empty_batch_and_refuses_a_huge_image(run, tmp_path):
    generator = keras.models.load_model(os.path.join(run, "generator.keras"))
    folder = str(tmp_path / "saved_model")
    exports.write_saved_model(generator, folder, max_pixels=10_000)
    serve = tf.saved_model.load(folder).signatures["serving_default"]
    assert serve(image_bytes=tf.constant([], tf.string))["output_bytes"].shape == (0,)
    small = tf.io.encode_png(tf.zeros((50, 60, 3), tf.uint8))
    assert tf.io.decode_png(serve(image_bytes=tf.stack([small]))["output_bytes"][0]).shape == (50, 60, 3)
    large = tf.io.encode_png(tf.zeros((101, 100, 3), tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"larger than the limit of 10000 pixels"):
        serve(image_bytes=tf.stack([small, large]))
