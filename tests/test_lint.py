"""The tree is lint-clean (ruff, with pyproject.toml's settings) and holds no dead code (vulture)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(*command, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_vulture_finds_no_dead_code():
    pytest.importorskip("vulture")
    result = _run("vulture")  # paths and confidence from pyproject.toml; vulture_allowlist.py says why each name lives
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_vulture_sees_a_function_nothing_calls(tmp_path):
    pytest.importorskip("vulture")
    (tmp_path / "planted.py").write_text("def never_called():\n    return 1\n")
    result = _run("vulture", "planted.py", "--min-confidence", "60", cwd=tmp_path)
    assert result.returncode == 3 and "never_called" in result.stdout, result.stdout
