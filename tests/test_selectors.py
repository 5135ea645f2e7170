"""SEIL selectors on constructed pools."""

from __future__ import annotations

import numpy as np
import pytest

from automimic.algos.selectors import Candidate, farthest_points, select, selector_names


def pool(disagreements, features):
    return [Candidate(None, d, np.asarray(f, dtype=float)) for d, f in zip(disagreements, features)]


RNG = np.random.default_rng(0)


def test_all_and_random_k():
    c = pool([0] * 6, [[i] for i in range(6)])
    assert select("all", c, 2, RNG) == [0, 1, 2, 3, 4, 5]
    picked = select("random-k", c, 3, np.random.default_rng(1))
    assert len(picked) == 3 and len(set(picked)) == 3
    assert picked == select("random-k", c, 3, np.random.default_rng(1))
    assert select("random-k", c, 10, RNG) == [0, 1, 2, 3, 4, 5]


def test_low_confidence_keeps_the_most_disputed():
    c = pool([0.1, 0.9, 0.3, 0.8, 0.0], [[0]] * 5)
    assert select("low-confidence", c, 2, RNG) == [1, 3]


def test_diverse_covers_the_extremes_of_start_states():
    # Eight starts crowded near the origin and two far apart: a diverse pick of 3 must take both
    # outliers and one of the crowd, never two crowd members.
    crowd = [[0.01 * i, 0.0] for i in range(8)]
    c = pool([0] * 10, crowd + [[5.0, 5.0], [-5.0, 4.0]])
    picked = select("diverse", c, 3, RNG)
    assert {8, 9} <= set(picked) and len(picked) == 3


def test_uncertain_diverse_combines_both():
    # Candidates 0-3 are uncertain, 4-7 confident; among the uncertain ones 0 and 1 coincide.
    c = pool([0.9, 0.9, 0.8, 0.7, 0.1, 0.1, 0.0, 0.0],
             [[0, 0], [0, 0.001], [3, 0], [0, 3], [9, 9], [-9, 9], [9, -9], [-9, -9]])
    picked = select("uncertain-diverse", c, 2, RNG)
    assert set(picked) <= {0, 1, 2, 3}  # only from the uncertain shortlist
    assert not {0, 1} <= set(picked)  # and not two copies of the same start


def test_farthest_points_is_deterministic_and_bounded():
    x = np.random.default_rng(3).normal(size=(20, 4))
    assert farthest_points(x, 5) == farthest_points(x, 5)
    assert sorted(farthest_points(x, 30)) == list(range(20))


def test_unknown_selector_and_empty_pool():
    with pytest.raises(ValueError, match="unknown selector 'best'"):
        select("best", pool([0], [[0]]), 1, RNG)
    assert select("diverse", [], 3, RNG) == []
    assert {"all", "random-k", "low-confidence", "diverse", "uncertain-diverse"} <= set(selector_names())


def test_diverse_prefers_what_the_training_set_lacks():
    # Candidates on a line; the training set already covers the left end, so a diverse pick of 2
    # takes the right end first and then the middle, never the already-covered left end.
    c = pool([0] * 5, [[0.0], [1.0], [2.0], [3.0], [4.0]])
    existing = np.array([[0.0], [0.1]])
    assert select("diverse", c, 1, RNG, existing=existing) == [4]
    assert select("diverse", c, 2, RNG, existing=existing) == [2, 4]
    # Without context, the two extremes come first.
    assert select("diverse", c, 2, RNG) == [0, 4]
