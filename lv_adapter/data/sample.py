"""Write a small, procedurally drawn dataset in the real BDD100K layout.

There is no BDD100K data offline, so tests, the demo and the benchmarks use this generator. It
writes, under ``out_dir/bdd100k`` (``out_dir`` is a datasets root, like $DETECTRON2_DATASETS)::

    images/100k/{train,val}/<stem>.jpg               detection + drivable-area images
    images/10k/{train,val}/<stem>.jpg                semantic segmentation images
    labels/det_20/det_{train,val}.json               Scalabel frames, one per 100k image
    labels/drivable/masks/{train,val}/<stem>.png     0 direct, 1 alternative, 2 background
    labels/sem_seg/masks/{train,val}/<stem>.png      Cityscapes train ids 0..18, 255 ignore
    sample_manifest.json                             what this generator wrote (see SampleWriter)

Each scene (drawn by :mod:`lv_adapter.data.scenes`) has one role, as in the real data:
"100k" (detection + drivable labels), "10k" (semantic labels), "both" (the same JPEG under the
same stem in both image sets, with all three labels) or "leak" (in 10k/train and also in
100k/val, as some real 10k images are; split code must keep them out of training). Every sample
also holds the real labels' quirks: one train frame with ``"labels": null`` (an empty road),
crowd boxes and "other vehicle" boxes. Output is byte-identical for identical arguments.
"""
import json
import operator
import os
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from lv_adapter.data.scenes import draw_scene
from lv_adapter.tasks.detection import DET_CLASSES
from lv_adapter.utils.io import write_image, write_json

MIN_IMAGES, MIN_WIDTH, MIN_HEIGHT = 12, 64, 36
SPLITS = ("train", "val")
ROLES = ("100k", "10k", "both", "leak")
ROLE_SHARES = {"100k": 0.45, "10k": 0.2, "both": 0.3, "leak": 0.05}
VAL_SHARE = 0.25
JPEG_PARAMS = (cv2.IMWRITE_JPEG_QUALITY, 90)
TIMESTAMP = 10000
MANIFEST = "sample_manifest.json"


@dataclass(frozen=True)
class ScenePlan:
    """What one scene is and where it goes.

    split: the split of its images; a "leak" scene has split "val" (its detection frame is in
    det_val) and its 10k copy in train. empty / crowd / other_vehicle: forced scene content.
    """

    index: int
    stem: str
    role: str
    split: str
    empty: bool = False
    crowd: bool = False
    other_vehicle: bool = False

    @property
    def copies(self):
        """((image set "100k" or "10k", split), ...) the scene's JPEG is saved in."""
        if self.role == "leak":
            return (("100k", "val"), ("10k", "train"))
        sets = {"100k": ("100k",), "10k": ("10k",), "both": ("100k", "10k")}[self.role]
        return tuple((image_set, self.split) for image_set in sets)


def image_path(root, image_set, split, stem):
    """``root/images/<image_set>/<split>/<stem>.jpg``; root is the bdd100k folder."""
    return os.path.join(root, "images", image_set, split, stem + ".jpg")


def mask_path(root, image_set, split, stem):
    """The mask saved with an image: drivable for the 100k set, semantic for the 10k set."""
    task = "drivable" if image_set == "100k" else "sem_seg"
    return os.path.join(root, "labels", task, "masks", split, stem + ".png")


def det_path(root, split):
    """``root/labels/det_20/det_<split>.json``."""
    return os.path.join(root, "labels", "det_20", f"det_{split}.json")


def check_args(num_images, width, height, seed):
    """Raise ValueError (TypeError for non-integers) unless a sample can hold every role."""
    num_images, width, height, seed = map(operator.index, (num_images, width, height, seed))
    if num_images < MIN_IMAGES:
        raise ValueError(f"num_images must be at least {MIN_IMAGES}, so that every role "
                         f"(100k-only, 10k-only, both, leak) appears in train and val; "
                         f"got {num_images}")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"images must be at least {MIN_WIDTH}x{MIN_HEIGHT} pixels, so that "
                         f"every kind of object can be drawn 3 pixels or more; got "
                         f"{width}x{height}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0; got {seed}")


