"""bench/mining/refresher_overhead.py: the pairing and the summary (no training run)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refresher_overhead import summarize  # noqa: E402


def run(strategy, seed, repeat, total, mining, recall=0.5):
    return {"strategy": strategy, "seed": seed, "repeat": repeat, "recall": recall, "total_s": total, "mining_s": mining}


def test_ratios_are_per_pair_and_unpaired_runs_are_left_out():
    runs = [run("base", 1, 1, 20.0, 0.0, 0.50), run("ref", 1, 1, 22.0, 2.2, 0.52),
            run("base", 2, 1, 10.0, 0.0, 0.40), run("ref", 2, 1, 15.0, 3.0, 0.44),
            run("base", 3, 1, 40.0, 0.0)]  # no partner: not counted
    s = summarize(runs, "base", "ref")
    assert s["pairs"] == 2
    assert s["wall_ratio"] == [1.1, 1.5]
    assert s["wall_ratio_median"] == pytest.approx(1.3) and s["wall_ratio_mean"] == pytest.approx(1.3)
    assert s["mining_share"] == [0.1, 0.2]
    assert s["total_s"] == {"base": 30.0, "ref": 37.0}
    assert s["recall"] == {"base": 0.45, "ref": 0.48}


def test_no_pair_is_an_error():
    with pytest.raises(ValueError, match="no .* pair"):
        summarize([run("base", 1, 1, 20.0, 0.0)], "base", "ref")
