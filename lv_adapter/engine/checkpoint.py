"""A DetectionCheckpointer that writes atomically and refuses weights of the wrong shapes."""
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from lv_adapter.utils.io import atomic_path


class SafeCheckpointer(DetectionCheckpointer):
    """Two changes to detectron2's checkpointer:

    * ``save`` writes to a temporary file and renames it, and so does the ``last_checkpoint``
      tag: a run killed at any moment leaves only complete checkpoints, and resumes from the
      last one;
    * loading weights whose shapes do not fit the model raises, naming every mismatching key,
      instead of skipping them with a warning (a wrong config would otherwise train from
      partly random weights without anyone noticing).
    """

    def save(self, name, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        path = os.path.join(self.save_dir, f"{name}.pth")
        self.logger.info(f"Saving checkpoint to {path}")
        with atomic_path(path) as tmp:
            torch.save(data, tmp)
        self.tag_last_checkpoint(os.path.basename(path))

    def tag_last_checkpoint(self, last_filename_basename):
        with atomic_path(os.path.join(self.save_dir, "last_checkpoint")) as tmp:
            with open(tmp, "w") as f:
                f.write(last_filename_basename)

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        if incompatible is not None and incompatible.incorrect_shapes:
            rows = "\n".join(
                f"  {key}: checkpoint {tuple(ckpt)} vs model {tuple(model)}"
                for key, ckpt, model in incompatible.incorrect_shapes
            )
            raise ValueError(f"checkpoint does not fit the model built from the config:\n{rows}")
        return incompatible
