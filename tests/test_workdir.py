"""keras_pix2pix.workdir: the run folder's rules: refused fits change nothing, a broken config.json or a lock is
named, a trained generator is not replaced, leftovers are swept, a finished run says so.

Cases run the command line in this process (cli.main) on a copy of the trained run (the `run`
fixture), and assert no traceback, the exit status, the one line that names what is wrong, and
that every file that existed before is byte-identical afterwards.
"""

import os
import re
import shutil

import pytest
from conftest import TINY, fit_more, refused, run_command, snapshot

from keras_pix2pix import files

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
    status, output = fit_more(capsys, run)  # and the run goes on as before
    assert status == 0 and f"resuming {run} at step 2 of 3" in output


@pytest.mark.parametrize("contents", [b"null", b"[]", b"\xff\xfe\x00garbage", b'{"batch_size": "two"}'])
def test_a_broken_config_json_is_named(run, capsys, contents):
    with open(os.path.join(run, "config.json"), "wb") as file:
        file.write(contents)
    before = snapshot(run)
    refused(capsys, r"config\.json (is not readable JSON|holds an invalid setting).*use another --workdir", "fit",
            "--workdir", run, "--steps", "3")
    assert snapshot(run) == before


def test_a_workdir_inside_the_dataset_is_refused(trained, capsys):
    folder = trained[0]
    before = snapshot(folder)
    refused(capsys, r"--workdir .* is inside the dataset folder", "fit", "--dataset", folder, "--workdir",
            os.path.join(folder, "run"), *TINY)
    assert snapshot(folder) == before


def test_a_second_fit_on_a_locked_work_directory_is_refused(run, capsys):
    before = snapshot(run)
    with files.locked(run, "fit"):
        refused(capsys, rf"{re.escape(run)} is in use by fit \(process {os.getpid()}\): wait for it", "fit",
                "--workdir", run, "--steps", "3")
    assert {path: digest for path, digest in snapshot(run).items() if not path.endswith(".lock")} == {
        path: digest for path, digest in before.items() if not path.endswith(".lock")
    }


def test_a_trained_generator_without_checkpoints_is_not_replaced(run, capsys):
    shutil.rmtree(os.path.join(run, "checkpoints"))
    before = snapshot(run)
    refused(capsys, r"holds a generator\.keras but no checkpoint to resume: a new run would replace it", "fit",
            "--workdir", run, "--steps", "3")
    assert snapshot(run) == before


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
    status, output = fit_more(capsys, run)
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
