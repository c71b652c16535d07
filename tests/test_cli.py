import os
import subprocess
import sys

import pytest

from conftest import TINY, write_ab_folder
import keras_pix2pix
from keras_pix2pix import train
from keras_pix2pix.cli import main
from keras_pix2pix.config import Config



def _one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_flag_value_is_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--image-size", "abc"])
    assert exit_info.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert "argument --image-size: --image-size must be a positive size" in line


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
    # A refused run leaves no config.json that the corrected command would be held to.
    assert not os.path.exists(tmp_path / "run" / "config.json")


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.fixture
def handed_over(monkeypatch):
    """The Configs that fit hands to the training function (which is not run)."""
    configs = []
    def train_with(config, workdir, verbose=True, started=None, clock=None, train_step_factory=None):
        configs.append(config)

    monkeypatch.setattr(train, "train_with", train_with)
    return configs


def test_command_line_sizes_reach_training_with_their_own_load_size(tmp_path, handed_over):
    assert main(["fit", "--image-size", "64", "--workdir", str(tmp_path / "a")]) == 0
    assert handed_over[-1].image_size == (64, 64) and handed_over[-1].resolved_load_size == (72, 72)
    assert main(["fit", "--image-size", "128", "--load-size", "150", "--workdir", str(tmp_path / "b")]) == 0
    assert handed_over[-1].resolved_load_size == (150, 150)
    # The Python API follows the same rule.
    keras_pix2pix.fit(image_size=64, workdir=str(tmp_path / "c"))
    assert handed_over[-1] == Config(image_size=64)


def test_resuming_keeps_saved_settings_and_applies_the_flags_given_alike(tmp_path, handed_over):
    workdir = tmp_path / "run"
    workdir.mkdir()
    saved = Config(dataset="demo", image_size=64, load_size=80, batch_size=4, steps=400, seed=3, generator_filters=16)
    saved.save(workdir / "config.json")
    assert main(["fit", "--workdir", str(workdir), "--steps", "800", "--lr", "1e-4"]) == 0
    keras_pix2pix.fit(workdir=str(workdir), steps=800, learning_rate=1e-4)
    assert handed_over[0] == handed_over[1] == saved.replace(steps=800, learning_rate=1e-4)
    # Naming epochs drops the saved steps, through both doors.
    assert main(["fit", "--workdir", str(workdir), "--epochs", "3"]) == 0
    keras_pix2pix.fit(workdir=str(workdir), epochs=3)
    assert handed_over[2] == handed_over[3] == saved.replace(steps=None, epochs=3.0)
    # A change to the networks' shape is refused the same way too.
    assert main(["fit", "--workdir", str(workdir), "--generator-filters", "32"]) == 2
    with pytest.raises(ValueError, match=r"was trained with generator_filters=16 but this run asks for generator_filters=32"):
        keras_pix2pix.fit(workdir=str(workdir), generator_filters=32)
    assert Config.load(workdir / "config.json") == saved  # nothing was written


def test_default_workdir_is_named_after_the_dataset_not_its_parent(monkeypatch, tmp_path, handed_over):
    seen = []
    monkeypatch.setattr(train, "resolve_config", lambda workdir, config, settings, log: seen.append(workdir) or Config())
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    assert main(["fit", "--dataset", ".."]) == 0
    assert seen == [os.path.join("runs", tmp_path.name)]
