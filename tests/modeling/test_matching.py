"""The shared Hungarian matcher."""
import itertools

import pytest
import torch

from lv_adapter.modeling.matching import hungarian_match, split_batched_cost


def brute_force_min_cost(cost):
    q, t = cost.shape
    return min(
        sum(cost[p, j] for j, p in enumerate(perm)).item()
        for perm in itertools.permutations(range(q), t)
    )


@pytest.mark.parametrize("seed", range(5))
def test_assignment_is_optimal_and_one_to_one(seed):
    cost = torch.rand(5, 3, generator=torch.Generator().manual_seed(seed))
    ((rows, cols),) = hungarian_match([cost])
    assert len(set(rows.tolist())) == 3 and sorted(cols.tolist()) == [0, 1, 2]
    assert cost[rows, cols].sum().item() == pytest.approx(brute_force_min_cost(cost))


def test_known_assignment():
    cost = torch.tensor([[9.0, 1.0], [1.0, 9.0], [5.0, 5.0]])
    ((rows, cols),) = hungarian_match([cost])
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_batched_cost_equals_per_image_matching():
    g = torch.Generator().manual_seed(0)
    sizes = [2, 0, 4]
    per_image = [torch.rand(6, n, generator=g) for n in sizes]
    batched = torch.zeros(3, 6, sum(sizes))
    batched[0, :, :2], batched[1, :, 2:2], batched[2, :, 2:] = per_image
    batched[0, :, 2:] = 100.0  # other images' targets must not matter
    batched[2, :, :2] = -100.0
    blocks = split_batched_cost(batched, sizes)
    for (r1, c1), (r2, c2) in zip(hungarian_match(blocks), hungarian_match(per_image)):
        assert r1.tolist() == r2.tolist() and c1.tolist() == c2.tolist()


def test_empty_targets_match_nothing():
    ((rows, cols),) = hungarian_match([torch.zeros(4, 0)])
    assert rows.numel() == 0 and cols.numel() == 0 and rows.dtype == torch.int64


def test_nan_cost_is_an_error():
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        hungarian_match([torch.tensor([[float("nan")]])])
