"""Task prompts: each task's class names, behind learned or handcrafted context, through the text
encoder, giving ``T = L2_NORM(TE([v_t, n_i]))`` per task (the paper's task-specific prompts).

Modes (``MODEL.ADAPTER.PROMPT.MODE``, the rows of table 6):

* ``learned`` (CoOp): ``[v_1 .. v_N] <class name>.`` with N learned context vectors per task,
  shared by the task's classes or one set per class;
* ``handcrafted``: the first template filled with the class name, nothing learned;
* ``ensemble``: the mean of the normalised features of every template, normalised again.
"""
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from lv_adapter.data.classes import config_task_classes
from lv_adapter.modeling.adapter.text import build_text_encoder
from lv_adapter.tasks import get_task


def class_names(task, classes=None):
    """The readable class names of ``task``, in the order of its head's class ids.

    ``classes``: the dataset's label names of the task (``config_task_classes``); None: the
    task's defaults (BDD100K's). A name the task's ``readable_names`` spells out ("direct" ->
    "direct drivable area") is read that way; label strings with underscores ("traffic_cone")
    read as words ("traffic cone").
    """
    spec = get_task(task, key="MODEL.TASKS")
    classes = spec.classes if classes is None else classes
    return [spec.readable_names.get(name, name.replace("_", " ")) for name in classes]


class LearnedPrompt(nn.Module):
    """CoOp's prompt for one task: learned context vectors, then ``"<class name>."``.

    Args:
        encoder (FrozenTextEncoder): gives the token ids and, for ``ctx_init``, word embeddings.
        names (list[str]): the task's C class names.
        n_ctx (int): number N of context vectors (ignored when ``ctx_init`` is given).
        ctx_init (str): "" for N(0, 0.02) initialisation, or a phrase ("a photo of a") whose word
            embeddings initialise the context (N = its token count).
        class_specific (bool): one context per class ([C, N, W]) instead of one per task ([N, W]).
    """

    def __init__(self, encoder, names, n_ctx=16, ctx_init="", class_specific=False):
        super().__init__()
        self.token_ids = [encoder.tokenize(f"{name}.") for name in names]
        if ctx_init:
            with torch.no_grad():
                init = encoder.embed_tokens(torch.tensor(encoder.tokenize(ctx_init))).float().cpu()
        elif n_ctx >= 1:
            init = torch.randn(n_ctx, encoder.width) * 0.02
        else:
            raise ValueError(f"MODEL.ADAPTER.PROMPT.N_CTX must be >= 1 when learned, got {n_ctx}")
        if class_specific:
            init = init.expand(len(names), -1, -1).clone()
            if not ctx_init:  # each class its own draw
                init.normal_(std=0.02)
        # [N, W] shared by the classes, or [C, N, W]
        self.context = nn.Parameter(init)

    def groups(self):
        """What to encode: one group, the task's prompts behind their context."""
        return [(self.token_ids, self.context)]

    def combine(self, features):
        """The group's encoded features [[C, D]] -> [C, D]."""
        return features[0]


class TemplatePrompt(nn.Module):
    """Fixed prompts: each template filled with each class name; nothing learned.

    Args:
        encoder (FrozenTextEncoder): gives the token ids.
        names (list[str]): the task's C class names.
        templates (list[str]): T templates with one ``{}``; the features are the mean over
            templates of the normalised features, normalised again (one template: its features).
    """

    def __init__(self, encoder, names, templates):
        super().__init__()
        self.token_ids = [[encoder.tokenize(t.format(name)) for name in names] for t in templates]

    def groups(self):
        """What to encode: one group per template, without context."""
        return [(ids, None) for ids in self.token_ids]

    def combine(self, features):
        """The templates' encoded features, T x [C, D] -> [C, D]."""
        return F.normalize(torch.stack(features).mean(dim=0), dim=-1)


def _learned(encoder, names, n_ctx, ctx_init, class_specific, templates):
    return LearnedPrompt(encoder, names, n_ctx, ctx_init, class_specific)


def _handcrafted(encoder, names, n_ctx, ctx_init, class_specific, templates):
    return TemplatePrompt(encoder, names, templates[:1])


def _ensemble(encoder, names, n_ctx, ctx_init, class_specific, templates):
    return TemplatePrompt(encoder, names, templates)


PROMPT_MODES = {"learned": _learned, "handcrafted": _handcrafted, "ensemble": _ensemble}


