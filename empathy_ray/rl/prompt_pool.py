"""The GRPO prompt pool: training posts, with crisis posts repeated up to a configured share.

Crisis posts are few in any counselling data set (5 of 55 training posts in the samples), so with a
handful of prompts per step most GRPO steps hold none, the safety reward term never applies, and the
policy is optimised on RM score alone; a demo run once lost the SFT model's crisis-path rate that way.
Repeating the training crisis posts makes them `rl.crisis_share` of the pool the driver's Cursor draws
from, so a step of B prompts holds about B * share of them. Only posts of the training split are ever
pooled: the held-out crisis posts measure what this does and must not be trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from empathy_ray.data.records import Post
from empathy_ray.domain.safety import assess

T = TypeVar("T")


def is_crisis_post(post: Post) -> bool:
    """Marked crisis in the data, or the guard finds risk in it: the posts the safety term applies to
    (it assesses the post text) and the eval counts as flagged (eval/answers.py)."""
    return post.crisis or assess(post.text).is_risky


@dataclass(frozen=True)
class PoolStats:
    """What the pool holds, for the stage summary and the log."""

    posts: int  # distinct training posts
    entries: int  # pool size, repeats included
    crisis_posts: int  # distinct crisis posts among them
    crisis_entries: int  # crisis entries, repeats included

    @property
    def crisis_share(self) -> float:
        return self.crisis_entries / self.entries if self.entries else 0.0


def oversample(items: Sequence[T], is_crisis: Callable[[T], bool], share: float) -> list[T]:
    """`items` in their order, then crisis items repeated (round-robin, in their order) until crisis
    entries are at least `share` of the pool. Unchanged when share is 0, already met, or when there are
    no crisis items or no others (no share to raise).
    """
    if not 0 <= share < 1:
        raise ValueError(f"rl.crisis_share must be in [0, 1), got {share}")
    crisis = [item for item in items if is_crisis(item)]
    others = len(items) - len(crisis)
    if share == 0 or not crisis or others == 0:
        return list(items)
    # crisis / (crisis + others) >= share  <=>  crisis >= share * others / (1 - share)
    wanted = math.ceil(share * others / (1 - share) - 1e-9)
    extra = max(0, wanted - len(crisis))
    return list(items) + [crisis[i % len(crisis)] for i in range(extra)]


def pool_stats(pool: Sequence[Post]) -> PoolStats:
    crisis = [p for p in pool if is_crisis_post(p)]
    return PoolStats(len({p.id for p in pool}), len(pool), len({p.id for p in crisis}), len(crisis))
