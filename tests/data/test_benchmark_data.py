"""tools/benchmark_data.py: interleaved rounds and the spread of the per-round ratio."""
import os
import sys

import torch

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tools"))
import benchmark_data  # noqa: E402


def test_a_round_alternates_the_mappers_image_by_image_and_flips_the_order():
    calls = []

    def mapper(name):
        return lambda d: calls.append((name, d["i"])) or d

    dicts = [{"i": i, "file_name": f"{i}.jpg"} for i in range(3)]
    times = benchmark_data.time_round([(mapper("a"), dicts), (mapper("b"), dicts)], 2, first=1)
    assert calls == [("b", 0), ("a", 0), ("a", 1), ("b", 1), ("b", 2), ("a", 2),
                     ("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert len(times) == 2 and all(t >= 0 for t in times)


def test_spread_is_median_quartiles_and_range():
    assert benchmark_data.spread([5.0, 1.0, 4.0, 2.0, 3.0]) == (3.0, 2.0, 4.0, 1.0, 5.0)
    assert benchmark_data.spread([1.5]) == (1.5,) * 5


def test_the_benchmark_reports_the_ratio_spread(capsys):
    threads = torch.get_num_threads()
    try:
        benchmark_data.main(benchmark_data.parse_args(
            ["--num-images", "12", "--rounds", "2", "--passes", "1"]))
    finally:
        torch.set_num_threads(threads)  # the tool runs 1 thread, as a DataLoader worker does
    out = capsys.readouterr().out
    assert "ratio ours / stock per round: median" in out and "IQR" in out and "min-max" in out
