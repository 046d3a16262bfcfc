"""BDD100K category definitions: names, ids, colours and name mappings.

Detection follows the official ``det_20`` order; semantic segmentation uses the 19 Cityscapes
train ids stored in BDD100K's ``sem_seg`` masks; drivable-area segmentation uses the current
encoding of ``labels/drivable/masks`` (0 = direct, 1 = alternative, 2 = background).
"""

# The three tasks of the multi-task model. These strings are the values of ``MODEL.TASKS`` and of
# the ``labeled_tasks`` entry of every dataset dict and model input.
DETECTION = "detection"
SEMANTIC = "semantic"
DRIVABLE = "drivable"
TASKS = (DETECTION, SEMANTIC, DRIVABLE)

IGNORE_LABEL = 255

DET_CLASSES = (
    "pedestrian",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
    "traffic light",
    "traffic sign",
)
# Colours of the matching Cityscapes classes, so boxes and semantic overlays agree.
DET_COLORS = (
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
    (250, 170, 30),
    (220, 220, 0),
)

# Other names for the same classes: the 2018 release (bdd100k_labels_images_*.json) and the
# official toolkit's det config (name_mapping).
LEGACY_DET_NAMES = {
    "person": "pedestrian",
    "bike": "bicycle",
    "motor": "motorcycle",
    "caravan": "car",
    "van": "car",
}

# Boxes of these categories are ignore regions (COCO iscrowd=1) of the class they map to, as in
# the official toolkit's det config (ignore_mapping): neither training targets nor false
# positives at evaluation. Any box whose attributes say ``crowd`` is an ignore region too.
IGNORED_DET_CATEGORIES = {
    "other person": "pedestrian",
    "other vehicle": "car",
    "trailer": "truck",
}

# Polygon-only categories of the 2018 label files; they carry no box and are not detection labels.
NON_BOX_CATEGORIES = ("drivable area", "lane")

SEM_SEG_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
SEM_SEG_COLORS = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)

DRIVABLE_CLASSES = ("direct", "alternative", "background")
DRIVABLE_COLORS = ((219, 94, 86), (86, 211, 219), (0, 0, 0))
DRIVABLE_BACKGROUND = 2

# Each task's class names by task, and the metadata key that holds them for a registered dataset
# (detectron2's own keys for detection and semantic segmentation). BDD100K's are the default.
BDD100K_TASK_CLASSES = {
    DETECTION: DET_CLASSES, SEMANTIC: SEM_SEG_CLASSES, DRIVABLE: DRIVABLE_CLASSES
}
CLASS_METADATA_KEYS = {
    DETECTION: "thing_classes", SEMANTIC: "stuff_classes", DRIVABLE: "drivable_classes"
}


def task_classes(metadata, task):
    """The class names of ``task``, in label-id order, that a dataset's ``metadata`` holds under
    :data:`CLASS_METADATA_KEYS`; BDD100K's when it holds none (or ``metadata`` is None).

    Every consumer (heads' class counts, mask checks, evaluators, prompts) asks here, so another
    dataset (projects/NuImages) brings its classes in its metadata. Returns a tuple.
    """
    if task not in BDD100K_TASK_CLASSES:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(BDD100K_TASK_CLASSES)}")
    names = metadata.get(CLASS_METADATA_KEYS[task], None) if metadata is not None else None
    return tuple(names) if names is not None else BDD100K_TASK_CLASSES[task]


# The 2018 layout (drivable_maps/labels/*_drivable_id.png) encodes 0 = background, 1 = direct,
# 2 = alternative; this table maps those ids to the current encoding.
LEGACY_DRIVABLE_TO_CURRENT = (2, 0, 1)


def det_category_id(name):
    """Map a BDD100K detection category name to ``(category_id, is_ignore_region)``.

    ``category_id`` is the contiguous id 0..9 in :data:`DET_CLASSES` order; legacy names are
    accepted. Raises KeyError naming the category when it is unknown.
    """
    if name in IGNORED_DET_CATEGORIES:
        return DET_CLASSES.index(IGNORED_DET_CATEGORIES[name]), True
    name = LEGACY_DET_NAMES.get(name, name)
    if name not in DET_CLASSES:
        known = DET_CLASSES + tuple(LEGACY_DET_NAMES) + tuple(IGNORED_DET_CATEGORIES)
        raise KeyError(f"unknown detection category {name!r}; known: {', '.join(known)}")
    return DET_CLASSES.index(name), False
