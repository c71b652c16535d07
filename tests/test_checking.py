import os

import pytest
from conftest import png, write_ab_folder

from keras_pix2pix.checking import MEMORY_FOLDER, check_pairs, memory_path
from keras_pix2pix.config import UsageError
from keras_pix2pix.datasets import local_splits


@pytest.fixture
def folder(tmp_path):
    write_ab_folder(str(tmp_path / "pairs"), 3, splits=("train",))
    return tmp_path / "pairs" / "train"


def check(folder, data_dir, **keywords):
    """(the pairs check_pairs kept, the lines it logged)."""
    lines = []
    pairs = check_pairs(local_splits(str(folder.parent)).train, log=lines.append, data_dir=str(data_dir), **keywords)
    return pairs, lines


def test_a_second_check_of_an_unchanged_folder_decodes_nothing(folder, tmp_path):
    pairs, lines = check(folder, tmp_path / "data")
    assert len(pairs) == 3 and lines[0].startswith(f"checking 3 new or changed pair(s) of {folder}")
    assert os.path.isfile(memory_path(str(tmp_path / "data"), pairs))
    again, lines = check(folder, tmp_path / "data")
    assert again == pairs and lines == []


def test_a_changed_or_added_file_is_checked_again(folder, tmp_path):
    check(folder, tmp_path / "data")
    png(folder / "3.png", width=32)  # added
    _, lines = check(folder, tmp_path / "data")
    assert lines[0].startswith("checking 1 new or changed pair(s)")
    # Changed in place: the same name, now corrupt (another size, another modification time).
    (folder / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(UsageError, match=r"1\.png is not a readable JPEG or PNG image .*1 bad file"):
        check(folder, tmp_path / "data")
    # Changed with the same size: its modification time tells.
    (folder / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n BROKEN")
    os.utime(folder / "1.png", ns=(1, 1))
    with pytest.raises(UsageError, match=r"1\.png is not a readable JPEG or PNG image"):
        check(folder, tmp_path / "data")


def test_a_lower_max_pixels_refuses_a_remembered_file(folder, tmp_path):
    check(folder, tmp_path / "data")
    with pytest.raises(UsageError, match=r"is 64x32 .* over the limit"):
        check(folder, tmp_path / "data", max_pixels=1000)


def test_a_damaged_or_unwritable_memory_costs_a_full_check_only(folder, tmp_path):
    pairs, _ = check(folder, tmp_path / "data")
    with open(memory_path(str(tmp_path / "data"), pairs), "w") as file:
        file.write('{"files": [1, 2')
    _, lines = check(folder, tmp_path / "data")
    assert lines[0].startswith("checking 3 new or changed pair(s)")
    # The memory's folder cannot be made (a file is in its way): the check passes and says so.
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / MEMORY_FOLDER).write_text("not a folder")
    pairs, lines = check(folder, tmp_path / "blocked")
    assert len(pairs) == 3 and lines[-1].startswith("note: could not remember the checked files")


def test_without_a_data_dir_nothing_is_remembered_or_said(folder, tmp_path):
    lines = []
    assert len(check_pairs(local_splits(str(folder.parent)).train, log=lines.append)) == 3
    assert lines == [] and not os.path.exists(tmp_path / "data")
