"""One Hungarian matcher for every set-prediction head (Sparse R-CNN and MaskFormer).

Each head's criterion computes a pairwise cost matrix per image (predictions x targets); this
module only solves the assignment, so both heads share the exact same matching code.
"""
import torch
from scipy.optimize import linear_sum_assignment


@torch.no_grad()
def hungarian_match(costs):
    """Minimum-cost one-to-one assignment, image by image.

    Args:
        costs (list[Tensor]): per image, a [Q, T_i] cost matrix (Q predictions, T_i targets).
            T_i may be 0.

    Returns:
        list[tuple[LongTensor, LongTensor]]: per image, ``(pred_idx, target_idx)``, each of length
        min(Q, T_i), sorted by ``pred_idx``; on the cost matrix's device.
    """
    matches = []
    for cost in costs:
        if not torch.isfinite(cost).all():
            raise FloatingPointError(f"matching cost holds NaN or inf: {cost}")
        rows, cols = linear_sum_assignment(cost.detach().cpu().float().numpy())
        matches.append(
            (
                torch.as_tensor(rows, dtype=torch.int64, device=cost.device),
                torch.as_tensor(cols, dtype=torch.int64, device=cost.device),
            )
        )
    return matches


def split_batched_cost(cost, num_targets):
    """Cut a batched cost [B, Q, sum(T_i)] into the per-image blocks [Q, T_i].

    Heads compute costs for the whole batch at once (one big matrix product) and keep only each
    image's own targets.
    """
    blocks = cost.split(list(num_targets), dim=-1)
    return [block[i] for i, block in enumerate(blocks)]
