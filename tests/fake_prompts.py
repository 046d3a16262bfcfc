"""A stand-in with the interface of ``TaskPrompts`` (lv_adapter/modeling/adapter/prompts.py):
no text encoder, fixed random class embeddings plus one learned context vector per task."""
import torch
from torch import nn
from torch.nn import functional as F

from lv_adapter.tasks.detection import DET_CLASSES
from lv_adapter.tasks.drivable import DRIVABLE_CLASSES
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES

CLASS_COUNTS = {"detection": len(DET_CLASSES), "semantic": len(SEM_SEG_CLASSES),
                "drivable": len(DRIVABLE_CLASSES)}


class FakeTaskPrompts(nn.Module):
    """forward() -> {task: [C_task, output_dim]}, L2-normalised; counts its calls."""

    def __init__(self, tasks, output_dim=16):
        super().__init__()
        self.tasks = list(tasks)
        self.output_dim = output_dim
        self.calls = 0
        for i, task in enumerate(self.tasks):
            names = torch.randn(CLASS_COUNTS[task], output_dim,
                                generator=torch.Generator().manual_seed(i))
            # Frozen like a text tower's outputs: not in the state_dict.
            self.register_buffer(f"names_{task}", names, persistent=False)
        self.context = nn.ParameterDict(
            {task: nn.Parameter(0.1 * torch.ones(output_dim)) for task in self.tasks}
        )

    def forward(self):
        self.calls += 1
        return {t: F.normalize(getattr(self, f"names_{t}") + self.context[t], dim=-1)
                for t in self.tasks}


def build_fake_prompts(cfg, tasks):
    return FakeTaskPrompts(tasks)


def refuse_to_build(cfg, tasks):
    raise AssertionError("a model given a text features file built the task prompts")
