"""A DetectionCheckpointer that writes atomically, refuses weights that do not fit, and resumes
past a corrupt checkpoint."""
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from lv_adapter import compat
from lv_adapter.utils.io import TEMPORARY_PREFIX, atomic_path, remove_stale_temporaries

# Beyond this many missing keys the error groups them by module.
MAX_LISTED_KEYS = 20


class UnreadableCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read (truncated, corrupt, not a checkpoint)."""

    def __init__(self, path, cause):
        super().__init__(
            f"{path}: cannot read this checkpoint; it is truncated or corrupt "
            f"({type(cause).__name__}: {cause})"
        )
        self.path = path


class SafeCheckpointer(DetectionCheckpointer):
    """detectron2's checkpointer, changed so that nothing goes wrong silently:

    * ``save`` writes to a temporary file and renames it, and so does the ``last_checkpoint``
      tag: a run killed at any moment leaves only complete checkpoints. The temporary files of
      such a kill are removed when the checkpointer of the next run is made (main process);
    * loading weights whose shapes do not fit the model raises, naming every mismatching key,
      instead of skipping them with a warning (a wrong config would otherwise train from
      partly random weights without anyone noticing);
    * with ``strict=True`` (evaluation, prediction) loading also raises when the weights leave
      any entry of the model's ``state_dict`` unset, or when no path is given; training from
      partial weights (ImageNet backbones) keeps detectron2's warning;
    * a file that cannot be read raises :class:`UnreadableCheckpointError` naming it, and
      ``resume_or_load(..., resume=True)`` then falls back, with a warning, to the newest
      readable checkpoint in ``save_dir``.

    Args:
        model, save_dir, **kwargs: as for ``DetectionCheckpointer``.
        strict (bool): refuse weights that leave model entries unset.
    """

    def __init__(self, model, save_dir="", *, strict=False, **kwargs):
        super().__init__(model, save_dir, **kwargs)
        self.strict = strict
        self._loading = None
        if save_dir and self.save_to_disk:  # the one process that writes checkpoints there
            removed = remove_stale_temporaries(save_dir)
            if removed:
                self.logger.info(
                    f"Removed {len(removed)} temporary file(s) of an interrupted save from "
                    f"{save_dir}: {', '.join(removed)}"
                )

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

    def load(self, path, checkpointables=None):
        if not path and self.strict:
            raise ValueError(
                "no weights to load: set MODEL.WEIGHTS to a trained model's checkpoint (the "
                "model would otherwise run with random weights)"
            )
        self._loading = path  # for the error messages of _load_model
        try:
            return super().load(path, checkpointables)
        except UnreadableCheckpointError:
            compat.end_failed_checkpoint_load(self)  # so that resume can try an older file
            raise

    def resume_or_load(self, path, *, resume=True):
        """Resume from the last checkpoint in ``save_dir`` when ``resume`` and there is one,
        else load the weights ``path`` (model only).

        An unreadable last checkpoint is skipped with a warning for the newest readable one.
        """
        if not (resume and self.has_checkpoint()):
            return self.load(path, checkpointables=[])
        tried = []
        for candidate in self._resume_candidates():
            try:
                return self.load(candidate)
            except UnreadableCheckpointError as e:
                tried.append(candidate)
                self.logger.warning(f"{e}. Falling back to the newest checkpoint before it.")
        raise RuntimeError(
            f"cannot resume: no readable checkpoint in {self.save_dir} (tried "
            f"{', '.join(tried) or 'none'}); delete its last_checkpoint file to start afresh"
        )

    def _resume_candidates(self):
        """The tagged last checkpoint, then the other checkpoints in ``save_dir``, newest first."""
        last = self.get_checkpoint_file()
        if not os.path.isfile(last):
            self.logger.warning(f"{self.save_dir}/last_checkpoint names {last}, which is missing")
        others = [
            path for path in self.get_all_checkpoint_files()
            if not os.path.basename(path).startswith(TEMPORARY_PREFIX)
            and os.path.abspath(path) != os.path.abspath(last)
        ]
        others.sort(key=lambda p: (os.path.getmtime(p), p), reverse=True)
        return [last] + others if os.path.isfile(last) else others

    def _load_file(self, filename):
        try:
            return super()._load_file(filename)
        except Exception as e:  # torch.load raises several types for a damaged file
            raise UnreadableCheckpointError(filename, e) from e

    def _text_features_hint(self, incorrect_shapes):
        """Where the text projection does not fit and the model reads a text-features file, the
        file is the likelier culprit (dumped from another text encoder) than the checkpoint."""
        text = getattr(getattr(self.model, "adapter", None), "text", None)
        path = getattr(text, "path", None)
        if path is None or not any(key.startswith("adapter.text_proj")
                                   for key, _, _ in incorrect_shapes):
            return ""
        return (f"\nThe text projection takes the text features of MODEL.ADAPTER."
                f"TEXT_FEATURES_FILE {path}, {text.output_dim} wide: the checkpoint's text "
                "encoder gave features of another width, so the file was dumped from another "
                "text encoder than the one this checkpoint trained with")

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        if incompatible is None:
            return incompatible
        if incompatible.incorrect_shapes:
            rows = "\n".join(
                f"  {key}: checkpoint {tuple(ckpt)} vs model {tuple(model)}"
                for key, ckpt, model in incompatible.incorrect_shapes
            )
            raise ValueError(
                f"{self._loading}: checkpoint does not fit the model built from the config:\n"
                f"{rows}{self._text_features_hint(incompatible.incorrect_shapes)}"
            )
        if self.strict and incompatible.missing_keys:
            keys = incompatible.missing_keys
            rows = "\n".join(f"  {row}" for row in _group_keys(keys, MAX_LISTED_KEYS))
            raise ValueError(
                f"{self._loading}: the checkpoint lacks {len(keys)} entries of the model built "
                f"from the config (was it written for other MODEL.TASKS or another "
                f"architecture?):\n{rows}"
            )
        return incompatible


def _group_keys(keys, max_rows):
    """State-dict keys as at most ``max_rows`` lines (unless there are more top-level modules).

    Keys are grouped by their module prefix, at the deepest level that gives no more than
    ``max_rows`` groups: ``"heads.semantic.predictor.* (84 keys)"``; a group of one key is the
    key itself.
    """
    keys = sorted(keys)
    depth = max((key.count(".") + 1 for key in keys), default=1)
    while True:
        groups = {}
        for key in keys:
            groups.setdefault(".".join(key.split(".")[:depth]), []).append(key)
        if len(groups) <= max_rows or depth == 1:
            break
        depth -= 1
    return [
        members[0] if len(members) == 1 else f"{prefix}.* ({len(members)} keys)"
        for prefix, members in groups.items()
    ]
