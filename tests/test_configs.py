"""Every shipped config is listed in configs/README.md, merges, and builds its model."""
import glob
import importlib
import json
import os
import re
import sys

import pytest
from detectron2.modeling import build_model

from lv_adapter import build_config
from lv_adapter.config import flat_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "configs", "README.md")
# Weights that would need a download (or files users convert): random weights instead.
NO_DOWNLOADS = ["MODEL.WEIGHTS", "", "MODEL.CLIP.WEIGHTS", "",
                "MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", ""]
# The offline MiniLM ships in a package: the sample configs build it for real.
PACKAGED = ["MODEL.WEIGHTS", "", "MODEL.CLIP.WEIGHTS", ""]


NOT_CONFIGS = {"configs/tables.yaml"}  # the tables' rows, not a config


def listed_configs(text):
    """Config paths named in ``text`` (configs/README.md), in order, without repeats."""
    found = re.findall(r"`(configs/[\w./-]+\.yaml)`", text)
    return [path for path in dict.fromkeys(found) if path not in NOT_CONFIGS]


def read_readme():
    with open(README) as f:
        return f.read()


LISTED = listed_configs(read_readme())
LEAVES = [p for p in LISTED if not os.path.basename(p).startswith("Base-")]
# Building an R50 model with two open_clip RN50 towers takes seconds: those builds are slow.
LIGHT = [p for p in LEAVES if not p.startswith("configs/bdd100k/")]
HEAVY = [p for p in LEAVES if p.startswith("configs/bdd100k/")]


def load_config(path, opts=()):
    return build_config(os.path.join(ROOT, path), opts)


def overrides(cfg_path):
    cfg = load_config(cfg_path)
    return PACKAGED if cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME == "HFTextEncoder" else NO_DOWNLOADS


def test_readme_lists_every_config_file_and_nothing_else():
    on_disk = {os.path.relpath(p, ROOT) for p in
               glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True)}
    on_disk -= NOT_CONFIGS
    assert len(on_disk) >= 40
    assert set(LISTED) - on_disk == set(), "configs/README.md names files that do not exist"
    assert on_disk - set(LISTED) == set(), "config files missing from configs/README.md"


def test_listing_finds_backquoted_paths_only():
    text = "| 1 | `configs/a/b_R50.yaml` (x) | configs/c.yaml | `configs/a/b_R50.yaml` |"
    assert listed_configs(text) == ["configs/a/b_R50.yaml"]


@pytest.mark.parametrize("path", LEAVES)
def test_listed_config_merges(path):
    cfg = load_config(path, NO_DOWNLOADS)
    assert 0 <= cfg.SOLVER.ADAPT_ITERS < cfg.SOLVER.MAX_ITER
    assert cfg.OUTPUT_DIR


def test_output_dirs_differ():
    dirs = [load_config(p).OUTPUT_DIR for p in LEAVES]
    assert len(set(dirs)) == len(dirs)


def _epochs(cfg, images):
    return round(cfg.SOLVER.ADAPT_ITERS * cfg.SOLVER.IMS_PER_BATCH / images, 2), round(
        (cfg.SOLVER.MAX_ITER - cfg.SOLVER.ADAPT_ITERS) * cfg.SOLVER.IMS_PER_BATCH / images, 2)


def test_paper_schedules_in_epochs():
    """Tables 2, 3, 5: adapt / finetune epochs of 37k (Disjoint-normal), 74k, 21k images."""
    def epochs(path, images=37000):
        return _epochs(load_config(path), images)

    assert epochs("configs/bdd100k/lv_adapter/lv_adapter_R50.yaml") == (1.0, 35.0)
    assert epochs("configs/bdd100k/lv_adapter/lv_adapter_R50_full.yaml", 74000) == (1.0, 35.0)
    balance = "configs/bdd100k/lv_adapter/lv_adapter_R50_disjoint_balance.yaml"
    assert epochs(balance, 21000) == (1.0, 35.0)
    assert epochs("configs/bdd100k/table2/clip_R50_pf.yaml") == (0.0, 36.0)
    for adapt, finetune in ((12, 24), (6, 30), (6, 35), (12, 35)):
        path = f"configs/bdd100k/table5/adapt{adapt}_finetune{finetune}.yaml"
        assert epochs(path) == (adapt, finetune)


