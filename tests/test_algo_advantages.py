"""Advantage estimators; every expected number is worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from empathy_ray.algo import (
    ESTIMATORS,
    compute_advantages,
    dr_grpo,
    grpo,
    reinforce_pp,
    rloo,
    token_advantages,
)

ALL = [grpo, dr_grpo, rloo, reinforce_pp]


def test_grpo_two_groups_of_two():
    # rewards [4] = two prompts x G=2: groups {1, 2} and {3, 4}; group means 1.5, 3.5
    # centred [-0.5, 0.5, -0.5, 0.5]; sample std of {1, 2} = sqrt((0.25 + 0.25) / 1) = 0.70711
    # adv = +-0.5 / 0.70711 = +-0.70711 (eps=0 keeps it exact)
    adv = grpo(torch.tensor([1.0, 2.0, 3.0, 4.0]), group_size=2, eps=0.0)
    s = 1 / math.sqrt(2)
    assert_close(adv, torch.tensor([-s, s, -s, s]))


def test_grpo_uses_sample_std_not_population_std():
    # one group of G=4: {0, 1, 2, 5}, mean 2, centred [-2, -1, 0, 3]
    # sum of squares = 4 + 1 + 0 + 9 = 14; sample var = 14 / 3, std = 2.16025
    # adv = [-0.92582, -0.46291, 0, 1.38873]  (population std 1.87083 would give -1.06904 first)
    adv = grpo(torch.tensor([0.0, 1.0, 2.0, 5.0]), group_size=4, eps=0.0)
    assert_close(adv, torch.tensor([-0.92582, -0.46291, 0.0, 1.38873]), atol=1e-5, rtol=0)


def test_grpo_eps_is_added_to_std():
    # G=2 group {0, 2}: centred [-1, 1], sample std sqrt(2) = 1.41421; eps=0.5 -> +-1 / 1.91421 = +-0.52241
    adv = grpo(torch.tensor([0.0, 2.0]), group_size=2, eps=0.5)
    assert_close(adv, torch.tensor([-0.52241, 0.52241]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fn", ALL)
def test_all_equal_group_gives_exact_zero(fn):
    # rewards [6], G=3: group {0.1, 0.1, 0.1} is flat (its float32 mean need not equal 0.1 exactly,
    # so a naive r - mean could leave a 1e-9 residue that / (std + eps) blows up); group {1, 0, 1} is not.
    rewards = torch.tensor([0.1, 0.1, 0.1, 1.0, 0.0, 1.0])
    adv = fn(rewards, 3)
    assert torch.equal(adv[:3], torch.zeros(3))
    assert adv[3] > 0 and adv[4] < 0


def test_grpo_mixed_flat_and_informative_group():
    # group {1, 0, 1}: mean 2/3, centred [1/3, -2/3, 1/3]
    # sample var = (1/9 + 4/9 + 1/9) / 2 = 1/3, std = 0.57735 -> adv [0.57735, -1.15470, 0.57735]
    adv = grpo(torch.tensor([7.0, 7.0, 7.0, 1.0, 0.0, 1.0]), 3, eps=0.0)
    assert_close(adv, torch.tensor([0.0, 0.0, 0.0, 0.57735, -1.15470, 0.57735]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fn", ALL)
def test_group_of_one_gives_zero(fn):
    # G=1: every prompt has a single sample, there is nothing to compare against -> [0, 0], no NaN
    adv = fn(torch.tensor([5.0, -2.0]), 1)
    assert torch.equal(adv, torch.zeros(2))


def test_dr_grpo_is_plain_centring():
    # [1, 2, 3, 4], G=2 -> means 1.5, 3.5 -> [-0.5, 0.5, -0.5, 0.5]
    assert_close(dr_grpo(torch.tensor([1.0, 2.0, 3.0, 4.0]), 2), torch.tensor([-0.5, 0.5, -0.5, 0.5]))
    # {0, 1, 2, 5}, G=4 -> mean 2 -> [-2, -1, 0, 3] (no std scaling)
    assert_close(dr_grpo(torch.tensor([0.0, 1.0, 2.0, 5.0]), 4), torch.tensor([-2.0, -1.0, 0.0, 3.0]))


def test_rloo_leave_one_out():
    # {0, 1, 2, 5}, G=4: mean of the others
    #   i=0: (1+2+5)/3 = 8/3 -> 0 - 8/3 = -2.66667
    #   i=1: (0+2+5)/3 = 7/3 -> 1 - 7/3 = -1.33333
    #   i=2: (0+1+5)/3 = 2   -> 0
    #   i=3: (0+1+2)/3 = 1   -> 4
    # (= 4/3 * [-2, -1, 0, 3])
    adv = rloo(torch.tensor([0.0, 1.0, 2.0, 5.0]), 4)
    assert_close(adv, torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0]))
    # G=2 {1, 2}: 1 - 2 = -1, 2 - 1 = 1
    assert_close(rloo(torch.tensor([1.0, 2.0]), 2), torch.tensor([-1.0, 1.0]))


def test_reinforce_pp_batch_whitening():
    # [1, 2, 3, 4], G=2: centred c = [-0.5, 0.5, -0.5, 0.5]; batch mean 0;
    # batch sample std = sqrt(4 * 0.25 / 3) = 0.57735 -> a = +-0.5 / 0.57735 = +-0.86603
    adv = reinforce_pp(torch.tensor([1.0, 2.0, 3.0, 4.0]), 2, eps=0.0)
    assert_close(adv, torch.tensor([-0.86603, 0.86603, -0.86603, 0.86603]), atol=1e-5, rtol=0)


def test_reinforce_pp_flat_group_counts_in_stats_but_stays_zero():
    # [1, 1, 0, 2], G=2: c = [0, 0, -1, 1]; batch mean 0; sample std = sqrt((1 + 1) / 3) = 0.81650
    # a = [0, 0, -1.22474, 1.22474]: the flat group shrinks the std (so scales the others up) but stays 0
    adv = reinforce_pp(torch.tensor([1.0, 1.0, 0.0, 2.0]), 2, eps=0.0)
    assert torch.equal(adv[:2], torch.zeros(2))
    assert_close(adv[2:], torch.tensor([-1.22474, 1.22474]), atol=1e-5, rtol=0)


def test_integer_rewards_are_promoted_and_result_is_detached():
    # int64 [0, 1] G=2 -> dr_grpo [-0.5, 0.5] as float32
    adv = dr_grpo(torch.tensor([0, 1]), 2)
    assert adv.dtype == torch.float32
    assert_close(adv, torch.tensor([-0.5, 0.5]))
    r = torch.tensor([0.0, 1.0], requires_grad=True)
    assert not grpo(r, 2).requires_grad


def test_compute_advantages_dispatch_and_errors():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert ESTIMATORS.names()[:4] == ("grpo", "dr_grpo", "rloo", "reinforce_pp")
    for name in ("grpo", "dr_grpo", "rloo", "reinforce_pp"):
        assert torch.equal(compute_advantages(name, r, 2), {f.__name__: f for f in ALL}[name](r, 2))
    # eps=0 is forwarded: +-1/sqrt(2) exactly as in the first test
    assert_close(compute_advantages("grpo", r, 2, eps=0.0), grpo(r, 2, eps=0.0))
    with pytest.raises(
        ValueError, match="unknown advantage estimator 'ppo'; registered: grpo, dr_grpo, rloo, reinforce_pp"
    ):
        compute_advantages("ppo", r, 2)
    with pytest.raises(ValueError, match=r"'dr_grpo' does not take \['eps'\]"):
        compute_advantages("dr_grpo", r, 2, eps=1e-6)


def test_layout_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="not a multiple of group_size=2"):
        grpo(torch.tensor([1.0, 2.0, 3.0]), 2)
    with pytest.raises(ValueError, match="flat 1-D tensor"):
        grpo(torch.ones(2, 2), 2)
    with pytest.raises(ValueError, match="positive int"):
        grpo(torch.ones(2), 0)
    # index 3 -> prompt 3 // 2 = 1, sample 3 % 2 = 1
    with pytest.raises(ValueError, match=r"rewards\[3\] = nan is not finite \(prompt 1, sample 1\)"):
        rloo(torch.tensor([0.0, 1.0, 2.0, float("nan")]), 2)


def test_token_advantages_broadcast_with_mask():
    # adv [2] = [2, -1]; mask [2, 3] = [[1, 1, 0], [1, 0, 0]] -> [[2, 2, 0], [-1, 0, 0]]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = token_advantages(torch.tensor([2.0, -1.0]), mask)
    assert_close(out, torch.tensor([[2.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"adv_per_seq \[N\] and mask \[N, T\]"):
        token_advantages(torch.tensor([1.0]), mask)
