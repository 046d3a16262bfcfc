"""lv_adapter.utils.visualizer's helpers against the detectron2 Visualizer they serve."""
import numpy as np
import pytest
from detectron2.utils.visualizer import Visualizer

from lv_adapter.utils.visualizer import label_font_size


@pytest.mark.parametrize("height, width, scale", [(144, 256, 1.0), (144, 256, 3.0),
                                                  (720, 1280, 1.0), (720, 1280, 0.5)])
def test_text_a_task_writes_has_the_size_of_detectron2s_own_labels(height, width, scale):
    """The lane drawing names categories at this size; detectron2 keeps its own in a private
    attribute, read here only to pin the two together on every detectron2 version."""
    vis = Visualizer(np.zeros((height, width, 3), np.uint8), scale=scale)
    assert label_font_size(vis) == vis._default_font_size