def test_table2_pairs_differ_only_by_the_adapt_stage():
    pairs = [p for p in LEAVES if p.startswith("configs/bdd100k/table2/") and p.endswith("pf.yaml")
             and not p.endswith("_paf.yaml")]
    assert len(pairs) == 8
    for pf in pairs:
        a, b = load_config(pf), load_config(pf.replace("_pf.yaml", "_paf.yaml"))
        assert (a.SOLVER.ADAPT_ITERS, b.SOLVER.ADAPT_ITERS) == (0, 2313)
        b.SOLVER.ADAPT_ITERS, b.OUTPUT_DIR = 0, a.OUTPUT_DIR
        assert a.dump() == b.dump()
        if "clip" not in pf:  # the converted weights the README's command writes
            name = os.path.basename(pf)[: -len("_pf.yaml")]
            assert a.MODEL.WEIGHTS == f"pretrained/{name}.pth"
            assert f"pretrained/{name}.pth`" in read_readme()


def test_table4_switches():
    """Rows 1-5: (adapter, adapt stage, V2L, L2V), all on the same data."""
    rows = {
        "configs/bdd100k/table4/row1_pf.yaml": ("IdentityAdapter", False, None, None),
        "configs/bdd100k/table4/row2_paf.yaml": ("IdentityAdapter", True, None, None),
        "configs/bdd100k/table4/row3_prompts.yaml": ("LVAdapter", True, False, False),
        "configs/bdd100k/table4/row4_prompts_v2l.yaml": ("LVAdapter", True, True, False),
        "configs/bdd100k/lv_adapter/lv_adapter_R50.yaml": ("LVAdapter", True, False, True),
    }
    for path, (adapter, adapt, v2l, l2v) in rows.items():
        cfg = load_config(path)
        node = cfg.MODEL.ADAPTER
        assert cfg.MODEL.BACKBONE.NAME == "build_clip_resnet_fpn_backbone"
        assert (node.NAME, cfg.SOLVER.ADAPT_ITERS > 0) == (adapter, adapt)
        if adapter == "LVAdapter":
            assert (node.V2L.ENABLED, node.L2V.ENABLED, node.PROMPT.MODE) == (v2l, l2v, "learned")
        assert cfg.DATASETS.TRAIN == ("bdd100k_disjoint_normal_train_pseudo",), path


def differing_keys(path_a, path_b):
    a, b = flat_config(load_config(path_a)), flat_config(load_config(path_b))
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} - {"OUTPUT_DIR"}


sys.path.insert(0, os.path.join(ROOT, "tools"))
import configs_readme  # noqa: E402

TABLES = configs_readme.read_tables()
TABLE_ROWS = [(name, row) for name, table in TABLES.items() for row in table["rows"]]
PROJECTS = [table["project"] for table in TABLES.values() if "project" in table]
PROJECT_ROWS = [(table["project"], row) for table in TABLES.values() if "project" in table
                for row in table["rows"]]

# The project tables' packages register their config keys (the folder goes after the repository
# on sys.path, as in the projects' tests).
for _project in PROJECTS:
    sys.path.append(os.path.join(ROOT, _project["folder"]))
    importlib.import_module(_project["package"])


def test_configs_readme_is_generated_from_the_tables():
    assert read_readme() == configs_readme.generated(), \
        "configs/README.md is out of date: run python tools/configs_readme.py"
    assert configs_readme.main(["--check"]) == 0


def test_the_table_renderer_shows_fields_and_config_values():
    table = {"columns": [["#", "row"], ["data", "DATASETS.TRAIN"], ["x", "X.Y"], ["c", "config"]],
             "rows": [{"row": "1", "config": "configs/a.yaml",
                       "keys": {"DATASETS.TRAIN": ["a", "b"]}}]}
    assert configs_readme.render_table(table).splitlines() == [
        "| # | data | x | c |", "| --- | --- | --- | --- |",
        "| 1 | `a, b` | - | `configs/a.yaml` |"]


@pytest.mark.parametrize("table, row", TABLE_ROWS,
                         ids=[f"{t}:{r['config']}" for t, r in TABLE_ROWS])
