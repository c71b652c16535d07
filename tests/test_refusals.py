"""Refusals a hostile tester found wanting (issue 28, item 9): each is one line naming what the user gave.

The flag as typed (never an internal setting's name), the file at fault and what is wrong with
it, status 2 for what the user can fix (1 for a download that failed), no traceback, and nothing
written before the refusal.
"""

import os
import sys

import pytest
from conftest import png, refused, run_command

from keras_pix2pix import evaluation
from keras_pix2pix.config import UsageError
from keras_pix2pix.translation import predict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "export"))
import tflite_tiles


@pytest.fixture
def scored_folders(tmp_path):
    """(predictions, targets): one image each, of the same name and size."""
    for folder in ("predictions", "targets"):
        (tmp_path / folder).mkdir()
        png(tmp_path / folder / "a.png", 32, 32)
    return str(tmp_path / "predictions"), str(tmp_path / "targets")


# --- a. the download of a pretrained model names the models' mirror variable -------------------------


def test_an_offline_pretrained_import_names_the_models_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_PIX2PIX_MODELS_URL", (tmp_path / "offline").as_uri())
    line = refused(capsys, r"could not download .*facades_label2photo\.pth", "import", "facades_label2photo",
                   "--workdir", tmp_path / "run", "--data-dir", tmp_path / "data")
    assert "set KERAS_PIX2PIX_MODELS_URL to a mirror, or download the model file by hand" in line
    assert "DATASETS_URL" not in line and "archive" not in line
    assert not os.path.exists(tmp_path / "run")


# --- b. --tile-overlap: checked as it is parsed, and only where tiles run ----------------------------


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("sizing", ["resize", "native"])
def test_a_tile_overlap_where_no_tile_runs_is_refused(tmp_path, capsys, identity_model, command, sizing):
    png(tmp_path / "x.png")
    arguments = {
        "predict": ["predict", "--model", identity_model, tmp_path / "x.png"],
        "evaluate": ["evaluate", "--model", identity_model, "--dataset", tmp_path],
    }[command]
    refused(capsys, rf"--tile-overlap applies only to --sizing tiles or auto; got --sizing {sizing}$", *arguments,
            "--output", tmp_path / "out", "--sizing", sizing, "--tile-overlap", "7")
    assert not os.path.exists(tmp_path / "out")


def test_evaluates_default_sizing_runs_no_tile_either(tmp_path, capsys, identity_model):
    refused(capsys, r"--tile-overlap applies only to --sizing tiles or auto; got --sizing resize$", "evaluate",
            "--model", identity_model, "--output", tmp_path / "out", "--tile-overlap", "0.2")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_tile_overlap_out_of_range_is_refused_before_anything_is_written(tmp_path, capsys, identity_model, command):
    # The small image is resized and the large one tiled: the overlap was checked only at the large
    # one, after the small one's output was written.
    images = tmp_path / "images"
    images.mkdir()
    png(images / "a.png", 16, 16)
    png(images / "b.png", 48, 48)
    arguments = {
        "predict": ["predict", "--model", identity_model, images / "a.png", images / "b.png"],
        "evaluate": ["evaluate", "--predictions", images, "--targets", images],
    }[command]
    line = refused(capsys, r"--tile-overlap must be a number >= 0\.0 and <= 0\.5; got 0\.9$", *arguments,
                   "--output", tmp_path / "out", "--sizing", "auto", "--tile-overlap", "0.9")
    assert "tile_overlap" not in line
    assert not os.path.exists(tmp_path / "out")


def test_python_callers_are_named_their_arguments(tmp_path, identity_model):
    png(tmp_path / "x.png")
    with pytest.raises(UsageError, match=r"^tile_overlap applies only to sizing tiles or auto; got sizing native$"):
        predict(identity_model, [str(tmp_path / "x.png")], str(tmp_path / "out"), sizing="native", tile_overlap=0.2)
    with pytest.raises(UsageError, match=r"^tile_overlap must be a number >= 0\.0 and <= 0\.5; got -0\.1$"):
        evaluation.evaluate(identity_model, str(tmp_path / "report"), sizing="tiles", tile_overlap=-0.1)
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "report")


def test_the_tflite_tiles_client_checks_its_overlap_as_it_parses():
    assert tflite_tiles._overlap("0.25") == 0.25
    pattern = r"^--overlap must be a number >= 0\.0 and <= 0\.5; got 0\.9$"
    with pytest.raises(tflite_tiles.argparse.ArgumentTypeError, match=pattern):
        tflite_tiles._overlap("0.9")
    with pytest.raises(tflite_tiles.argparse.ArgumentTypeError, match=r"^--overlap must be a number; got 'wide'$"):
        tflite_tiles._overlap("wide")


# --- c. predictions of another size than their targets ------------------------------------------------


