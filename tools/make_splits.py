#!/usr/bin/env python
"""Write the image lists of a disjoint training setting (see lv_adapter/data/splits.py).

Example:
    python tools/make_splits.py --root datasets --setting disjoint_normal \\
        --sizes detection=10000,semantic=6500,drivable=20000 --seed 0

The lists go to ``<root>/bdd100k/splits/<setting>/<task>.txt`` unless ``--out`` says otherwise;
``bdd100k_<setting>_train`` reads them from there. ``recipe.json`` beside them, written last,
records the sizes and the seed that drew them (tools/pipeline.py checks it before it reuses them).
"""
import argparse
import logging
import os

import lv_adapter  # noqa: F401  (first: sets up detectron2 before the data modules import it)
from lv_adapter.data.datasets.builtin import load_multitask, split_folder
from lv_adapter.data.errors import POLICIES, set_default_policy
from lv_adapter.data.splits import SETTINGS, make_split, save_split
from lv_adapter.tasks import BUILTIN_TASKS as TASKS  # the recipe's three tasks
from lv_adapter.utils.io import write_json

DISJOINT_SETTINGS = [name for name, sizes in SETTINGS.items() if sizes is not None]


def parse_sizes(text):
    """Parse ``task=N,task=N`` into a dict; N may be -1 (every remaining image)."""
    sizes = {}
    for item in filter(None, text.split(",")):
        task, sep, value = item.partition("=")
        task = task.strip()
        if not sep or task not in TASKS:
            raise argparse.ArgumentTypeError(f"expected task=N, task one of {TASKS}: {item!r}")
        try:
            sizes[task] = int(value)
        except ValueError:
            message = f"size of {task} is not an integer: {value!r}"
            raise argparse.ArgumentTypeError(message) from None
    return sizes


def recipe_path(folder):
    return os.path.join(folder, "recipe.json")


def split_recipe(setting, sizes, seed):
    """What draws a split: the setting's sizes with ``sizes`` over them, and the seed."""
    return {"setting": setting, "sizes": {**SETTINGS[setting], **sizes}, "seed": seed}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="datasets root holding bdd100k/")
    parser.add_argument("--setting", required=True, choices=DISJOINT_SETTINGS)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default={},
        help="images per task, overriding the setting's, e.g. detection=20,semantic=10,drivable=30",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output folder (default: <root>/bdd100k/splits/<setting>)")
    parser.add_argument("--on-bad-sample", choices=POLICIES, default="raise")
    return parser.parse_args(argv)


def main(argv=None):
    """Load the multi-task train set, draw the split, write it and print the counts."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    set_default_policy(args.on_bad_sample)
    sizes = {**SETTINGS[args.setting], **args.sizes}
    # The same loader as the registered bdd100k_multitask_train (leaked images already dropped).
    dicts = load_multitask(args.root, "train")
    split = make_split(dicts, sizes, seed=args.seed)
    out = args.out or split_folder(args.root, args.setting)
    save_split(split, out)
    write_json(recipe_path(out), split_recipe(args.setting, args.sizes, args.seed), indent=1)
    for task in TASKS:
        print(f"{task}: {len(split[task])} images")
    print(f"wrote {out}")
    return split


if __name__ == "__main__":
    main()