def test_each_table_row_has_the_keys_that_define_it(table, row):
    cfg = flat_config(load_config(row["config"]))
    for key, value in row.get("keys", {}).items():
        assert key in cfg, f"{table}: {key} is not a config key"
        assert json.loads(json.dumps(cfg[key])) == value, (table, row["config"], key)


def _named(table, row):
    return set(row.get("keys", {})), tuple(table.get("also", ())) + tuple(row.get("also", ()))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_rows_of_a_table_differ_only_in_the_keys_they_name(name):
    table = TABLES[name]
    rows = table["rows"]
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if a.get("group") != b.get("group") or a["config"] == b["config"]:
                continue
            keys_a, also_a = _named(table, a)
            keys_b, also_b = _named(table, b)
            unnamed = {k for k in differing_keys(a["config"], b["config"])
                       if k not in keys_a | keys_b and not k.startswith(also_a + also_b)}
            assert not unnamed, f"{name}: {a['config']} and {b['config']} also differ in {unnamed}"


def test_every_table_row_is_a_listed_config():
    in_projects = {row["config"] for _, row in PROJECT_ROWS}
    assert {row["config"] for _, row in TABLE_ROWS} - in_projects <= set(LISTED)
    for project, row in PROJECT_ROWS:  # the projects' configs: their own folders
        assert row["config"].startswith(project["folder"] + "/configs/"), row["config"]
        assert os.path.isfile(os.path.join(ROOT, row["config"])), row["config"]


def test_table4_rows_1_2_are_table2s_clip_rows_on_table4s_data():
    for row, table2 in (("row1_pf", "clip_R50_pf"), ("row2_paf", "clip_R50_paf")):
        assert differing_keys(f"configs/bdd100k/table4/{row}.yaml",
                              f"configs/bdd100k/table2/{table2}.yaml") == {"DATASETS.TRAIN"}
    for path in glob.glob(os.path.join(ROOT, "configs/bdd100k/table5/*.yaml")):
        # table 5's rows differ from its "1 / 35" row (table 4, row 2) in the schedule only
        assert differing_keys(os.path.relpath(path, ROOT), "configs/bdd100k/table4/row2_paf.yaml") \
            <= {"SOLVER.ADAPT_ITERS", "SOLVER.MAX_ITER"}, path


def test_table10_rows_differ_from_their_baselines_by_the_adapter_only():
    for task in ("detection", "semantic", "drivable"):
        keys = differing_keys(f"configs/bdd100k/table10/teacher_{task}_lv_adapter_R50.yaml",
                              f"configs/bdd100k/teachers/teacher_{task}_R50_disjoint_balance.yaml")
        assert keys and all(k.startswith("MODEL.ADAPTER.") or k == "SOLVER.ADAPT_ITERS"
                            for k in keys), keys
        cfg = load_config(f"configs/bdd100k/table10/teacher_{task}_lv_adapter_R50.yaml")
        assert cfg.SOLVER.ADAPT_ITERS == 438  # one epoch of Disjoint-balance's 7,000 images


# Images of each task's training data: BDD100K's train splits (Full), the Disjoint settings.
TEACHER_IMAGES = {
    "full": {"detection": 70000, "semantic": 7000, "drivable": 70000},
    "disjoint_normal": {"detection": 10000, "semantic": 7000, "drivable": 20000},
    "disjoint_balance": {"detection": 7000, "semantic": 7000, "drivable": 7000},
}
FULL_SETS = {"detection": "bdd100k_det_train", "semantic": "bdd100k_sem_seg_train",
             "drivable": "bdd100k_drivable_train"}


