"""Every notebook runs headless in smoke mode (tiny sizes, embedded data, no network)."""

import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

# Each test runs a whole notebook.
pytestmark = pytest.mark.slow

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")

EXPECTED = {
    "01_quickstart.ipynb": ["quickstart/generator.keras", "quickstart-report/index.html", "translated/my_labels.png"],
    "02_custom_dataset.ipynb": ["my_pairs/train/A/0000.png", "custom/checkpoints/ckpt-4.index", "custom/generator.keras"],
    "03_export_and_deploy.ipynb": ["exports/to_export/1/saved_model.pb", "exports/to_export/tflite/1/generator_int8.tflite"],
    "04_multi_gpu_and_tpu.ipynb": ["distributed/generator.keras"],
}


def test_every_notebook_is_listed_and_stripped():
    names = sorted(os.path.basename(path) for path in glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
    assert names == sorted(EXPECTED)
    for name in names:
        book = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
        assert "colab-badge.svg" in book.cells[0].source
        install = [cell for cell in book.cells if cell.cell_type == "code"][0]
        # The ecosystem's convention: a visible !pip cell, run in Colab only.
        assert "!pip install" in install.source and "IN_COLAB" in install.source
        for cell in book.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{name}: outputs are not stripped"
                assert "from google.colab" not in cell.source or "if IN_COLAB" in cell.source


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_in_smoke_mode(name, tmp_path, monkeypatch, demo_data_dir):
    work = tmp_path / "work"
    monkeypatch.setenv("KERAS_PIX2PIX_SMOKE", "1")
    monkeypatch.setenv("KERAS_PIX2PIX_WORKDIR", str(work))
    monkeypatch.setenv("KERAS_PIX2PIX_DATA_DIR", demo_data_dir)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # The kernel imports this checkout's package, as the tests do.
    root = os.path.abspath(os.path.join(NOTEBOOKS, ".."))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    book = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for relative in EXPECTED[name]:
        assert (work / relative).exists(), relative