def test_a_prediction_of_another_size_than_its_target_is_refused(tmp_path, capsys, scored_folders):
    predictions, targets = scored_folders
    png(os.path.join(predictions, "b.png"), 24, 40)
    png(os.path.join(targets, "b.png"), 32, 32)
    refused(capsys, r"predictions/b\.png is 40x24 but its target .*targets/b\.png is 32x32: a prediction must have its "
            r"target's size$", "evaluate", "--predictions", predictions, "--targets", targets, "--output",
            tmp_path / "report")
    assert not os.path.exists(tmp_path / "report" / "metrics.json")


# --- d. --fid without its weights --------------------------------------------------------------------


def test_fid_with_a_garbage_weights_file_is_refused_before_anything_is_written(tmp_path, capsys, scored_folders):
    garbage = tmp_path / "inception.h5"
    garbage.write_bytes(b"not an HDF5 file")
    predictions, targets = scored_folders
    flags = ["evaluate", "--predictions", predictions, "--targets", targets, "--output", tmp_path / "report"]
    line = refused(capsys, r"--inception-weights .*inception\.h5 cannot be loaded as InceptionV3's weights: ",
                   *flags, "--fid", "--inception-weights", garbage)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in line
    refused(capsys, r"--inception-weights .*absent\.h5 does not exist$", *flags, "--fid", "--inception-weights",
            tmp_path / "absent.h5")
    refused(capsys, r"--inception-weights /dev/zero is a character device, not a regular file", *flags, "--fid",
            "--inception-weights", "/dev/zero")
    assert not os.path.exists(tmp_path / "report")
    # Not asked for FID: the weights are not looked at.
    assert run_command(capsys, *flags, "--inception-weights", garbage)[0] == 0


def test_fid_whose_weights_cannot_be_downloaded_fails_with_status_1(tmp_path, capsys, monkeypatch, scored_folders):
    def offline(weights):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- no network")  # noqa: TRY002 - as Keras raises it

    monkeypatch.setattr(evaluation, "inception_extractor", offline)
    predictions, targets = scored_folders
    line = refused(capsys, r"inception_v3_weights_tf_dim_ordering_tf_kernels_notop\.h5: the download of InceptionV3's "
                   r"ImageNet weights .* failed: URL fetch failure .*; try again, or pass --inception-weights FILE",
                   "evaluate", "--predictions", predictions, "--targets", targets, "--output", tmp_path / "report",
                   "--fid", status=1)
    assert "internal error" not in line
    assert not os.path.exists(tmp_path / "report")


# --- f. a device given as a file or a folder ----------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_named_as_a_device_not_as_missing(tmp_path, capsys, identity_model, scored_folders):
    device = r"/dev/zero is a character device, not a regular file"
    refused(capsys, rf"input {device}: give an image file or a folder$", "predict", "--model", identity_model,
            "/dev/zero", "--output", tmp_path / "out")
    refused(capsys, rf"model {device}", "predict", "--model", "/dev/zero", png(tmp_path / "x.png"), "--output",
            tmp_path / "out")
    refused(capsys, rf"dataset {device}", "fit", "--dataset", "/dev/zero", "--workdir", tmp_path / "run")
    refused(capsys, rf"dataset folder {device}", "evaluate", "--model", identity_model, "--dataset", "/dev/zero",
            "--output", tmp_path / "report")
    refused(capsys, rf"folder {device}", "evaluate", "--predictions", "/dev/zero", "--targets", scored_folders[1],
            "--output", tmp_path / "report2")
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "run" / "config.json")


# --- g. messages name the flags, not the settings behind them -----------------------------------------


@pytest.mark.parametrize(
    "arguments, pattern",
    [
        (
            ["predict", "--model", "M", "x.png", "--output", "out", "--max-pixels", "0"],
            r"--max-pixels must be an integer >= 1; got 0$",
        ),
        (["evaluate", "--model", "M", "--output", "out", "--max-pixels", "-5"], r"--max-pixels must be an integer >= 1; got -5$"),
        (["export", "--model", "M", "--output", "out", "--max-pixels", "0"], r"--max-pixels must be an integer >= 1; got 0$"),
        (["fit", "--workdir", "run", "--max-pixels", "0"], r"--max-pixels must be an integer >= 1; got 0$"),
        (["fit", "--workdir", "run", "--lr", "0"], r"--lr must be a number > 0\.0; got 0\.0$"),
        (["fit", "--workdir", "run", "--batch-size", "0"], r"--batch-size must be an integer >= 1; got 0$"),
    ],
)
def test_refusals_name_the_flag_given(tmp_path, capsys, identity_model, arguments, pattern):
    arguments = [identity_model if argument == "M" else tmp_path / argument if argument in ("out", "run") else argument
                 for argument in arguments]
    line = refused(capsys, pattern, *arguments)
    assert not [word for word in line.split() if word.strip(":;,") in ("max_pixels", "learning_rate", "batch_size")], line
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "run")


def test_a_bad_size_names_its_own_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_command(capsys, "fit", "--load-size", "big")
    assert exit_info.value.code == 2
    assert "argument --load-size: --load-size must be a positive size such as 256 or 256x512" in capsys.readouterr().err