@pytest.mark.parametrize("task", ["detection", "semantic", "drivable"])
def test_each_settings_teacher_trains_on_its_images_for_the_full_teachers_epochs(task):
    def teacher(setting):
        return load_config(f"configs/bdd100k/teachers/teacher_{task}_R50_{setting}.yaml")

    full = teacher("full")
    assert full.DATASETS.TRAIN == (FULL_SETS[task],) and full.MODEL.TASKS == [task]
    epochs = full.SOLVER.MAX_ITER * full.SOLVER.IMS_PER_BATCH / TEACHER_IMAGES["full"][task]
    for setting in ("disjoint_normal", "disjoint_balance"):
        cfg = teacher(setting)
        images = TEACHER_IMAGES[setting][task]
        assert cfg.DATASETS.TRAIN == (f"bdd100k_{setting}_train",)
        assert cfg.DATALOADER.TASK_STRATEGY == "uniform"  # batches of the task's images only
        assert abs(cfg.SOLVER.MAX_ITER - epochs * images / cfg.SOLVER.IMS_PER_BATCH) <= 0.5
        if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupMultiStepLR":  # the poly schedule has none
            scale = images / TEACHER_IMAGES["full"][task]
            assert all(abs(s - f * scale) <= 0.5
                       for s, f in zip(cfg.SOLVER.STEPS, full.SOLVER.STEPS))
        keys = differing_keys(f"configs/bdd100k/teachers/teacher_{task}_R50_{setting}.yaml",
                              f"configs/bdd100k/teachers/teacher_{task}_R50_full.yaml")
        assert keys <= {"DATASETS.TRAIN", "DATALOADER.TASK_STRATEGY", "SOLVER.MAX_ITER",
                        "SOLVER.STEPS"}, keys
    # the pipeline's BDD100K teachers are the Disjoint-normal ones
    assert differing_keys(f"configs/bdd100k/pipeline/teacher_{task}.yaml",
                          f"configs/bdd100k/teachers/teacher_{task}_R50_disjoint_normal.yaml") \
        == set()


def test_simclr_takes_inputs_in_0_1_without_normalization():
    for path in ("configs/bdd100k/table2/simclr_R50_pf.yaml",
                 "configs/bdd100k/table2/simclr_R50_paf.yaml"):
        cfg = load_config(path)
        assert (cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD) == ([0.0] * 3, [255.0] * 3)
    moco = load_config("configs/bdd100k/table2/moco_v2_R50_pf.yaml")
    assert moco.MODEL.PIXEL_STD == [58.395, 57.120, 57.375]  # torchvision's, as trained


def test_openai_clip_weights_get_the_activation_they_were_trained_with():
    """open_clip's "RN50" has GELU; OpenAI's RN50 text tower was trained with QuickGELU."""
    import open_clip

    checked = 0
    for path in LEAVES:
        cfg = load_config(path)
        towers = [(cfg.MODEL.CLIP.NAME, cfg.MODEL.CLIP.WEIGHTS, "MODEL.CLIP")] * (
            "clip" in cfg.MODEL.BACKBONE.NAME)
        if cfg.MODEL.ADAPTER.NAME == "LVAdapter" and "CLIP" in cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME:
            node = cfg.MODEL.ADAPTER.TEXT_ENCODER
            towers.append((node.MODEL, node.WEIGHTS, "MODEL.ADAPTER.TEXT_ENCODER"))
        for name, tag, key in towers:
            if tag in open_clip.list_pretrained_tags_by_model(name):
                trained = open_clip.get_pretrained_cfg(name, tag).get("quick_gelu", False)
                built = open_clip.get_model_config(name).get("quick_gelu", False)
                assert built == trained, f"{path}: {key} {name} with {tag} weights"
                checked += 1
    assert checked >= 20


def _check_model(cfg, model):
    assert sorted(model.heads.keys()) == sorted(cfg.MODEL.TASKS)
    assert type(model.adapter).__name__ == cfg.MODEL.ADAPTER.NAME
    if cfg.MODEL.ADAPTER.NAME == "LVAdapter":  # text features of the model's tasks only
        assert list(model.adapter.text.class_counts) == list(cfg.MODEL.TASKS)


@pytest.mark.parametrize("path", LIGHT)
def test_small_config_builds_its_model(path):
    cfg = load_config(path, overrides(path))
    _check_model(cfg, build_model(cfg))


@pytest.mark.slow
@pytest.mark.parametrize("path", HEAVY)
def test_paper_config_builds_its_model(path):
    cfg = load_config(path, NO_DOWNLOADS)
    _check_model(cfg, build_model(cfg))


