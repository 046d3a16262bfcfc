#!/usr/bin/env python
"""Draw a trained model's predictions: boxes over the drivable area (left), semantic overlay
(right), with detectron2's Visualizer. Input: image files, a folder of images, or a video.

    python tools/visualize_predictions.py --config-file configs/sample/multitask_R18.yaml \
        --input datasets/sample/bdd100k/images/100k/val --output output/predictions \
        MODEL.WEIGHTS output/sample/multitask_R18/model_final.pth
    python tools/visualize_predictions.py --config-file CFG --input IMAGES --output OUT \
        --exported output/export          # the exported model (tools/export_model.py)
"""
import argparse
import glob
import logging
import os
import sys

import cv2
from detectron2.data import Metadata
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from lv_adapter.config import build_config
from lv_adapter.data.classes import config_metadata
from lv_adapter.data.datasets.bdd100k import bdd100k_metadata
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.readers import read_image
from lv_adapter.engine.predictor import Predictor
from lv_adapter.projects import add_project_argument, import_projects
from lv_adapter.utils.io import atomic_path, write_image
from lv_adapter.utils.visualizer import draw_multitask, predictions_of

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")


def draw(predictor, image_bgr, score_threshold, input_format, scale, metadata):
    """Predict one BGR image and return the drawing, BGR, ``scale`` times its size; classes are
    named by ``metadata``."""
    image = image_bgr[:, :, ::-1] if input_format == "RGB" else image_bgr
    drawables = predictions_of(predictor(image.copy()), score_threshold)
    picture = draw_multitask(image_bgr[:, :, ::-1], metadata, drawables=drawables, scale=scale)
    return cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)


def image_files(inputs):
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = glob.glob(os.path.join(item, "*"))
            files += sorted(f for f in found if f.lower().endswith(IMAGE_EXTENSIONS))
        else:
            files.append(item)
    if not files:
        raise FileNotFoundError(f"no images found in {inputs}")
    return files


def run_images(predictor, files, out_dir, args, input_format, metadata):
    """Draw every image of ``files``; an unreadable one is named on stderr and skipped.

    Returns:
        list[BadSampleError]: the skipped images.
    """
    skipped = []
    for path in tqdm(files, desc="predicting"):
        try:
            image = read_image(path, "BGR")
        except BadSampleError as e:
            tqdm.write(f"skipping an unreadable image: {e}", file=sys.stderr)
            skipped.append(e)
            continue
        picture = draw(predictor, image, args.confidence_threshold, input_format, args.scale,
                       metadata)
        stem = os.path.splitext(os.path.basename(path))[0]
        write_image(os.path.join(out_dir, f"{stem}.png"), picture)
    return skipped


def run_video(predictor, path, out_dir, args, input_format, metadata):
    video = cv2.VideoCapture(path)
    if not video.isOpened():
        raise OSError(f"{path}: cannot open the video")
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = video.get(cv2.CAP_PROP_FPS) or 10.0
    target = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + ".mp4")
    with atomic_path(target) as tmp:
        writer = None
        for _ in tqdm(range(frames), desc="predicting frames"):
            ok, frame = video.read()
            if not ok:
                break
            picture = draw(predictor, frame, args.confidence_threshold, input_format, args.scale,
                           metadata)
            if writer is None:
                size = (picture.shape[1], picture.shape[0])
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            writer.write(picture)
        if writer is not None:
            writer.release()
    video.release()
    return target


def exported_model(folder, cfg):
    """The model exported to ``folder``, run by onnxruntime; refused when exported from another
    config."""
    from lv_adapter.deploy.runtime import ExportedModel, check_matches_config

    model = ExportedModel(folder)
    check_matches_config(model.info, cfg, folder)
    return model


def main(args):
    """Draw; return the exit status: 1 when an image could not be read (each named on stderr,
    the others drawn all the same)."""
    if not logging.getLogger("lv_adapter").handlers:  # not yet set up by a caller (the demo)
        setup_logger(name="lv_adapter")
    import_projects(args.project)
    cfg = build_config(args.config_file, args.opts)
    # The classes the model was trained on, by name (BDD100K's for a config without datasets).
    metadata = config_metadata(cfg) or Metadata(**bdd100k_metadata())
    predictor = Predictor(cfg, exported_model(args.exported, cfg) if args.exported else None)
    os.makedirs(args.output, exist_ok=True)
    if len(args.input) == 1 and args.input[0].lower().endswith(VIDEO_EXTENSIONS):
        print("wrote", run_video(predictor, args.input[0], args.output, args, cfg.INPUT.FORMAT,
                                 metadata))
        return 0
    files = image_files(args.input)
    skipped = run_images(predictor, files, args.output, args, cfg.INPUT.FORMAT, metadata)
    print(f"wrote {len(files) - len(skipped)} drawings to {args.output}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable images (named above)")
    return 1 if skipped else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input", nargs="+", required=True, help="images, a folder, or a video")
    parser.add_argument("--output", required=True, help="folder for PNG drawings or the MP4")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--scale", type=float, default=1.0, help="drawing size / image size")
    parser.add_argument("--exported", metavar="DIR", help="draw the predictions of the model "
                        "exported to DIR (tools/export_model.py), run by onnxruntime")
    add_project_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
