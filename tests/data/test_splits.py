"""Training-setting splits on hand-made dataset dicts (no files except the lists)."""
import pytest

import lv_adapter  # noqa: F401  (first: sets up detectron2)
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.splits import (
    SETTINGS,
    apply_split,
    leaked_stems,
    load_split,
    make_split,
    save_split,
)

TASKS = ("detection", "semantic", "drivable")
LABELS = {
    "detection": {"annotations": []},
    "semantic": {"sem_seg_file_name": "sem.png"},
    "drivable": {"drivable_file_name": "drivable.png", "drivable_legacy": True},
}
SIZES = {"semantic": 5, "detection": 10, "drivable": 15}


def record(image_id, *tasks):
    d = {"file_name": f"{image_id}.jpg", "image_id": image_id, "height": 6, "width": 8}
    d["labeled_tasks"] = [t for t in TASKS if t in tasks]
    for task in tasks:
        d.update(LABELS[task])
    return d


@pytest.fixture
def dicts():
    """Pools: semantic 20 (s*, a*), detection 40 and drivable 40 (d*, a*)."""
    return (
        [record(f"s{i:02d}", "semantic") for i in range(10)]
        + [record(f"d{i:02d}", "detection", "drivable") for i in range(30)]
        + [record(f"a{i:02d}", *TASKS) for i in range(10)]
    )


def labeled(dicts, task):
    return {d["image_id"] for d in dicts if task in d["labeled_tasks"]}


def test_sizes_disjoint_sorted_and_labeled(dicts):
    split = make_split(dicts, SIZES, seed=0)
    assert {t: len(v) for t, v in split.items()} == {"detection": 10, "semantic": 5, "drivable": 15}
    assert list(split) == list(TASKS)
    for task, stems in split.items():
        assert stems == sorted(stems)
        assert set(stems) <= labeled(dicts, task)
    det, sem, drv = (set(split[t]) for t in TASKS)
    assert not (det & sem or det & drv or sem & drv)


def test_seed_reproducible(dicts):
    assert make_split(dicts, SIZES, seed=7) == make_split(list(reversed(dicts)), SIZES, seed=7)
    assert make_split(dicts, SIZES, seed=0) != make_split(dicts, SIZES, seed=1)


def test_all_remaining_and_pick_order(dicts):
    everything = {"semantic": -1, "detection": -1, "drivable": -1}
    split = make_split(dicts, everything)
    # Semantic picks first and takes every a*, so detection gets the d* and drivable nothing.
    assert set(split["semantic"]) == labeled(dicts, "semantic")
    assert split["detection"] == [f"d{i:02d}" for i in range(30)]
    assert split["drivable"] == []
    split = make_split(dicts, {**SIZES, "drivable": -1}, seed=2)
    taken = set(split["semantic"]) | set(split["detection"])
    assert set(split["drivable"]) == labeled(dicts, "drivable") - taken


def test_bad_sizes(dicts):
    with pytest.raises(ValueError, match="split size of semantic is 21 but only 20 images"):
        make_split(dicts, {**SIZES, "semantic": 21})
    # Detection's pool (40) loses the a* (10) when semantic takes all its candidates.
    with pytest.raises(ValueError, match="split size of detection is 31 but only 30 images"):
        make_split(dicts, {**SIZES, "semantic": -1, "detection": 31})
    with pytest.raises(ValueError, match="exactly the tasks"):
        make_split(dicts, {"semantic": 5, "detection": 5})
    with pytest.raises(ValueError, match="must be an integer >= 0 or -1, got -2"):
        make_split(dicts, {**SIZES, "drivable": -2})


def test_settings():
    assert SETTINGS["full"] is None
    assert SETTINGS["disjoint_normal"] == {"drivable": 20000, "detection": 10000, "semantic": 7000}
    assert SETTINGS["disjoint_balance"] == {t: 7000 for t in TASKS}


def test_save_load_round_trip(dicts, tmp_path):
    split = make_split(dicts, SIZES, seed=4)
    save_split(split, str(tmp_path / "lists"))
    assert load_split(str(tmp_path / "lists")) == split
    text = (tmp_path / "lists" / "semantic.txt").read_text()
    assert text == "".join(f"{s}\n" for s in split["semantic"])
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == [
        "detection.txt", "drivable.txt", "semantic.txt"]


def test_load_split_errors(tmp_path):
    save_split({t: ["x"] for t in TASKS}, str(tmp_path))
    (tmp_path / "drivable.txt").unlink()
    with pytest.raises(BadSampleError, match=r"drivable\.txt: split list not found"):
        load_split(str(tmp_path))
    (tmp_path / "drivable.txt").write_text("a\nb c\n")
    with pytest.raises(BadSampleError, match=r"drivable\.txt: line 2 is not an image stem"):
        load_split(str(tmp_path))
    (tmp_path / "drivable.txt").write_text("a\nb\na\n")
    with pytest.raises(BadSampleError, match=r"drivable\.txt: line 3: image 'a' is listed twice"):
        load_split(str(tmp_path))
    (tmp_path / "drivable.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BadSampleError, match=r"drivable\.txt: split list is not UTF-8"):
        load_split(str(tmp_path))


def test_apply_split_keeps_listed_tasks_only(dicts):
    split = {"detection": ["a00", "d00"], "semantic": ["s00"], "drivable": ["a00", "d01"]}
    out = {d["image_id"]: d for d in apply_split(dicts, split)}
    assert {k: d["labeled_tasks"] for k, d in out.items()} == {
        "a00": ["detection", "drivable"],
        "d00": ["detection"],
        "d01": ["drivable"],
        "s00": ["semantic"],
    }
    assert "sem_seg_file_name" not in out["a00"] and "annotations" in out["a00"]
    assert "drivable_file_name" not in out["d00"] and "drivable_legacy" not in out["d00"]
    assert "annotations" not in out["d01"] and out["d01"]["drivable_legacy"] is True
    assert dicts[-10]["labeled_tasks"] == list(TASKS)  # inputs untouched
    assert "sem_seg_file_name" in dicts[-10]


def test_apply_split_rejects_unlabeled_images(dicts, tmp_path):
    split = {"detection": [], "semantic": ["d03"], "drivable": []}
    with pytest.raises(BadSampleError, match=r"semantic\.txt: image 'd03' is listed for semantic "
                                             r"but has no semantic labels \(missing mask/labels"):
        apply_split(dicts, split, source=str(tmp_path))
    split = {"detection": ["ghost"], "semantic": [], "drivable": []}
    with pytest.raises(BadSampleError, match="detection split list: image 'ghost' is listed"):
        apply_split(dicts, split)


def test_leaked_stems():
    assert leaked_stems(["a", "b", "c"], iter(["c", "d", "a"])) == {"a", "c"}
    assert leaked_stems([], ["a"]) == set()
