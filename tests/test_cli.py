import io
import os
import pty
import re
import subprocess
import sys
import time

import pytest
from conftest import TINY, png, write_ab_folder

import keras_pix2pix
from keras_pix2pix import plots, train
from keras_pix2pix.cli import main
from keras_pix2pix.config import Config
from keras_pix2pix.progress import Progress
from keras_pix2pix.report import write_html


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


# --- what a user meets around the work: quiet output, an instant --help, a time limit, progress -----


# TensorFlow's C++ log lines (I0000 00:00:... file.cc:12] ...) and absl's Python warnings.
TENSORFLOW_LINE = re.compile(r"^([IWEF]\d{4} |WARNING:absl:|WARNING: All log messages before absl)", re.MULTILINE)


def command(*arguments, timeout=600):
    """Runs `python -m keras_pix2pix ARGUMENTS` as a user would: no variables that quiet TensorFlow."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_PIX2PIX_DATA_DIR")}
    return subprocess.run([sys.executable, "-m", "keras_pix2pix", *map(str, arguments)], capture_output=True,
                          text=True, env=environment, timeout=timeout)


@pytest.mark.slow
def test_fit_prints_our_lines_only(tmp_path, demo_data_dir):
    result = command("fit", "--dataset", "demo", "--steps", 20, "--image-size", 32, "--workdir", tmp_path / "run",
                     "--data-dir", demo_data_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not TENSORFLOW_LINE.search(result.stdout + result.stderr), result.stdout + result.stderr
    assert result.stderr == ""
    words = [line.split()[0] for line in result.stdout.splitlines()]
    # The first fit on a data directory checks its files (train, then the sample pairs' val) and says
    # so; a later one finds them remembered. Other tests may have been first on this one.
    checks = len(words) - 4
    assert checks in (0, 2, 4) and words == ["checking", "checked"] * (checks // 2) + ["demo:", "step", "step", "saved"]


@pytest.mark.slow
def test_verbose_brings_tensorflow_lines_back(tmp_path):
    quiet = command("datasets", "--data-dir", tmp_path)
    verbose = command("datasets", "--data-dir", tmp_path, "--verbose")
    assert quiet.returncode == verbose.returncode == 0
    assert quiet.stderr == "" and not TENSORFLOW_LINE.search(quiet.stdout)
    # This TensorFlow build logs its CPU set-up (oneDNN, CUDA stubs) at every start.
    assert TENSORFLOW_LINE.search(verbose.stderr), verbose.stderr
    assert verbose.stdout == quiet.stdout


def test_help_and_version_do_not_import_tensorflow():
    script = (
        "import sys\n"
        "from keras_pix2pix.cli import main\n"
        "for arguments in (['--version'], ['--help'], ['fit', '--help'], ['predict', '--help']):\n"
        "    try:\n"
        "        main(arguments)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, arguments\n"
        "print('imported:', sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "keras-pix2pix 0.1.0" in result.stdout
    assert "imported: []" in result.stdout


def test_the_package_imports_its_functions_on_first_use():
    script = (
        "import sys, keras_pix2pix\n"
        "print('before:', 'tensorflow' in sys.modules)\n"
        "from keras_pix2pix import evaluate, export, fit, predict\n"
        "print('functions:', all(callable(function) for function in (evaluate, export, fit, predict)))\n"
        "print('after:', 'tensorflow' in sys.modules)\n"
        "try:\n"
        "    keras_pix2pix.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [
        "before: False", "functions: True", "after: True", "module 'keras_pix2pix' has no attribute 'no_such_name'"
    ]


@pytest.mark.slow
def test_time_limit_stops_with_a_checkpoint_and_the_run_resumes(tmp_path, demo_data_dir):
    workdir = tmp_path / "run"
    arguments = ["fit", "--dataset", "demo", "--data-dir", demo_data_dir, "--workdir", workdir, *TINY,
                 "--save-every", 100000, "--time-limit", "15s"]
    start = time.monotonic()
    result = command(*arguments, "--steps", 100000)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-2000:]
    stop = re.search(r"time limit of 15s reached: saved a checkpoint at step (\d+) of 100000 in ", result.stderr)
    assert stop, result.stderr
    step = int(stop.group(1))
    assert os.path.exists(workdir / "checkpoints" / f"ckpt-{step}.index")
    # Only a sanity bound: a run to 100000 steps, or a closing that hangs, would take far longer. The
    # time counted includes Python's and TensorFlow's start-up and teardown, which a busy machine
    # stretches (55 s measured with both cores burnt and more beside), so a tight bound here would
    # measure the machine; the stop's timing is tested with a clock of its own (tests/test_duration.py).
    assert elapsed < 15 + 120, elapsed
    resumed = command(*arguments, "--steps", step + 2)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {workdir} at step {step} of {step + 2}" in resumed.stdout


def test_time_limit_is_a_duration(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--dataset", "demo", "--workdir", str(tmp_path / "run"), "--time-limit", "2 hours"])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "--time-limit must be a duration such as 2h30m, 45m, 90s or a number of seconds; got '2 hours'" in line


def test_losses_png_shows_the_logged_curves_and_evaluate_embeds_it(trained, tmp_path, capsys):
    folder, workdir = trained
    path = os.path.join(workdir, "losses.png")
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    scalars = plots.read_scalars(os.path.join(workdir, "logs"))
    # Every curve it draws is in the logs, at the steps logged: the report at steps 1 and 2, the samples at 2.
    assert scalars["losses/generator_l1"][0].tolist() == [1, 2]
    assert scalars["validation/l1_samples"][0].tolist() == [2]
    assert {tag for _, curves in plots.PANELS for tag, _ in curves} <= set(scalars)
    assert main(["evaluate", "--model", workdir, "--dataset", folder, "--split", "val", "--output",
                 str(tmp_path / "report")]) == 0
    capsys.readouterr()
    page = open(tmp_path / "report" / "index.html").read()
    assert '<img src="losses.png" alt="training curves"' in page
    assert open(tmp_path / "report" / "losses.png", "rb").read() == open(path, "rb").read()


def test_the_page_lists_names_in_natural_order(tmp_path):
    rows = [{"name": name, "files": {}, "metrics": {"l1": 0.5}} for name in ("10.jpg", "2.jpg", "1.jpg")]
    write_html({"summary": {"pairs": 3}, "images": rows}, str(tmp_path / "index.html"))
    page = open(tmp_path / "index.html").read()
    assert page.index(">1.jpg<") < page.index(">2.jpg<") < page.index(">10.jpg<")


def _on_a_terminal(arguments):
    """(status, everything written) of `python -m keras_pix2pix ARGUMENTS` with a pseudo-terminal for its output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "keras_pix2pix", *map(str, arguments)], stdout=follower,
                               stderr=follower, close_fds=True)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=300), output.decode()


