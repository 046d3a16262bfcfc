"""nuImages dataset names, registered for the datasets root (``DETECTRON2_DATASETS``); reads no
file until a dataset is loaded.

``nuimages_train`` (v1.0-train), ``nuimages_val`` (v1.0-val), ``nuimages_mini`` (v1.0-mini).
"""
import functools
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.tasks import DETECTION, SEMANTIC
from lv_nuimages.categories import nuimages_metadata
from lv_nuimages.nuimages import load_nuimages, semantic_mask_folder
from lv_nuimages.tables import table_path

__all__ = ["VERSIONS", "register_all_nuimages", "register_nuimages"]

VERSIONS = {
    "nuimages_train": "v1.0-train", "nuimages_val": "v1.0-val", "nuimages_mini": "v1.0-mini",
}


def register_nuimages(name, root, version):
    """Register ``<root>/nuimages/<version>`` as dataset ``name`` with nuImages' classes."""
    DatasetCatalog.register(name, functools.partial(load_nuimages, root, version))
    MetadataCatalog.get(name).set(
        tasks=[DETECTION, SEMANTIC],
        image_root=os.path.join(root, "nuimages"),
        json_file=table_path(os.path.join(root, "nuimages", version), "object_ann"),
        sem_seg_root=semantic_mask_folder(root, version),
        export_folder="nuimages",  # predictions: <output>/inference/<name>/nuimages/
        **nuimages_metadata(),
    )


def register_all_nuimages(root):
    for name, version in VERSIONS.items():
        if name not in DatasetCatalog:
            register_nuimages(name, root, version)