def test_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    base = os.path.join(ROOT, "configs", "Base-LVAdapter.yaml")
    bad.write_text(f'_BASE_: "{base}"\nMODEL:\n  SPARSE_RCNN:\n    NUM_PROPOSAL: 3\n')
    with pytest.raises(KeyError, match="NUM_PROPOSAL"):
        build_config(str(bad))


def test_unknown_task_is_refused():
    cfg = load_config("configs/quick_schedules/multitask_tiny.yaml")
    cfg.MODEL.TASKS = ["detection", "depth"]
    with pytest.raises(ValueError, match="unknown tasks \\['depth'\\]"):
        build_model(cfg)


def test_a_project_config_adder_runs_in_every_build_config(monkeypatch, tmp_path):
    from detectron2.config import CfgNode

    from lv_adapter.config import build as config

    monkeypatch.setattr(config, "_PROJECT_ADDERS", [])
    path = tmp_path / "project.yaml"
    path.write_text('_BASE_: "%s"\nMODEL:\n  PROJECT_KEY:\n    SIZE: 3\n'
                    % os.path.join(ROOT, "configs", "quick_schedules", "multitask_tiny.yaml"))
    with pytest.raises(KeyError, match="PROJECT_KEY"):  # unknown until the project says so
        build_config(str(path))

    def add_project_keys(cfg):
        cfg.MODEL.PROJECT_KEY = CfgNode({"SIZE": 1})

    assert config.register_project_config(add_project_keys) is add_project_keys
    config.register_project_config(add_project_keys)  # again: no second call
    assert config._PROJECT_ADDERS == [add_project_keys]
    assert build_config(str(path)).MODEL.PROJECT_KEY.SIZE == 3
    assert build_config(str(path), ["MODEL.PROJECT_KEY.SIZE", "5"]).MODEL.PROJECT_KEY.SIZE == 5


def test_head_class_counts_must_match_every_registered_dataset():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from conftest import freed_dataset_names

    tiny = os.path.join(ROOT, "configs", "quick_schedules", "multitask_tiny.yaml")
    names = ["custom_four_classes", "custom_without_classes"]
    with freed_dataset_names(names):
        for name in names:
            DatasetCatalog.register(name, list)
        MetadataCatalog.get(names[0]).set(stuff_classes=["road", "car", "sky", "other"])
        opts = ["MODEL.TASKS", "('semantic',)", "DATASETS.TRAIN", f"('{names[0]}',)",
                "DATASETS.TEST", "()"]
        with pytest.raises(ValueError, match=r"MODEL.SEMANTIC_HEAD.NUM_CLASSES is 19 but dataset "
                                             r"'custom_four_classes' has 4 semantic classes "
                                             r"\(road, car, sky, other\); set it to 4"):
            build_config(tiny, opts)
        cfg = build_config(tiny, opts + ["MODEL.SEMANTIC_HEAD.NUM_CLASSES", "4"])
        assert cfg.MODEL.SEMANTIC_HEAD.NUM_CLASSES == 4
        # A dataset whose metadata names no classes is taken to have BDD100K's, and said so.
        with pytest.raises(ValueError, match=r"'custom_without_classes' has 19 semantic classes "
                                             r"\(road, .*BDD100K's: its metadata names none "
                                             r"under 'stuff_classes'\)"):
            build_config(tiny, opts + ["MODEL.SEMANTIC_HEAD.NUM_CLASSES", "4",
                                       "DATASETS.TEST", f"('{names[1]}',)"])


@pytest.mark.parametrize("key, value", [
    ("MODEL.SEMANTIC_HEAD.IN_FEATURES", "['p2', 'p7']"),
    ("MODEL.DRIVABLE_HEAD.TRANSFORMER_IN_FEATURE", "p9"),
    ("MODEL.SPARSE_RCNN.IN_FEATURES", "['res5']"),
])
def test_a_head_reading_a_map_the_backbone_lacks_names_its_key(key, value):
    tiny = os.path.join(ROOT, "configs", "quick_schedules", "multitask_tiny.yaml")
    cfg = build_config(tiny, [key, value, "MODEL.DEVICE", "cpu"])
    with pytest.raises(ValueError, match=rf"{re.escape(key)} names \[.*\], which the backbone "
                                         r"does not give \(it gives \['p2', 'p3'"):
        build_model(cfg)