def role_counts(num_images):
    """Scenes per (split, role): {(split, role): count}, every role in both splits.

    About ROLE_SHARES of the scenes per role and VAL_SHARE of them in val; the leak scenes are
    keyed ("val", "leak") since their detection frames are in val.
    """
    leak = max(1, round(ROLE_SHARES["leak"] * num_images))
    rest = num_images - leak
    val = max(3, round(VAL_SHARE * rest))
    counts = {("val", "leak"): leak}
    for split, count in (("train", rest - val), ("val", val)):
        ten_k = max(1, round(count * ROLE_SHARES["10k"] / (1 - ROLE_SHARES["leak"])))
        both = max(1, round(count * ROLE_SHARES["both"] / (1 - ROLE_SHARES["leak"])))
        counts[(split, "10k")], counts[(split, "both")] = ten_k, both
        counts[(split, "100k")] = count - ten_k - both
    return counts


def _stems(rng, count):
    """``count`` unique BDD100K-like stems ('0a0a0b1a-7c39d841'), in drawing order."""
    stems, seen = [], set()
    while len(stems) < count:
        high, low = rng.integers(0, 2**32, size=2)
        stem = f"{int(high):08x}-{int(low):08x}"
        if stem not in seen:
            seen.add(stem)
            stems.append(stem)
    return stems


def _special_scenes(roles):
    """Scene index -> forced content, given each scene's (split, role).

    Train "both" scenes (always at least 3) hold the empty road, a crowd and an other vehicle,
    so their semantic masks show them too; one val "both" scene holds another other vehicle.
    """
    def nth(key, n):
        return [i for i, role in enumerate(roles) if role == key][n]

    return {nth(("train", "both"), 0): {"empty": True},
            nth(("train", "both"), 1): {"crowd": True},
            nth(("train", "both"), 2): {"other_vehicle": True},
            nth(("val", "both"), 0): {"other_vehicle": True}}


def plan_scenes(num_images, seed):
    """The list of ScenePlan, in scene index order; roles are shuffled with the seed."""
    rng = np.random.default_rng(seed)  # the root seed sequence; scenes use its children
    slots = [key for key, count in sorted(role_counts(num_images).items()) for _ in range(count)]
    roles = [slots[k] for k in rng.permutation(len(slots))]
    stems = _stems(rng, num_images)
    special = _special_scenes(roles)
    return [ScenePlan(i, stems[i], role, split, **special.get(i, {}))
            for i, (split, role) in enumerate(roles)]


