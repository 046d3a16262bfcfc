"""Shared fixtures: a small generated BDD100K-format sample set."""
import pytest

import lv_adapter  # noqa: F401  (registers datasets; installs the detectron2._C placeholder)
from lv_adapter.data.sample import write_sample_bdd100k


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    """A datasets root holding ``bdd100k/`` with 16 generated 128x72 scenes (seed 0)."""
    root = tmp_path_factory.mktemp("datasets")
    write_sample_bdd100k(str(root), num_images=16, width=128, height=72, seed=0)
    return str(root)
