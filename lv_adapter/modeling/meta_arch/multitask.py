"""The multi-task meta-architecture: one backbone, an adapter slot, one head per task."""
import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList
from detectron2.utils import comm
from torch import nn

from lv_adapter.modeling.adapter import build_adapter
from lv_adapter.modeling import detection, segmentation  # noqa: F401  (register their heads)
from lv_adapter.modeling.task_heads import build_task_head
from lv_adapter.tasks import get_task, task_names

__all__ = ["MultiTaskModel"]


@META_ARCH_REGISTRY.register()
class MultiTaskModel(nn.Module):
    """ResNet + FPN backbone, an adapter slot, and one head per task in ``MODEL.TASKS``.

    With one task it is that task's single-task teacher; with all three it is the student.
    """

    @configurable
    def __init__(self, *, backbone, adapter, heads, task_weights, pixel_mean, pixel_std,
                 channels_last=False):
        """
        Args:
            backbone (Backbone): returns the FPN feature dict.
            adapter (nn.Module): feature dict -> feature dict of the same shapes.
            heads (dict[str, nn.Module]): task name -> head; the keys are registered tasks.
            task_weights (dict[str, float]): task name -> weight of its losses.
            pixel_mean, pixel_std (list[float]): per-channel input normalization.
            channels_last (bool): keep convolution weights and the input batch in NHWC
                memory order, which oneDNN's CPU convolutions run faster (ResNet-50 + FPN on a
                1280x720 image: 1.8 s -> 1.5 s on 2 cores, see BENCHMARKS.md). Values and
                checkpoints are the same either way.
        """
        super().__init__()
        if not heads:
            raise ValueError(f"MODEL.TASKS is empty; choose from {list(task_names())}")
        self.backbone = backbone
        self.adapter = adapter
        self.heads = nn.ModuleDict(heads)
        self.task_weights = dict(task_weights)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    @classmethod
    def from_config(cls, cfg):
        unknown = [t for t in cfg.MODEL.TASKS if t not in task_names()]
        if unknown:
            raise ValueError(f"MODEL.TASKS has unknown tasks {unknown}; choose from "
                             f"{list(task_names())} (a project's tasks are registered when its "
                             f"package is imported: run the project's train_net.py)")
        backbone = build_backbone(cfg)
        shape = backbone.output_shape()
        return {
            "backbone": backbone,
            "adapter": build_adapter(cfg, shape, top_block=getattr(backbone, "top_block", None)),
            "heads": {task: build_task_head(cfg, shape, task) for task in cfg.MODEL.TASKS},
            "task_weights": {
                t: cfg.MODEL.TASK_WEIGHTS[get_task(t).config_key] for t in cfg.MODEL.TASKS
            },
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "channels_last": cfg.MODEL.CHANNELS_LAST,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    @property
    def tasks(self):
        return list(self.heads.keys())

    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs (list[dict]): MultiTaskDatasetMapper outputs: ``image`` (CxHxW), and
                in training ``labeled_tasks``, ``instances``, ``sem_seg``, ``drivable_seg``;
                optional ``height``/``width`` (the original size) in inference.

        Returns:
            training: dict of scalar losses ``loss_<task>_<term>``, each times its task weight;
            inference: per image a dict with ``instances``, ``sem_seg`` [19, H, W] and/or
            ``drivable_seg`` [3, H, W] (the model's tasks), at the original resolution.
        """
        images = self.preprocess_image(batched_inputs)
        features = self.adapter(self.backbone(images.tensor))
        if self.training:
            return self.losses(batched_inputs, images, features)
        return self.inference(batched_inputs, images, features)

    def preprocess_image(self, batched_inputs):
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        return ImageList(images.tensor.contiguous(memory_format=self.memory_format),
                         images.image_sizes)

    def losses(self, batched_inputs, images, features):
        """The losses of every head; also sets :attr:`unlabeled_tasks` (see there)."""
        self.unlabeled_tasks = _unlabeled_everywhere(self.tasks, batched_inputs, self.device)
        losses = {}
        for task, head in self.heads.items():
            keep = [i for i, x in enumerate(batched_inputs) if task in _labeled_tasks(x)]
            if keep:
                task_losses = self._task_losses(task, head, batched_inputs, images, features, keep)
            else:
                task_losses = _zero_losses(head, self.device)
            losses.update({k: v * self.task_weights[task] for k, v in task_losses.items()})
        _check_finite(losses)
        return losses

    def _task_losses(self, task, head, batched_inputs, images, features, keep):
        """Run ``head`` on the images labeled for ``task`` only."""
        inputs = [batched_inputs[i] for i in keep]
        if len(keep) < len(batched_inputs):
            index = torch.as_tensor(keep, device=self.device)
            features = {k: v.index_select(0, index) for k, v in features.items()}
            sizes = [images.image_sizes[i] for i in keep]
            images = ImageList(images.tensor.index_select(0, index), sizes)
        spec = get_task(task)
        return spec.run_head(head, features, images, spec.targets(inputs, images))[1]

    def inference(self, batched_inputs, images, features):
        outputs = [{} for _ in batched_inputs]
        for task, head in self.heads.items():
            spec = get_task(task)
            results = spec.run_head(head, features, images, None)[0]
            for out, result, x, size in zip(outputs, results, batched_inputs, images.image_sizes):
                height, width = x.get("height", size[0]), x.get("width", size[1])
                out[spec.output_key] = spec.postprocess(result, size, height, width)
        return outputs


def _unlabeled_everywhere(tasks, batched_inputs, device):
    """The tasks for which no image of the global batch (every process's) is labeled.

    Their heads get zero gradients (:func:`_zero_losses`), and an optimizer with momentum or
    weight decay would still move them; :func:`lv_adapter.engine.solver.build_optimizer` skips
    their parameters instead. One small all-reduce, so every process agrees.
    """
    counts = torch.tensor([sum(t in _labeled_tasks(x) for x in batched_inputs) for t in tasks],
                          device=device)  # the model's device: CUDA under NCCL, CPU under GLOO
    if comm.get_world_size() > 1:
        torch.distributed.all_reduce(counts)
    return [task for task, count in zip(tasks, counts.tolist()) if count == 0]


def _labeled_tasks(x):
    if "labeled_tasks" not in x:
        raise KeyError(
            f"training input {x.get('file_name', '?')} has no 'labeled_tasks': use "
            "MultiTaskDatasetMapper, or say which tasks the image is labeled for"
        )
    return x["labeled_tasks"]


def _zero_losses(head, device):
    """The head's usual loss keys with zero values that still depend on all its parameters.

    No image of the batch is labeled for this task: the loss is zero, but the graph must touch
    every parameter so DistributedDataParallel finds gradients for all of them, every process
    must log the same keys, and this process must join the all-reduce of the loss normalizers
    (target count, class weights) that the other processes' criteria make.
    """
    normalizers = getattr(getattr(head, "criterion", None), "normalizers", None)
    if normalizers is not None:
        normalizers(None, [], device)
    zero = sum(p.sum() for p in head.parameters() if p.requires_grad) * 0.0
    return {key: zero for key in head.loss_keys()}


def _check_finite(losses):
    values = torch.stack([v.detach().float() for v in losses.values()])
    if not torch.isfinite(values).all():
        bad = [k for k, v in losses.items() if not torch.isfinite(v).all()]
        raise FloatingPointError(
            f"loss became NaN or infinite in {bad}; all losses: "
            + ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
        )
