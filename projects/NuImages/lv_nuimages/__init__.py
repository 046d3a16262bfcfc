"""nuImages for lv_adapter's multi-task model (the paper's table 11): the v1.0 tables read as
detection + semantic segmentation dataset dicts, the semantic masks made from the tables' masks,
and a generator of small nuImages-format sample sets.

Importing this package registers ``nuimages_{train,val,mini}`` under the datasets root
(``DETECTRON2_DATASETS``, default ``datasets``); the project's train_net.py does that first.
"""
import os

from lv_nuimages.builtin import register_all_nuimages

register_all_nuimages(os.environ.get("DETECTRON2_DATASETS", "datasets"))
