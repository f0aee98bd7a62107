"""Adding an algorithm part is one decorated function: a test registers its own advantage estimator,
KL kind and loss aggregation at run time, the config accepts their names, and a real driver step
uses the estimator."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from empathy_ray.algo import (
    AGG_MODES,
    ESTIMATORS,
    KL_KINDS,
    aggregate,
    approx_kl,
    compute_advantages,
    register_agg,
    register_estimator,
    register_kl,
)
from empathy_ray.config import ConfigError, load_config
from tests.helpers import LENGTH_RULE, short_rl_config, started_driver


@pytest.fixture
def max_baseline():
    """Registers "max_baseline": each reward minus the best reward of its group (the best answer gets
    0, the others what they fall short by). Yields the (rewards, advantages) of every call."""
    calls: list[tuple[list[float], list[float]]] = []

    @register_estimator("max_baseline", min_group_size=2)
    def max_baseline_fn(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
        groups = rewards.view(-1, group_size)
        adv = (groups - groups.amax(dim=-1, keepdim=True)).reshape(-1)
        calls.append((rewards.tolist(), adv.tolist()))
        return adv

    yield calls
    ESTIMATORS.remove("max_baseline")


def test_a_registered_estimator_is_dispatched_by_name(max_baseline):
    # G=2: groups [1, 3] and [2, 2] -> maxima 3 and 2 -> [1-3, 3-3, 2-2, 2-2] = [-2, 0, 0, 0]
    adv = compute_advantages("max_baseline", torch.tensor([1.0, 3.0, 2.0, 2.0]), 2)
    assert_close(adv, torch.tensor([-2.0, 0.0, 0.0, 0.0]))
    assert ESTIMATORS["max_baseline"].min_group_size == 2
    with pytest.raises(ValueError, match="'max_baseline' is already registered"):
        register_estimator("max_baseline")(lambda rewards, group_size: rewards)


def test_the_config_accepts_a_registered_estimator_and_its_minimum_group(max_baseline):
    assert load_config(None, ["rl.algo.estimator=max_baseline"]).rl.algo.estimator == "max_baseline"
    with pytest.raises(
        ConfigError, match="rl.algo.group_size=1: the max_baseline estimator .* use 2 or more"
    ):
        load_config(None, ["rl.algo.estimator=max_baseline", "rl.algo.group_size=1"])


def test_an_unregistered_name_fails_listing_the_registered_ones():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["rl.algo.estimator=max_baseline"])
    assert str(e.value) == (
        "rl.algo.estimator='max_baseline': unknown advantage estimator 'max_baseline'; registered: "
        "grpo, dr_grpo, rloo, reinforce_pp (add one with @register_estimator in empathy_ray/algo/advantages.py)"
    )
    with pytest.raises(ValueError, match="unknown advantage estimator 'nope'"):
        ESTIMATORS.remove("nope")


def test_kl_kinds_and_aggregations_register_the_same_way():
    @register_kl("abs_log_ratio")
    def abs_log_ratio(log_r: torch.Tensor) -> torch.Tensor:
        return log_r.abs()

    @register_agg("masked_max", uses_max_len=False)
    def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.where(mask.bool(), x, torch.full_like(x, -torch.inf)).max()

    try:
        cfg = load_config(None, ["rl.algo.kl_kind=abs_log_ratio", "rl.algo.agg=masked_max"])
        assert (cfg.rl.algo.kl_kind, cfg.rl.algo.agg) == ("abs_log_ratio", "masked_max")
        # log_r = ref - logp = [0.5, -2]: |log_r| = [0.5, 2]; the max over the valid first token is 0.5
        kl = approx_kl(torch.tensor([[0.0, 2.0]]), torch.tensor([[0.5, 0.0]]), "abs_log_ratio")
        assert_close(kl, torch.tensor([[0.5, 2.0]]))
        assert_close(aggregate(kl, torch.tensor([[1, 0]]), "masked_max", max_len=7), torch.tensor(0.5))
    finally:
        KL_KINDS.remove("abs_log_ratio")
        AGG_MODES.remove("masked_max")


def test_seq_sum_norm_is_the_aggregation_that_takes_the_generation_budget():
    assert [n for n in AGG_MODES.names() if AGG_MODES[n].uses_max_len] == ["seq_sum_norm"]


@pytest.mark.slow
def test_one_driver_step_uses_a_run_time_estimator(max_baseline, ray_cluster, tiny_model_dir, tmp_path):
    """The tiny random policy, the length rule as reward, B=4 prompts x G=4 answers: the step's 16
    rewards reach "max_baseline" once, and its advantages follow the hand formula."""
    policy = str(tiny_model_dir)
    one_each = ("rl.rollout.num_workers=1", "rl.rollout.engine=transformers", "rl.learner.num_workers=1")
    cfg = short_rl_config(
        tmp_path, tiny_model_dir, policy, "rl.algo.estimator=max_baseline", *one_each, *LENGTH_RULE
    )
    with started_driver(cfg, policy) as (_, driver):
        metrics = driver.run_step()
    assert len(max_baseline) == 1
    rewards, adv = max_baseline[0]
    assert len(rewards) == 16
    assert sum(rewards) / 16 == pytest.approx(metrics["reward/total_mean"])
    for g in range(4):
        group = rewards[4 * g : 4 * g + 4]
        assert adv[4 * g : 4 * g + 4] == pytest.approx([r - max(group) for r in group])
    assert metrics["train/skipped"] == 0.0 and metrics["rollout/weight_version"] == 0
