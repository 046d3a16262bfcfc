#!/usr/bin/env python
"""Check registered datasets before a long training: read and validate every image and mask,
report every bad file with its problem and the images per task; exit status 1 if any problem.

    DETECTRON2_DATASETS=datasets python tools/check_dataset.py \
        bdd100k_multitask_train bdd100k_multitask_val --num-workers 8
"""
import argparse
import os
import sys

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger

import lv_adapter  # noqa: F401  (registers the datasets)
from lv_adapter.data.validation import check_datasets
from lv_adapter.projects import add_project_argument, import_projects


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="registered dataset names")
    parser.add_argument("--num-workers", type=int, default=os.cpu_count() or 1,
                        help="processes reading files (0: read in this process)")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    import_projects(args.project)
    unknown = [name for name in args.datasets if name not in DatasetCatalog.list()]
    if unknown:
        ours = [n for n in DatasetCatalog.list() if MetadataCatalog.get(n).get("tasks")]
        parser.error(f"not registered: {', '.join(unknown)}; lv_adapter registers "
                     f"{', '.join(sorted(ours))} (a project's datasets: add --project "
                     "projects/<Name>)")
    return args


def main(argv=None):
    args = parse_args(argv)
    setup_logger(name="lv_adapter")  # loading counts and warnings about unmatched files
    report = check_datasets(args.datasets, args.num_workers, progress=True)
    print(report.format())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