def scene_rng(seed, index):
    """The random generator of scene ``index``: depends on (seed, index) only."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def scalabel_label(label, label_id):
    """A det_20 label dict from a scene label (see scenes.canvas.Canvas.labels)."""
    x1, y1, x2, y2 = label["box"]
    return {"id": str(label_id), "category": label["category"],
            "attributes": {"occluded": label["occluded"], "truncated": label["truncated"],
                           "trafficLightColor": label["light"], "crowd": label["crowd"]},
            "box2d": {"x1": float(x1), "y1": float(y1), "x2": float(x2), "y2": float(y2)}}


def _has_files(folder):
    """Whether ``folder`` (which may not exist) holds any file, at any depth."""
    return any(files for _, _, files in os.walk(folder))


class SampleWriter:
    """Writes a sample scene by scene (so callers can show progress), then the label files::

        writer = SampleWriter(out_dir, num_images, width, height, seed)
        for index in range(len(writer)):
            writer.write_scene(index)
        summary = writer.finish()

    The manifest (``bdd100k/sample_manifest.json``, written first) lists every file of the
    sample. A later sample in the same place deletes the files of the earlier one that it does
    not rewrite, so no stale image survives; a bdd100k folder with files but no manifest (real
    data, say) is refused rather than overwritten. A subclass writes further labels of each
    scene (a project's task: projects/LaneMarking's lane masks) through :meth:`extra_files` and
    :meth:`write_extra`.
    """

    def __init__(self, out_dir, num_images=60, width=1280, height=720, seed=0):
        check_args(num_images, width, height, seed)
        self.root = os.path.abspath(os.path.join(os.fspath(out_dir), "bdd100k"))
        self.width, self.height, self.seed = int(width), int(height), int(seed)
        self.plans = plan_scenes(int(num_images), self.seed)
        self.frames = {}  # scene index -> det_20 frame (scenes with a 100k copy)
        self.written = set()
        self._start()

    def __len__(self):
        return len(self.plans)

    def files(self):
        """Paths, relative to the bdd100k folder, of every file of the sample."""
        paths = [det_path("", split) for split in SPLITS]
        for plan in self.plans:
            for image_set, split in plan.copies:
                paths += [image_path("", image_set, split, plan.stem),
                          mask_path("", image_set, split, plan.stem)]
            paths += self.extra_files(plan)
        return sorted(os.path.normpath(p) for p in paths)

    def extra_files(self, plan):
        """Paths (relative to the bdd100k folder) of the further labels a subclass writes for
        the scene of ``plan`` (a project's task); none here. See :meth:`write_extra`."""
        return []

    def write_extra(self, scene, plan):
        """Write the further labels of :meth:`extra_files` from the drawn ``scene`` (its label
        maps: ``scene.markings``, ``scene.sem``, ...); a subclass's hook, nothing here."""

    def _start(self):
        """Refuse a foreign folder, drop an earlier sample's leftovers, write the manifest."""
        manifest = os.path.join(self.root, MANIFEST)
        if not os.path.exists(manifest) and _has_files(self.root):
            raise FileExistsError(f"{self.root} holds files that no sample wrote (it has no "
                                  f"{MANIFEST}); refusing to overwrite them, choose another "
                                  f"output folder")
        files = self.files()
        if os.path.exists(manifest):
            with open(manifest) as f:
                stale = [os.path.normpath(os.path.join(self.root, rel))
                         for rel in set(json.load(f)["files"]) - set(files)]
            # Temporary files of a killed run too (see lv_adapter.utils.io.atomic_path).
            stale += [os.path.join(folder, name) for folder, _, names in os.walk(self.root)
                      for name in names if name.startswith(".tmp-")]
            for path in sorted(stale):
                if path.startswith(self.root + os.sep) and os.path.isfile(path):
                    os.remove(path)
        write_json(manifest, {"generator": __name__, "seed": self.seed, "width": self.width,
                              "height": self.height, "files": files}, indent=1)

    def write_scene(self, index):
        """Draw scene ``index`` and write its images and masks; keep its detection frame."""
        plan = self.plans[index]
        scene = draw_scene(scene_rng(self.seed, index), self.height, self.width,
                           empty=plan.empty, crowd=plan.crowd, other_vehicle=plan.other_vehicle)
        bgr = np.ascontiguousarray(scene.image[..., ::-1])
        for image_set, split in plan.copies:
            write_image(image_path(self.root, image_set, split, plan.stem), bgr, JPEG_PARAMS)
            mask = scene.drivable if image_set == "100k" else scene.sem
            write_image(mask_path(self.root, image_set, split, plan.stem), mask)
            if image_set == "100k":
                self.frames[index] = {"name": plan.stem + ".jpg", "attributes": scene.attributes,
                                      "timestamp": TIMESTAMP,
                                      "labels": None if plan.empty else scene.labels}
        self.write_extra(scene, plan)
        self.written.add(index)

    def finish(self):
        """Write det_train.json and det_val.json; return the summary (see :meth:`summary`)."""
        missing = sorted(set(range(len(self.plans))) - self.written)
        if missing:
            raise RuntimeError(f"scenes {missing} were not written yet")
        for split in SPLITS:
            write_json(det_path(self.root, split), self.det_frames(split))
        return self.summary()

    def det_frames(self, split):
        """The det_20 frames of ``split``, sorted by name; label ids unique within the split."""
        frames = sorted((self.frames[plan.index] for plan in self.plans
                         if ("100k", split) in plan.copies), key=lambda frame: frame["name"])
        out, next_id = [], 0
        for frame in frames:
            labels = frame["labels"]
            if labels is not None:
                labels = [scalabel_label(label, next_id + k) for k, label in enumerate(labels)]
                next_id += len(labels)
            out.append({**frame, "labels": labels})
        return out

    def summary(self):
        """Counts of what was written: a dict with

        root: the bdd100k folder; images: {"images/<set>/<split>": count}; frames: {split:
        count}; scenes: {split: {role: count}}; boxes: {category: count} over both splits;
        crowd_boxes: count; leaked: sorted stems in 10k/train and 100k/val; empty_frames: stems
        of frames whose labels are null.
        """
        images, scenes, boxes = Counter(), {s: Counter() for s in SPLITS}, Counter()
        for plan in self.plans:
            scenes[plan.split][plan.role] += 1
            for image_set, split in plan.copies:
                images[f"images/{image_set}/{split}"] += 1
        labels = [label for frame in self.frames.values() for label in frame["labels"] or ()]
        boxes.update(label["category"] for label in labels)
        order = list(DET_CLASSES) + sorted(set(boxes) - set(DET_CLASSES))
        return {
            "root": self.root,
            "images": {f"images/{s}/{p}": images[f"images/{s}/{p}"] for s in ("100k", "10k")
                       for p in SPLITS},
            "frames": {split: sum(("100k", split) in p.copies for p in self.plans)
                       for split in SPLITS},
            "scenes": {split: {role: scenes[split][role] for role in ROLES if scenes[split][role]}
                       for split in SPLITS},
            "boxes": {category: boxes[category] for category in order},
            "crowd_boxes": sum(label["crowd"] for label in labels),
            "leaked": sorted(p.stem for p in self.plans if p.role == "leak"),
            "empty_frames": sorted(p.stem for p in self.plans if p.empty),
        }


def write_sample_bdd100k(out_dir, num_images=60, width=1280, height=720, seed=0):
    """Write a sample BDD100K dataset under ``out_dir/bdd100k``; return SampleWriter.summary().

    Raises ValueError when num_images < 12, width < 64 or height < 36 (a sample must hold every
    role in both splits), FileExistsError when ``out_dir/bdd100k`` holds files of another kind.
    """
    writer = SampleWriter(out_dir, num_images, width, height, seed)
    for index in range(len(writer)):
        writer.write_scene(index)
    return writer.finish()


def format_summary(summary):
    """One paragraph describing a summary from :func:`write_sample_bdd100k`."""
    images = ", ".join(f"{folder} {count}" for folder, count in summary["images"].items())
    scenes = "; ".join(f"{split}: " + ", ".join(f"{role} {n}" for role, n in roles.items())
                       for split, roles in summary["scenes"].items())
    boxes = ", ".join(f"{category} {n}" for category, n in summary["boxes"].items())
    return (f"Wrote a sample BDD100K to {summary['root']}. Images: {images}. Scenes by split "
            f"and role ({scenes}). det_20 frames: train {summary['frames']['train']}, val "
            f"{summary['frames']['val']} (each 100k image also has a drivable mask, each 10k "
            f"image a semantic mask). Boxes: {boxes} ({summary['crowd_boxes']} crowd). "
            f"{len(summary['leaked'])} leaked stem(s) in both 10k/train and 100k/val: "
            f"{', '.join(summary['leaked'])}. Frame(s) with null labels: "
            f"{', '.join(summary['empty_frames'])}.")
