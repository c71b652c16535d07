import os
import subprocess
import sys

import pytest

from conftest import write_ab_folder
from keras_pix2pix.cli import main

TINY = ["--image-size", "32", "--generator-filters", "8", "--discriminator-filters", "8", "--discriminator-layers", "1"]


def _one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_flag_value_is_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--image-size", "abc"])
    assert exit_info.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "argument --image-size: image_size must be a positive size" in line


def test_missing_dataset_and_empty_folder(tmp_path, capsys):
    assert main(["fit", "--dataset", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "run")]) == 2
    assert "does not exist" in _one_line(capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    assert main(["fit", "--dataset", str(tmp_path / "empty"), "--workdir", str(tmp_path / "run")]) == 2
    assert _one_line(capsys.readouterr().err).startswith("keras-pix2pix: error: no images (.jpg, .jpeg, .png) in")


def test_invalid_setting_combination(tmp_path, capsys):
    folder = write_ab_folder(tmp_path / "pairs", count=1)
    code = main(["fit", "--dataset", folder, "--workdir", str(tmp_path / "run"), "--image-size", "48", "--steps", "1"])
    assert code == 2
    assert "image_size must be a multiple of 2**depth = 32" in _one_line(capsys.readouterr().err)


def test_fit_then_predict(tmp_path, capsys):
    folder = write_ab_folder(tmp_path / "pairs", count=2)
    workdir = str(tmp_path / "run")
    assert main(["fit", "--dataset", folder, "--workdir", workdir, "--steps", "2", "--seed", "1", *TINY]) == 0
    assert os.path.exists(os.path.join(workdir, "generator.keras"))
    # Resuming with only --steps keeps every other saved setting.
    assert main(["fit", "--workdir", workdir, "--steps", "3"]) == 0
    output = capsys.readouterr().out
    assert "resuming" in output and "at step 2 of 3" in output
    assert main(["predict", "--model", workdir, os.path.join(folder, "val"), "--output", str(tmp_path / "out"), "--pairs"]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "out")) == ["0.png", "1.png"]


def test_console_module_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_pix2pix", "fit", "--dataset", str(tmp_path / "absent"), "--workdir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "keras-pix2pix: error: dataset folder" in result.stderr


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "fit" in out and "predict" in out
