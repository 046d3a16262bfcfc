"""Running a trained model on raw images, outside of a dataset."""
import torch
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from lv_adapter.engine.checkpoint import SafeCheckpointer
from lv_adapter.engine.fold_norms import fold_frozen_norms


class Predictor:
    """Loads ``cfg.MODEL.WEIGHTS`` (refusing no weights, weights of the wrong shapes and weights
    that leave part of the model unset, see :class:`SafeCheckpointer`) and predicts one
    image at a time, resized as in evaluation.

    Call with an HxWx3 uint8 image in ``cfg.INPUT.FORMAT``; returns the model's output dict at
    the image's own resolution (``instances``, ``sem_seg``, ``drivable_seg``). ``model``: a
    model to run instead of building one (an exported model, ``lv_adapter.deploy``).
    """

    def __init__(self, cfg, model=None):
        if model is None:
            model = build_model(cfg).eval()
            SafeCheckpointer(model, strict=True).load(cfg.MODEL.WEIGHTS)
            fold_frozen_norms(model)  # inference only from here on
        self.model = model.eval()
        self.resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)

    @torch.no_grad()
    def __call__(self, image):
        height, width = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        return self.model([{"image": tensor, "height": height, "width": width}])[0]
