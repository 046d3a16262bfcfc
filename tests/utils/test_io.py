"""Atomic writes: complete files only, created with the permissions of a plain open()."""
import json
import os
import stat

import numpy as np
import pytest

from conftest import umask
from lv_adapter.utils.io import atomic_path, remove_stale_temporaries, write_image, write_json


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_written_files_respect_the_umask(tmp_path, mask):
    with umask(mask):
        write_json(tmp_path / "a.json", {"x": 1})
        write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("what open() gives")
    assert mode(tmp_path / "plain.txt") == 0o666 & ~mask
    assert mode(tmp_path / "a.json") == 0o666 & ~mask
    assert mode(tmp_path / "a.png") == 0o666 & ~mask
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


def test_a_failed_write_leaves_nothing(tmp_path):
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "a.json") as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "old"


def test_stale_temporaries_are_removed_and_named(tmp_path):
    for name in (".tmp-1a2b.pth", ".tmp-3c4d", "model.pth", ".hidden"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".tmp-5e6f.png").write_bytes(b"")  # only the folder itself is cleaned
    assert remove_stale_temporaries(str(tmp_path)) == [".tmp-1a2b.pth", ".tmp-3c4d"]
    assert sorted(os.listdir(tmp_path)) == [".hidden", "model.pth", "sub"]
