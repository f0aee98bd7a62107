"""The GRPO prompt pool repeats training crisis posts up to `rl.crisis_share`, never pools a held-out
post, and so puts crisis posts into most steps of the demo's GRPO run (fast: no Ray, no model)."""

from __future__ import annotations

from collections import Counter

import pytest

from empathy_ray.config import ConfigError, load_config
from empathy_ray.data import dataset
from empathy_ray.rl.driver import Cursor
from empathy_ray.rl.prompt_pool import is_crisis_post, oversample, pool_stats
from empathy_ray.rl.stage import training_pool


def _is_upper(item: str) -> bool:
    return item.isupper()


def test_oversample_repeats_crisis_items_round_robin_until_the_share_is_reached() -> None:
    items = ["a", "B", "c", "d", "E", "f", "g", "h"]  # 2 crisis (upper case) of 8
    pool = oversample(items, _is_upper, 0.5)
    assert pool[: len(items)] == items  # the originals first, in order
    assert pool[len(items) :] == ["B", "E", "B", "E"]  # 6 crisis entries against 6 others
    third = oversample(items, _is_upper, 1 / 3)  # 6 others need 3 crisis entries: one repeat
    assert Counter(third) == Counter(items) + Counter(["B"])


def test_oversample_leaves_the_pool_alone_when_it_cannot_or_need_not_raise_the_share() -> None:
    items = ["a", "B", "c", "D"]
    assert oversample(items, _is_upper, 0.0) == items
    assert oversample(items, _is_upper, 0.4) == items  # already half of the pool
    assert oversample(["a", "b"], _is_upper, 0.5) == ["a", "b"]  # no crisis item to repeat
    assert oversample(["A", "B"], _is_upper, 0.5) == ["A", "B"]  # nothing else in the pool
    with pytest.raises(ValueError, match=r"rl.crisis_share must be in \[0, 1\)"):
        oversample(items, _is_upper, 1.0)


def test_the_demo_pool_holds_only_training_posts_with_crisis_posts_at_the_configured_share() -> None:
    cfg = load_config(None, ["rl.crisis_share=0.25"])
    pool = training_pool(cfg)
    assert {dataset.post_split(p, cfg.data) for p in pool} == {"train"}
    held_out = [p for p in dataset.load_posts(cfg.data) if dataset.post_split(p, cfg.data) != "train"]
    assert sum(is_crisis_post(p) for p in held_out) >= 10  # the eval's crisis posts stay out
    stats = pool_stats(pool)
    assert (stats.posts, stats.crisis_posts) == (55, 5)
    assert (stats.entries, stats.crisis_entries) == (67, 17)  # 17 / 67 = 0.254: the least at 0.25
    repeats = Counter(p.id for p in pool if is_crisis_post(p))
    assert max(repeats.values()) - min(repeats.values()) <= 1  # each crisis post about as often
    unchanged = training_pool(load_config(None, ["rl.crisis_share=0"]))
    assert [p.id for p in unchanged] == [p.id for p in pool[: len(unchanged)]]


def test_the_default_share_puts_a_crisis_post_into_most_of_the_demo_steps() -> None:
    cfg = load_config(None, [])
    steps, per_step = cfg.rl.steps, cfg.rl.prompts_per_step

    def steps_with_crisis(pool: list) -> int:
        cursor = Cursor(seed=cfg.run.seed)
        return sum(
            any(is_crisis_post(pool[i]) for i in cursor.take(per_step, len(pool))) for _ in range(steps)
        )

    assert steps_with_crisis(training_pool(cfg)) >= 7
    assert steps_with_crisis(training_pool(load_config(None, ["rl.crisis_share=0"]))) <= 2


def test_a_share_of_one_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="rl.crisis_share"):
        load_config(None, ["rl.crisis_share=1"])
