"""Deterministic train/val/test assignment.

The split of a record depends only on its id and the seed (sha256, not Python's salted `hash`), so it
is the same on every machine and run, and adding records never moves existing ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

SPLITS = ("train", "val", "test")
T = TypeVar("T")


def _check_fractions(fractions: tuple[float, float, float]) -> None:
    if (
        len(fractions) != len(SPLITS)
        or any(f < 0 for f in fractions)
        or not math.isclose(sum(fractions), 1.0)
    ):
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1, got {fractions}"
        )


def split_of(record_id: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    _check_fractions(fractions)
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction
        if u < edge:
            return name
    return next(name for name, f in zip(reversed(SPLITS), reversed(fractions), strict=True) if f > 0)


def _group_id(record: Any) -> str:
    """A pair goes where its post goes (no leakage of a post's replies across splits)."""
    return getattr(record, "post_id", None) or record.id


def split(
    records: Iterable[T],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    key: Callable[[T], str] = _group_id,
) -> dict[str, list[T]]:
    """Records grouped by split, in input order: a record's own `split` when the data fixes one, else
    by the hash of `key` (default: a pair's post_id when it has one, else the record's id)."""
    out: dict[str, list[T]] = {name: [] for name in SPLITS}
    for record in records:
        fixed = getattr(record, "split", None)
        out[fixed if isinstance(fixed, str) else split_of(key(record), fractions, seed)].append(record)
    return out
