"""keras_pix2pix.console: the command line quiets TensorFlow while it runs, and leaves the caller's process as it was."""

import logging
import os
import warnings

from keras_pix2pix import cli


def _process_settings():
    return (
        list(warnings.filters),
        {name: logging.getLogger(name).level for name in ("absl", "tensorflow", "keras", "tensorflow_datasets")},
        {name: os.environ.get(name) for name in ("TF_CPP_MIN_LOG_LEVEL", "AUTOGRAPH_VERBOSITY")},
        os.fstat(2).st_ino,  # file descriptor 2 is the caller's again, not the filter's pipe
    )


def test_a_command_leaves_warnings_loggers_environment_and_stderr_as_it_found_them(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUTOGRAPH_VERBOSITY", raising=False)
    logging.getLogger("tensorflow").setLevel(logging.INFO)
    before = _process_settings()
    # A command that quiets TensorFlow, imports it and fails: the quieting is undone all the same.
    assert cli.main(["predict", "--model", str(tmp_path / "missing"), str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert "keras-pix2pix: " in capsys.readouterr().err
    assert _process_settings() == before
