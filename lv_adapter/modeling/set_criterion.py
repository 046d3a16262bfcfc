"""The set-prediction loss shared by Sparse R-CNN and MaskFormer.

For each decoder stage (deep supervision), predictions are matched one-to-one to targets by the
Hungarian matcher on a weighted sum of pairwise costs, then the matched pairs (and, for the class
term, the unmatched predictions) are scored. The same weights weigh the costs and the losses.
Subclasses say what the costs and the loss terms are; this base does matching, normalization,
weighting, naming and the empty cases.
"""
import torch
from detectron2.utils import comm
from torch import nn

from lv_adapter.modeling.matching import hungarian_match


class SetCriterion(nn.Module):
    """Base class. Loss keys are ``loss_<task>_<term>`` for the last stage and
    ``loss_<task>_<term>_<stage>`` for the earlier ones.

    Args:
        task (str): the task name used in loss keys ("detection", "semantic", "drivable").
        weights (dict[str, float]): weight of each term, for cost and loss alike.
        deep_supervision (bool): also score every earlier stage.
    """

    def __init__(self, task, weights, deep_supervision=True):
        super().__init__()
        self.task = task
        self.weights = dict(weights)
        self.deep_supervision = deep_supervision

    def pairwise_costs(self, outputs, targets):
        """Return, per image, ``{term: [Q, T_i] cost}`` for the terms in ``self.weights``."""
        raise NotImplementedError

    def loss_terms(self, outputs, targets, matches, num_targets):
        """Return ``{term: scalar loss}``, each normalized by ``num_targets`` as the term needs.

        A subclass that adds counts in :meth:`local_counts` receives them as further keyword
        arguments, averaged over processes like ``num_targets``.
        """
        raise NotImplementedError

    def local_counts(self, outputs, targets):
        """The sums this process contributes to the loss normalizers.

        Returns ``{name: (local sum, least global value)}``; :meth:`normalizers` averages each
        sum over processes. A loss term that divides its local sum by such an average is, under
        DistributedDataParallel's averaging of gradients, the single-process loss on the union of
        the batches, also when a process holds no image of this task. ``outputs`` is None and
        ``targets`` empty in a process that joins the collective call without images.
        """
        return {"num_targets": (float(sum(len(t["labels"]) for t in targets)), 1.0)}

    def forward(self, stage_outputs, targets):
        """
        Args:
            stage_outputs (list[dict]): predictions of each stage, last stage last; the keys are
                the subclass's.
            targets (list[dict]): one per image; the keys are the subclass's.

        Returns:
            dict[str, Tensor]: weighted scalar losses.
        """
        device = next(iter(stage_outputs[-1].values())).device
        normalizers = self.normalizers(stage_outputs[-1], targets, device)
        stages = stage_outputs if self.deep_supervision else stage_outputs[-1:]
        losses = {}
        for i, outputs in enumerate(stages):
            matches = self.match(outputs, targets)
            terms = self.loss_terms(outputs, targets, matches, **normalizers)
            for term, value in terms.items():
                losses[self._key(term, i, len(stages))] = value * self.weights[term]
        return losses

    def loss_keys(self, num_stages):
        """The keys :meth:`forward` returns for ``num_stages`` stages of outputs.

        A model whose batch has no image labeled for this task reports these keys with zero
        values, so every process and iteration logs the same keys.
        """
        stages = num_stages if self.deep_supervision else 1
        return [self._key(term, i, stages) for i in range(stages) for term in self.weights]

    def _key(self, term, stage, num_stages):
        suffix = "" if stage == num_stages - 1 else f"_{stage}"
        return f"loss_{self.task}_{term}{suffix}"

    @torch.no_grad()
    def match(self, outputs, targets):
        """Hungarian matching on the weighted sum of :meth:`pairwise_costs`."""
        costs = []
        for image_costs in self.pairwise_costs(outputs, targets):
            for term, cost in image_costs.items():
                if not torch.isfinite(cost).all():
                    raise FloatingPointError(
                        f"{self._key(term, 0, 1)}: the matching cost is NaN or infinite "
                        "(the head's predictions are)"
                    )
            costs.append(sum(self.weights[term] * cost for term, cost in image_costs.items()))
        return hungarian_match(costs)

    def normalizers(self, outputs, targets, device):
        """:meth:`local_counts` averaged over processes, each at least its least value.

        Several processes: this is one collective call, so a process whose batch has no image of
        this task must still make it (``outputs=None, targets=[]``) whenever the others compute
        the loss.
        """
        counts = self.local_counts(outputs, targets)
        sums = torch.as_tensor(
            [value for value, _ in counts.values()], dtype=torch.float32, device=device
        )
        if comm.get_world_size() > 1:
            torch.distributed.all_reduce(sums)
        means = (sums / comm.get_world_size()).tolist()
        return {
            name: max(mean, least) for (name, (_, least)), mean in zip(counts.items(), means)
        }