@pytest.mark.slow
def test_predict_shows_a_bar_on_a_terminal_and_lines_in_a_log(trained, tmp_path):
    _, workdir = trained
    for index in range(3):
        png(tmp_path / f"{index}.png", 40, 40, seed=index)
    inputs = [tmp_path / f"{index}.png" for index in range(3)]
    status, shown = _on_a_terminal(["predict", "--model", workdir, *inputs, "--output", tmp_path / "terminal"])
    assert status == 0, shown
    # One line rewritten in place (carriage returns, erase to the end), ended once.
    assert "\rtranslated 1/3" in shown and "\rtranslated 3/3" in shown and "\x1b[K" in shown
    logged = command("predict", "--model", workdir, *inputs, "--output", tmp_path / "log")
    assert logged.returncode == 0, logged.stderr
    lines = [line for line in logged.stdout.splitlines() if line.startswith("translated")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"] and "\r" not in logged.stdout


def test_progress_in_a_log_ends_with_the_last_count():
    stream = io.StringIO()
    progress = Progress(None, "prepared val pairs", rate_unit="pairs", log_every=40, stream=stream)
    for done in range(1, 101):
        progress.update(done)
    progress.close()
    assert [line.split("  ")[0] for line in stream.getvalue().splitlines()] == [
        "prepared val pairs 40", "prepared val pairs 80", "prepared val pairs 100"
    ]
    assert "left" not in stream.getvalue()  # no total, no time left
