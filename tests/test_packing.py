"""Micro-batches by padded-token budget (train/packing.py), with budgets worked out by hand."""

from __future__ import annotations

import pytest

from empathy_ray.train.packing import pack_by_tokens


def test_budget_bounds_rows_times_longest_row():
    # lengths 5, 2, 9, 3, 3 sorted: 2 (1), 3 (3), 3 (4), 5 (0), 9 (2)
    lengths = [5, 2, 9, 3, 3]
    # budget 10: [2, 3, 3] pads to 3 x 3 = 9; adding 5 would be 4 x 5 = 20; [5] then 2 x 9 = 18 > 10
    assert pack_by_tokens(lengths, 10) == [[1, 3, 4], [0], [2]]
    # budget 8: [2, 3] is 6, a third row 9; [3, 5] would be 10; the row of 9 > 8 still goes, alone
    assert pack_by_tokens(lengths, 8) == [[1, 3], [4], [0], [2]]
    # rows only (the fixed micro-batch size), and no limit at all
    assert pack_by_tokens(lengths, 0, 2) == [[1, 3], [4, 0], [2]]
    assert pack_by_tokens(lengths) == [[1, 3, 4, 0, 2]]
    # both limits: 3 rows x 5 = 15 fits 16 tokens, the row cap of 2 splits it first
    assert pack_by_tokens(lengths, 16, 2) == [[1, 3], [4, 0], [2]]


def test_every_index_once_and_bad_limits():
    lengths = [7, 1, 4, 4, 12, 6, 2, 9]
    batches = pack_by_tokens(lengths, 12)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 12 or len(b) == 1 for b in batches)
    assert pack_by_tokens([], 10) == []
    with pytest.raises(ValueError, match="limits must be >= 0"):
        pack_by_tokens([1], -1)
