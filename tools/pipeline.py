#!/usr/bin/env python
"""The paper's whole recipe in one command (`make pipeline`): a Disjoint-normal split, three
single-task teachers, their pseudo labels, students on ground truth (+ pseudo labels), evaluation
and a table comparing them.

    DETECTRON2_DATASETS=datasets/sample python tools/pipeline.py --root datasets/sample
    DETECTRON2_DATASETS=/data python tools/pipeline.py --recipe bdd100k --root /data --num-gpus 8

Stages, in order (each runs as its own process, the way a user would run it):

1. the Disjoint-normal image lists (``tools/make_splits.py``), unless already written;
2. the teachers (``train_net.py``), each on the images its task is labeled for;
3. pseudo labels (``tools/generate_pseudo_labels.py``): each teacher labels the images that lack its
   task, under ``<root>/bdd100k/pseudo/disjoint_normal`` (where ``bdd100k_disjoint_normal_train_
   pseudo`` reads them);
4. the students: zeroing loss (ground truth only), self-training (ground truth + pseudo labels) and
   the LV-Adapter student (ground truth + pseudo labels), with the same iterations;
5. a table of held-out metrics (``<out>/table.md`` and ``table.json``).

A stage whose output is complete is skipped (training: its ``inference/results.json``; the
split: its lists, once their ``recipe.json`` says they were drawn with this run's sizes and seed,
else the pipeline refuses), and an interrupted training resumes from its last checkpoint
(``--resume``), so running the same command again continues an interrupted pipeline. The
labeling stages always run: ``generate_pseudo_labels.py`` itself says "complete" when this
run's teacher labeled the same images, and refuses labels of another teacher (a new ``--out``
trains new teachers: label into a fresh datasets root, or delete the old labels).

``--with-strategies`` adds the other students of table 1 (``uniform_sampler``,
``weighted_sampler``, ``round_robin``: one task per iteration, ground truth only).

A recipe is a folder of six configs (``teacher_<task>.yaml``, ``zeroing_loss.yaml``,
``self_training.yaml``, ``lv_adapter.yaml``; three more for ``--with-strategies``):
``configs/sample/pipeline`` holds quick schedules for the sample scenes on a CPU,
``configs/bdd100k/pipeline`` the paper's.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import NamedTuple

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, REPO)

from lv_adapter.data.datasets.builtin import split_folder  # noqa: E402
from lv_adapter.data.pseudo_labels import default_pseudo_root, summary_path  # noqa: E402
from lv_adapter.tasks import BUILTIN_TASKS as TASKS  # noqa: E402  (the recipe's tasks)
from lv_adapter.utils.io import atomic_path, write_json  # noqa: E402
from make_splits import parse_sizes, recipe_path, split_recipe  # noqa: E402  (tools/)

SETTING = "disjoint_normal"
TRAIN_SET = f"bdd100k_{SETTING}_train"
RESULTS_FILE = os.path.join("inference", "results.json")  # train_net.py writes it


class Recipe(NamedTuple):
    """Configs folder (relative to the repository) and split sizes (None: the paper's)."""
    configs: str
    split_sizes: str = None


RECIPES = {
    # Sample scenes: 855 training images (675 detection/drivable, 450 semantic); the paper's
    # 20:10:7 drivable:detection:semantic proportions at a size the pools allow.
    "sample": Recipe("configs/sample/pipeline", "semantic=105,detection=150,drivable=300"),
    "bdd100k": Recipe("configs/bdd100k/pipeline"),
}
# (stage name, config file, what it trains on) of the models in the table, in its order.
TEACHERS = [(f"teacher_{task}", f"teacher_{task}.yaml", f"{task} ground truth") for task in TASKS]
STUDENTS = [
    ("zeroing_loss", "zeroing_loss.yaml", "ground truth"),
    ("self_training", "self_training.yaml", "ground truth + pseudo labels"),
    ("lv_adapter", "lv_adapter.yaml", "ground truth + pseudo labels"),
]
# --with-strategies: the other co-training strategies of table 1, on ground truth, as long.
STRATEGIES = [
    ("uniform_sampler", "uniform_sampler.yaml", "ground truth, one task per iteration"),
    ("weighted_sampler", "weighted_sampler.yaml", "ground truth, one task per iteration"),
    ("round_robin", "round_robin.yaml", "ground truth, one task per iteration"),
]
# (results key, metric, column)
COLUMNS = [("bbox", "AP", "det AP"), ("bbox", "AP50", "det AP50"),
           ("sem_seg", "mIoU", "sem mIoU"), ("drivable_seg", "mIoU", "drivable mIoU")]


class Stage(NamedTuple):
    name: str
    output: str  # exists once the stage is complete
    command: list
    always: bool = False  # run even when the output exists (the command checks it itself)


def plan(args):
    """The stages of the pipeline, in order."""
    recipe = RECIPES[args.recipe]
    if args.split_sizes:
        recipe = recipe._replace(split_sizes=args.split_sizes)
    configs = args.configs or os.path.join(REPO, recipe.configs)
    python = [sys.executable]
    gpus = ["--num-gpus", str(args.num_gpus)]
    stages = [_split_stage(args, recipe, python)]
    for name, config, _ in TEACHERS:
        stages.append(_train_stage(args, name, os.path.join(configs, config), python, gpus))
    pseudo_root = default_pseudo_root(args.root, SETTING)
    for task in TASKS:
        teacher = os.path.join(args.out, f"teacher_{task}")
        command = python + [
            os.path.join(TOOLS, "generate_pseudo_labels.py"),
            "--config-file", os.path.join(configs, f"teacher_{task}.yaml"),
            "--dataset", TRAIN_SET, "--output", pseudo_root, *gpus,
            # the teacher's overrides too: the labeling model must be the trained one
            *args.opts, "MODEL.WEIGHTS", os.path.join(teacher, "model_final.pth"),
        ]
        stages.append(Stage(f"pseudo_{task}", summary_path(pseudo_root, task), command, True))
    for name, config, _ in _students(args):
        stages.append(_train_stage(args, name, os.path.join(configs, config), python, gpus))
    return stages


def _students(args):
    return STUDENTS + (STRATEGIES if args.with_strategies else [])


def _split_stage(args, recipe, python):
    folder = split_folder(args.root, SETTING)
    command = python + [os.path.join(TOOLS, "make_splits.py"), "--root", args.root,
                        "--setting", SETTING]
    if recipe.split_sizes:
        command += ["--sizes", recipe.split_sizes]
    want = split_recipe(SETTING, parse_sizes(recipe.split_sizes or ""), 0)
    _check_split(folder, want)
    # recipe.json is written after the lists: it marks them complete
    return Stage("split", recipe_path(folder), command)


def _check_split(folder, want):
    """Refuse lists drawn otherwise than this run would draw them (students and teachers would
    train on another split than the one asked for)."""
    path = recipe_path(folder)
    if os.path.isfile(path):
        with open(path) as f:
            have = json.load(f)
        if have != want:
            sys.exit(f"the split in {folder} was drawn with {have}, this run asks for {want}: "
                     "use another --root (a copy of the datasets), or delete that folder and "
                     "the teachers and pseudo labels made from it")
    elif any(os.path.exists(os.path.join(folder, f"{task}.txt")) for task in TASKS):
        sys.exit(f"{folder} holds split lists without {os.path.basename(path)}: how they were "
                 "drawn is unknown; delete the folder to draw them again")


def _train_stage(args, name, config, python, gpus):
    out = os.path.join(args.out, name)
    command = python + [os.path.join(REPO, "train_net.py"), "--config-file", config, *gpus,
                        "--resume", "OUTPUT_DIR", out, *args.opts]
    return Stage(name, os.path.join(out, RESULTS_FILE), command)


def run(stages, env):
    """Run the stages whose output is missing, in order; a failing stage stops the pipeline."""
    for index, stage in enumerate(stages, 1):
        head = f"== [{index}/{len(stages)}] {stage.name}"
        if os.path.exists(stage.output) and not stage.always:
            print(f"{head}: complete, skipped ({stage.output})", flush=True)
            continue
        print(f"{head}: {' '.join(stage.command)}", flush=True)
        start = time.monotonic()
        result = subprocess.run(stage.command, env=env, cwd=REPO)
        if result.returncode != 0:
            sys.exit(f"stage {stage.name} failed (exit {result.returncode}); fix the cause and "
                     "run the same command again: finished stages are skipped")
        if not os.path.exists(stage.output):
            sys.exit(f"stage {stage.name} ended without writing {stage.output}")
        print(f"{head}: done in {(time.monotonic() - start) / 60:.1f} min", flush=True)


def table(args):
    """Rows of the comparison table: model, training data, iterations, metrics (None: n/a)."""
    rows = []
    for name, _, data in TEACHERS + _students(args):
        folder = os.path.join(args.out, name)
        results = _flat_results(os.path.join(folder, RESULTS_FILE))
        metrics = {column: results.get(key, {}).get(metric) for key, metric, column in COLUMNS}
        rows.append({"model": name, "data": data, "iterations": _iterations(folder), **metrics})
    return rows


def _flat_results(path):
    """``{task key: {metric: value}}`` of a results file (one test dataset or several)."""
    with open(path) as f:
        results = json.load(f)
    if any(key in results for key, _, _ in COLUMNS):
        return results
    flat = {}  # several test datasets: {dataset: {task key: ...}}
    for per_dataset in results.values():
        flat.update(per_dataset)
    return flat


def _iterations(folder):
    """Iterations of the final checkpoint (the number recorded by detectron2's checkpointer)."""
    path = os.path.join(folder, "last_checkpoint")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        name = f.read().strip()
    if name == "model_final.pth":
        import torch  # only here: the table is cheap otherwise

        checkpoint = torch.load(os.path.join(folder, name), map_location="cpu", weights_only=False)
        return checkpoint.get("iteration", -1) + 1
    return None


def format_table(rows):
    columns = ["model", "data", "iterations"] + [column for _, _, column in COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_cell(row[column]) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value):
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def write_table(out, rows):
    text = format_table(rows)
    with atomic_path(os.path.join(out, "table.md")) as tmp, open(tmp, "w") as f:
        f.write(text + "\n")
    write_json(os.path.join(out, "table.json"), rows, indent=1)
    return text


def main(argv=None):
    args = parse_args(argv)
    if os.path.abspath(os.getenv("DETECTRON2_DATASETS", "datasets")) != os.path.abspath(args.root):
        sys.exit(f"set DETECTRON2_DATASETS={args.root}: the registered datasets read from there")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    run(plan(args), env)
    text = write_table(args.out, table(args))
    print(f"== held-out metrics ({args.out}/table.md)\n{text}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="sample")
    parser.add_argument("--root", default="datasets/sample",
                        help="datasets root holding bdd100k/ (= DETECTRON2_DATASETS)")
    parser.add_argument("--out", default="output/pipeline", help="folder of every stage's output")
    parser.add_argument("--configs", help="a folder of the six configs, instead of the recipe's")
    parser.add_argument("--split-sizes", help="task=N,... instead of the recipe's split sizes")
    parser.add_argument("--with-strategies", action="store_true",
                        help="also train the uniform, weighted and round-robin students (table 1)")
    parser.add_argument("--num-gpus", type=int, default=1,
                        help="processes per training and labeling stage (GLOO without GPUs)")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="KEY VALUE config overrides for every training stage")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
