"""keras_pix2pix.checkpoints: a damaged state file or newest checkpoint is repaired from what is intact, or refused.

Cases run the command line in this process (cli.main) on a copy of the trained run (the `run`
fixture), and assert no traceback, the exit status and the one line that names what is wrong.
"""

import json
import os
import re

import pytest
import tensorflow as tf
from conftest import fit_more, png, refused, run_command, snapshot


@pytest.mark.parametrize("state", ["garbage", "empty", "missing files"])
def test_a_damaged_state_file_resumes_from_the_checkpoints_beside_it(run, capsys, state):
    contents = {"garbage": "garbage\n", "empty": "", "missing files": 'model_checkpoint_path: "ckpt-9"\n'}[state]
    with open(os.path.join(run, "checkpoints", "checkpoint"), "w") as file:
        file.write(contents)
    status, output = fit_more(capsys, run)
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
    status, output = fit_more(capsys, run)
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
            "--workdir", run, "--steps", "3")
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
            "--model", run, tmp_path / "x.png", "--output", tmp_path / "out")
