"""How an epoch is cut into batches: the plain cut, and a last batch too small for BatchNorm."""

from __future__ import annotations

import pytest

from batchlab.data.epoch import epoch_bounds


def sizes(n, size, limit=10**9, min_batch=1):
    return [b - a for a, b in epoch_bounds(n, size, limit, min_batch)]


@pytest.mark.parametrize(("n", "size"), [(160, 53), (159, 53), (158, 53), (10, 3), (7, 10),
                                         (1, 1), (12, 4)])
def test_without_a_minimum_the_cut_is_the_plain_one(n, size):
    plain = [(i, min(i + size, n)) for i in range(0, n, size)]
    assert list(epoch_bounds(n, size, 10**9)) == plain
    assert list(epoch_bounds(n, size, 2)) == plain[:2]  # a run ending mid-epoch


def test_a_last_batch_of_one_takes_an_example_from_the_batch_before():
    # 160 = 3 x 53 + 1: BatchNorm refuses the lone example, so it gets a companion
    assert list(epoch_bounds(160, 53, 10**9, 2)) == [(0, 53), (53, 106), (106, 158), (158, 160)]
    assert sizes(160, 53, min_batch=2) == [53, 53, 52, 2]  # same steps, every example once
    assert sizes(160, 53, limit=3, min_batch=2) == [53, 53, 52]  # the whole epoch's cut
    assert sizes(159, 53, min_batch=2) == [53, 53, 53]  # nothing to fix
    assert sizes(161, 53, min_batch=2) == [53, 53, 53, 2]
    # two processes need 2 each (min_batch 4): a last batch of 1 or 3 takes what it lacks
    assert sizes(41, 10, min_batch=4) == [10, 10, 10, 7, 4]
    assert sizes(43, 10, min_batch=4) == [10, 10, 10, 9, 4]


def test_a_batch_too_small_to_share_keeps_the_plain_cut():
    assert sizes(5, 2, min_batch=2) == [2, 2, 1]  # batches of 2 cannot spare an example
    assert sizes(1, 53, min_batch=2) == [1]  # a single batch: nothing before it
    assert sizes(13, 6, min_batch=4) == [6, 6, 1]  # 6 + 1 < 2 x 4
    assert sizes(45, 10, min_batch=8) == [10, 10, 10, 10, 5]  # 10 + 5 < 2 x 8
