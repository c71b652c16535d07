"""keras_pix2pix.files: temporary names a sweep can prove are ours, staging, full disks, output folders."""

import errno
import os

import pytest
from conftest import TINY, png, refused

from keras_pix2pix import files
from keras_pix2pix.errors import Stopped

DEAD = 999999999  # no process has this id


def _touch(path, contents=b"mine"):
    with open(path, "wb") as file:
        file.write(contents)
    return path


def test_a_sweep_removes_only_marked_leftovers_of_dead_processes_and_says_which(tmp_path):
    ours = _touch(tmp_path / f".generator.tmp-keras-pix2pix-{DEAD}.keras")
    staging = tmp_path / f".export-run.tmp-keras-pix2pix-{DEAD}"
    staging.mkdir()
    _touch(staging / files.STAGING_MARKER, b"")
    _touch(staging / "half.tflite")
    running = _touch(tmp_path / f".config.tmp-keras-pix2pix-{os.getpid()}.json")  # a live process's: kept
    unmarked = tmp_path / f".photos.tmp-keras-pix2pix-{DEAD}"  # named like ours, without the marker: not ours
    unmarked.mkdir()
    _touch(unmarked / "1.jpg")
    users = [_touch(tmp_path / f".thesis.tmp-{DEAD}.tex"), _touch(tmp_path / "checkpoint.tmp0123abcd")]
    (tmp_path / f".dataset.tmp-{DEAD}").mkdir()
    lines = []
    removed = files.sweep_leftovers(str(tmp_path), lines.append)
    assert sorted(removed) == sorted([str(ours), str(staging)])
    assert lines == [
        f"removed what an interrupted keras-pix2pix command left in {tmp_path}: "
        f".export-run.tmp-keras-pix2pix-{DEAD}, .generator.tmp-keras-pix2pix-{DEAD}.keras"
    ]
    assert all(os.path.exists(path) for path in [running, unmarked / "1.jpg", *users, tmp_path / f".dataset.tmp-{DEAD}"])


def test_the_current_folder_is_never_swept(tmp_path, monkeypatch):
    ours = _touch(tmp_path / f".generator.tmp-keras-pix2pix-{DEAD}.keras")
    monkeypatch.chdir(tmp_path)
    assert files.sweep_leftovers(".", print) == [] and files.sweep_leftovers(str(tmp_path), print) == []
    assert os.path.exists(ours)


def test_a_stop_inside_replacing_removes_the_temporary_file_and_names_it(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(Stopped) as stop:
        with files.replacing(str(target)) as temporary:
            _touch(temporary)
            raise Stopped("SIGTERM")
    assert stop.value.removed == [temporary] and os.listdir(tmp_path) == []


def test_a_staging_folder_goes_whatever_happens_and_a_stop_learns_it(tmp_path):
    with files.staging_folder(str(tmp_path), "export-run") as staging:
        assert os.listdir(staging) == [files.STAGING_MARKER]
        _touch(os.path.join(staging, "model.tflite"))
    assert os.listdir(tmp_path) == []
    with pytest.raises(Stopped) as stop:
        with files.staging_folder(str(tmp_path), "export-run") as staging:
            raise Stopped("SIGINT")
    assert stop.value.removed == [staging] and os.listdir(tmp_path) == []


def test_a_failed_command_leaves_no_empty_folder_it_made_and_keeps_the_users(tmp_path):
    existing = tmp_path / "mine"
    existing.mkdir()
    with pytest.raises(OSError):
        with files.output_folder(str(existing), "--output"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert existing.is_dir()
    made = tmp_path / "new" / "deeper"
    with pytest.raises(OSError):
        with files.output_folder(str(made), "--output"):
            os.makedirs(made / "images")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(os.listdir(tmp_path)) == ["mine"]
    with pytest.raises(OSError):
        with files.output_folder(str(made), "--output"):
            _touch(made / "kept.png")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert os.listdir(made) == ["kept.png"]  # what was written before the failure stays


@pytest.mark.parametrize(
    "error, expected",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/out/x.png"), "/data/out/x.png"),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "/data/out/x.png"), "/data/out/x.png"),
        # A file inside a staging folder is shown as the folder the user named, and the file's name.
        (OSError(errno.ENOSPC, "No space left on device", f"/data/out/.export-run.tmp-keras-pix2pix-{DEAD}/tflite/a.tflite"),
         "/data/out (a.tflite)"),
        # TensorFlow's text: its node names look like paths too; the nearest existing folder is named.
        (RuntimeError("{{function_node __wrapped__SaveV2_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
                      "TMP/checkpoints/ckpt-4_temp/part-00000-of-00001.data.tempstate123; No space left on device [Op:SaveV2]"),
         "TMP/checkpoints"),
        (OSError(errno.ENOSPC, "No space left on device"), ""),
        (OSError(errno.ENOENT, "No such file or directory", "/x"), None),
        (ValueError("a bad value"), None),
    ],
)
def test_a_full_disk_is_recognized_in_any_layer_and_named(tmp_path, error, expected):
    (tmp_path / "checkpoints").mkdir()
    if isinstance(error, RuntimeError):
        error = RuntimeError(str(error).replace("TMP", str(tmp_path)))
        expected = expected.replace("TMP", str(tmp_path))
    assert files.full_disk_path(error) == expected
    try:  # as the cause of another error too (checkpoints.save wraps TensorFlow's)
        raise RuntimeError("could not write the checkpoint") from error
    except RuntimeError as wrapped:
        assert files.full_disk_path(wrapped) == expected


def test_a_process_id_too_large_to_exist_is_a_dead_process(tmp_path):
    ours = _touch(tmp_path / f".generator.tmp-keras-pix2pix-{10**30}.keras")
    assert files.sweep_leftovers(str(tmp_path), lambda line: None) == [str(ours)]


# --- an output that is a file, on every command -----------------------------------------------------


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
