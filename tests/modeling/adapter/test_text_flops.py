"""tools/text_tower_flops.py: the shared-prefix path really costs less than open_clip's, and one
pass for all tasks runs fewer operators than one pass per task."""
import json
import os
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tools"))
import text_tower_flops  # noqa: E402


def test_flop_and_operator_counts_fall_with_truncation_prefix_reuse_and_one_pass(tmp_path):
    path = str(tmp_path / "flops.json")
    opts = ["MODEL.ADAPTER.TEXT_ENCODER.MODEL", "ViT-S-32-alt", "MODEL.TASKS",
            "['drivable', 'detection']"]
    text_tower_flops.main(["--json", path, "--opts"] + opts)
    with open(path) as f:
        result = json.load(f)
    counts = result["multiply_adds"]
    full, truncated = counts["full (77 positions)"], counts["truncated"]
    assert result["prompts"] == 13 and result["n_ctx"] == 16
    # ViT-S-32-alt's text tower: 10 blocks of width 256 -> 12 * 256^2 multiply-adds per token
    # and block in the linear layers alone, 13 prompts x 77 positions.
    assert full > 13 * 77 * 10 * 12 * 256**2
    # "alternative drivable area." is the longest: 1 + 16 + 5 + 1 = 23 of 77 positions
    assert truncated < full * 25 / 77
    per_task, one_pass = counts["shared prefix, task by task"], counts["shared prefix, one pass"]
    assert per_task < truncated / 2
    assert one_pass < per_task * 1.01  # the same arithmetic, up to attention over padding
    operators = result["operator_calls"]
    assert operators["task by task"] > 1.7 * operators["one pass"]
