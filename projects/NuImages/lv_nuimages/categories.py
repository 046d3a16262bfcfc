"""nuImages categories and the two tasks' classes built from them.

nuImages v1.0 labels objects (boxes and instance masks) with 23 categories and surfaces (masks)
with two. Detection uses the 10 classes of the nuScenes detection benchmark (the usual nuImages
detection setting); semantic segmentation paints every annotated pixel with the class of its
annotation: the 10 object classes, the two surfaces, and "background" for pixels no annotation
covers. Objects of the categories those classes leave out (animals, debris, strollers, ...) are
no detection target and are ignored (255) in the semantic masks: calling their pixels background
would teach the model that they are.
"""
IGNORE_LABEL = 255

OBJECT_CATEGORIES = (
    "animal",
    "human.pedestrian.adult",
    "human.pedestrian.child",
    "human.pedestrian.construction_worker",
    "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer",
    "human.pedestrian.stroller",
    "human.pedestrian.wheelchair",
    "movable_object.barrier",
    "movable_object.debris",
    "movable_object.pushable_pullable",
    "movable_object.trafficcone",
    "static_object.bicycle_rack",
    "vehicle.bicycle",
    "vehicle.bus.bendy",
    "vehicle.bus.rigid",
    "vehicle.car",
    "vehicle.construction",
    "vehicle.emergency.ambulance",
    "vehicle.emergency.police",
    "vehicle.motorcycle",
    "vehicle.trailer",
    "vehicle.truck",
)
SURFACE_CATEGORIES = ("flat.driveable_surface", "vehicle.ego")

DET_CLASSES = (
    "car", "truck", "trailer", "bus", "construction_vehicle", "bicycle", "motorcycle",
    "pedestrian", "traffic_cone", "barrier",
)
DET_COLORS = (
    (0, 0, 142), (0, 0, 70), (110, 80, 60), (0, 60, 100), (230, 150, 30), (119, 11, 32),
    (0, 0, 230), (220, 20, 60), (250, 170, 30), (190, 153, 153),
)
# nuImages object category -> detection class (nuScenes' mapping); the others are not targets.
DET_CLASS_OF = {
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.barrier": "barrier",
    "movable_object.trafficcone": "traffic_cone",
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.construction": "construction_vehicle",
    "vehicle.motorcycle": "motorcycle",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
}

SEM_CLASSES = ("background",) + DET_CLASSES + ("driveable_surface", "ego_vehicle")
SEM_COLORS = ((70, 70, 70),) + DET_COLORS + ((128, 64, 128), (81, 0, 81))
BACKGROUND = 0
_SURFACE_CLASS_OF = {"flat.driveable_surface": "driveable_surface", "vehicle.ego": "ego_vehicle"}


def det_class_id(category):
    """The detection class id of an object category, or None when it is not a target."""
    name = DET_CLASS_OF.get(category)
    return None if name is None else DET_CLASSES.index(name)


def sem_class_id(category):
    """The semantic label of an object or surface category (IGNORE_LABEL: not a class here)."""
    name = DET_CLASS_OF.get(category) or _SURFACE_CLASS_OF.get(category)
    return IGNORE_LABEL if name is None else SEM_CLASSES.index(name)


def nuimages_metadata():
    """Class names and colours for ``MetadataCatalog`` (detectron2's keys, as lv_adapter reads
    them: ``thing_classes`` for detection, ``stuff_classes`` for semantic segmentation)."""
    return {
        "thing_classes": list(DET_CLASSES),
        "thing_colors": [list(c) for c in DET_COLORS],
        "stuff_classes": list(SEM_CLASSES),
        "stuff_colors": [list(c) for c in SEM_COLORS],
        "ignore_label": IGNORE_LABEL,
    }
