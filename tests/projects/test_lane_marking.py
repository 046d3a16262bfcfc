"""projects/LaneMarking: BDD100K's lane byte encoding, the official lane benchmark's F-score on
hand-made masks whose scores are known, and tools/evaluate_lane.py as a user runs it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, project_imported, subprocess_env

PROJECT = os.path.join(REPO, "projects", "LaneMarking")
TOOL = os.path.join(PROJECT, "tools", "evaluate_lane.py")
SINGLE_WHITE = 6  # the category id of "single white" (checked below)


@pytest.fixture(scope="module", autouse=True)
def lanes():
    """The project's package, imported (the lane task and datasets registered) for this
    module only: the modules after it in this process see the core alone."""
    with project_imported("LaneMarking", "lv_lanes") as package:
        sys.path.append(os.path.join(PROJECT, "tools"))
        try:
            yield package
        finally:
            sys.path.remove(os.path.join(PROJECT, "tools"))
            sys.modules.pop("evaluate_lane", None)


def test_the_byte_encoding_round_trips_and_names_what_lies_outside_it():
    from lv_lanes.encoding import BACKGROUND, CATEGORIES, decode, encode, invalid_values

    assert CATEGORIES.index("single white") == SINGLE_WHITE
    value = encode(CATEGORIES.index("double yellow"), 1, 1)  # dashed, vertical
    assert value == 3 + 16 + 32
    fields = decode(np.array([[value, BACKGROUND]], np.uint8))
    assert fields["foreground"].tolist() == [[True, False]]
    assert (fields["category"][0, 0], fields["style"][0, 0], fields["direction"][0, 0]) == (
        3, 1, 1)
    every_lane_value = encode(np.arange(8)[:, None, None], np.arange(2)[None, :, None],
                              np.arange(2)[None, None, :])
    assert invalid_values(np.append(every_lane_value.ravel(), BACKGROUND)) == []
    assert invalid_values(np.array([0, 8, 64, 200, 255, 55], np.uint8)) == [8, 64, 200]


def vertical_line(column, value, shape=(20, 30)):
    from lv_lanes.encoding import BACKGROUND

    mask = np.full(shape, BACKGROUND, np.uint8)
    mask[:, column] = value
    return mask


def test_a_perfect_prediction_scores_100_and_a_shift_only_within_its_tolerance():
    from lv_lanes.metric import LaneScores, image_scores

    truth = vertical_line(10, SINGLE_WHITE)
    scores = LaneScores()
    scores.add(image_scores(truth, truth))
    assert set(scores.results().values()) == {100.0}
    # Two pixels to the right: outside 1 px, inside 2 and 5 px. The single-white / solid /
    # parallel values score 0 then; every other value is empty on both sides: 1.
    scores = LaneScores()
    scores.add(image_scores(truth, vertical_line(12, SINGLE_WHITE)))
    results = scores.results()
    assert results["F1_pix1/single white"] == 0 and results["F1_pix2/single white"] == 100
    assert results["F1_pix1/CATEGORY"] == pytest.approx(100 * 7 / 8)
    assert results["F1_pix1/DIRECTION"] == results["F1_pix1/STYLE"] == pytest.approx(50)
    assert results["F1_pix1"] == pytest.approx((50 + 50 + 87.5) / 3)
    assert results["F1_pix2"] == results["F1_pix5"] == pytest.approx(100)


def test_precision_and_recall_count_pixels_within_the_tolerance_and_images_are_averaged():
    from lv_lanes.encoding import BACKGROUND
    from lv_lanes.metric import LaneScores, image_scores

    truth = vertical_line(10, SINGLE_WHITE)  # rows 0-19
    half = truth.copy()
    half[10:, 10] = BACKGROUND  # rows 0-9: every predicted pixel is right (precision 1), and
    # within r pixels of them lie the ground-truth rows 0 to 9 + r (recall (10 + r) / 20)
    empty = np.full_like(truth, BACKGROUND)  # precision 1, recall 0 (the toolkit's rule): F = 0
    scores = LaneScores()
    scores.add(image_scores(truth, half))
    scores.add(image_scores(truth, empty))
    for r in (1, 2, 5):
        recall = (10 + r) / 20
        f_score = 2 * recall / (1 + recall)
        assert scores.results()[f"F1_pix{r}/single white"] == pytest.approx(100 * f_score / 2)


def write_masks(folder, masks):
    import cv2

    os.makedirs(folder, exist_ok=True)
    for stem, mask in masks.items():
        cv2.imwrite(os.path.join(folder, f"{stem}.png"), mask)


def run_tool(*argv):
    return subprocess.run([sys.executable, TOOL, *map(str, argv)], capture_output=True,
                          text=True, env=subprocess_env())


def test_evaluate_lane_scores_folders_and_writes_json(tmp_path):
    from lv_lanes.metric import LaneScores, image_scores

    truth = vertical_line(10, SINGLE_WHITE)
    write_masks(tmp_path / "gt", {"a": truth, "b": truth})
    write_masks(tmp_path / "pred", {"a": vertical_line(12, SINGLE_WHITE)})
    done = run_tool("--gt", tmp_path / "gt", "--pred", tmp_path / "pred",
                    "--json", tmp_path / "out" / "lane.json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("1 ground-truth images have no prediction") == 1
    assert "single white" in done.stdout and "overall (average)" in done.stdout
    results = json.loads((tmp_path / "out" / "lane.json").read_text())
    # b has no prediction: the toolkit's all-zero mask, crosswalk / solid / parallel everywhere.
    missing = LaneScores()
    missing.add(image_scores(truth, np.zeros_like(truth)))
    shifted = LaneScores()
    shifted.add(image_scores(truth, vertical_line(12, SINGLE_WHITE)))
    both = LaneScores()
    both.merge(shifted)
    both.merge(missing)
    assert results == pytest.approx(both.results())
    assert results["F1_pix2/single white"] == pytest.approx(50)


def test_evaluate_lane_refuses_what_it_cannot_score_naming_the_file(tmp_path, capsys):
    import evaluate_lane

    truth = vertical_line(10, SINGLE_WHITE)
    write_masks(tmp_path / "gt", {"a": truth})
    write_masks(tmp_path / "small", {"a": truth[:10]})
    write_masks(tmp_path / "odd", {"a": vertical_line(10, 9)})  # bit 3 with a category: no value
    (tmp_path / "file").write_text("")
    cases = [
        (["--pred", tmp_path / "small"],
         "small/a.png: lane mask is 30x10 (WxH) but its ground truth is 30x20"),
        (["--pred", tmp_path / "odd"], "odd/a.png: values [9] are outside BDD100K's lane"),
        (["--pred", tmp_path / "gt", "--json", tmp_path / "file" / "lane.json"],
         "is a file, not a folder"),
    ]
    for argv, message in cases:  # in this process: the subprocess run above covers the start
        with pytest.raises(SystemExit) as stop:
            evaluate_lane.main(["--gt", str(tmp_path / "gt"), *map(str, argv)])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_lane.main(["--gt", str(tmp_path / "nowhere"), "--pred", str(tmp_path / "odd")])
    assert "nowhere: ground-truth folder not found" in capsys.readouterr().err