def _check_templates(templates):
    if not templates:
        raise ValueError("MODEL.ADAPTER.PROMPT.TEMPLATES is empty")
    for template in templates:
        if template.count("{}") != 1 or any(b in template.replace("{}", "") for b in "{}"):
            raise ValueError(
                f"MODEL.ADAPTER.PROMPT.TEMPLATES: {template!r} must hold exactly one '{{}}' "
                "(where the class name goes) and no other braces"
            )


class TaskPrompts(nn.Module):
    """The text features of every task of the model, from one frozen text encoder.

    Only the learned context vectors are parameters (``prompts.<task>.context``); the encoder's
    tower is no part of ``state_dict()``. Without learned context (handcrafted, ensemble) the
    features are constant: they are computed once without gradients and reused until the module
    is moved or cast.

    Every task's prompts (every template's, in the ensemble mode) go through the text encoder in
    one call, one pass over the tower for all of them.

    Attributes:
        output_dim (int): D, the dimension of the text features.
        tasks (list[str]): the tasks, in the order of ``MODEL.TASKS``.
        one_pass (bool): True (default); False encodes task by task: the same features with
            several times the kernel launches (``tools/benchmark_speed.py --text-only``).
    """

    @configurable
    def __init__(
        self,
        *,
        encoder,
        tasks,
        mode="learned",
        n_ctx=16,
        ctx_init="",
        class_specific=False,
        templates=("a photo of a {}.",),
        classes=None,
    ):
        """
        Args:
            encoder (FrozenTextEncoder): the text encoder.
            tasks (list[str]): task names (of ``TASKS``).
            mode (str): a key of :data:`PROMPT_MODES`.
            n_ctx, ctx_init, class_specific: see :class:`LearnedPrompt` ("learned" mode only).
            templates (list[str]): see :class:`TemplatePrompt` ("handcrafted" uses the first).
            classes (dict or None): task -> its dataset's class labels (None or a missing task:
                BDD100K's); see :func:`class_names`.
        """
        super().__init__()
        if mode not in PROMPT_MODES:
            raise ValueError(
                f"MODEL.ADAPTER.PROMPT.MODE {mode!r} is not one of {', '.join(PROMPT_MODES)}"
            )
        if mode != "learned":
            _check_templates(templates)
        if not tasks:
            raise ValueError("MODEL.TASKS is empty: no task to build prompts for")
        self.encoder = encoder
        self.tasks = list(tasks)
        self.output_dim = encoder.output_dim
        self.mode = mode
        make = PROMPT_MODES[mode]
        self.prompts = nn.ModuleDict({
            task: make(encoder, class_names(task, (classes or {}).get(task)), n_ctx, ctx_init,
                       class_specific, list(templates))
            for task in self.tasks
        })
        self._fixed_features = None
        self.one_pass = True

    @classmethod
    def from_config(cls, cfg, tasks):
        node = cfg.MODEL.ADAPTER.PROMPT
        return {
            "encoder": build_text_encoder(cfg),
            "tasks": tasks,
            "mode": node.MODE,
            "n_ctx": node.N_CTX,
            "ctx_init": node.CTX_INIT,
            "class_specific": node.CLASS_SPECIFIC,
            "templates": list(node.TEMPLATES),
            "classes": {task: config_task_classes(cfg, task) for task in tasks},
        }

    @property
    def learned(self):
        """Whether any prompt has learned parameters (else the features never change)."""
        return any(True for _ in self.parameters())

    def forward(self):
        """-> dict task -> Tensor [C_task, D], L2-normalised, in the order of ``self.tasks``."""
        if self.learned:
            return self._encode()
        if self._fixed_features is None:
            with torch.no_grad():
                self._fixed_features = self._encode()
        return dict(self._fixed_features)

    def _encode(self):
        groups = {task: self.prompts[task].groups() for task in self.tasks}
        if self.one_pass:
            encoded = iter(self.encoder.encode_groups([g for t in self.tasks for g in groups[t]]))
            features = {task: [next(encoded) for _ in groups[task]] for task in self.tasks}
        else:
            features = {task: self.encoder.encode_groups(groups[task]) for task in self.tasks}
        return {task: self.prompts[task].combine(features[task]) for task in self.tasks}

    def _apply(self, fn, recurse=True):
        self._fixed_features = None  # recomputed on the new device / in the new dtype
        return super()._apply(fn, recurse)


def build_task_prompts(cfg, tasks):
    """The :class:`TaskPrompts` of ``tasks`` configured by ``cfg.MODEL.ADAPTER``."""
    return TaskPrompts(cfg, tasks)
