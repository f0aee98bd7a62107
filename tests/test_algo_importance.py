"""Truncated importance weights between the rollout engine and the learner, worked out by hand, and
their place in the policy loss."""

from __future__ import annotations

import math

import pytest
import torch

from empathy_ray.algo import policy_loss
from empathy_ray.algo.importance import padded_rows, tis_weights


def test_weights_and_statistics_by_hand():
    # three real tokens and one pad: ratios e^0 = 1, e^ln3 = 3 (truncated at 2), e^-ln2 = 0.5; the pad
    # holds garbage on both sides and must not count
    learner = torch.tensor([[-1.0, math.log(3) - 2.0, -3.0 - math.log(2), -math.inf]])
    rollout = torch.tensor([[-1.0, -2.0, -3.0, -50.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w, stats = tis_weights(learner, rollout, mask, cap=2.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, 2.0, 0.5, 1.0]]))
    assert float(stats["tis_weight_mean"]) == pytest.approx((1 + 3 + 0.5) / 3)
    assert float(stats["tis_weight_max"]) == pytest.approx(3.0)
    assert float(stats["tis_truncated_share"]) == pytest.approx(1 / 3)
    # k3 per token, (r - 1) - ln r: 0, 2 - ln 3, -0.5 + ln 2
    assert float(stats["tis_k3_kl"]) == pytest.approx((0 + (2 - math.log(3)) + (-0.5 + math.log(2))) / 3)


def test_cap_zero_switches_the_correction_off_but_still_measures():
    learner, rollout = torch.tensor([[0.0, -1.0]]), torch.tensor([[-1.0, -1.0]])
    w, stats = tis_weights(learner, rollout, torch.ones(1, 2), cap=0.0)
    assert torch.equal(w, torch.ones(1, 2)) and float(stats["tis_truncated_share"]) == 0.0
    assert float(stats["tis_weight_max"]) == pytest.approx(math.e)


def test_identical_distributions_give_unit_weights_and_zero_kl():
    logp = torch.log(torch.rand(3, 5, generator=torch.Generator().manual_seed(0)))
    w, stats = tis_weights(logp, logp.clone(), torch.ones(3, 5), cap=2.0)
    assert torch.equal(w, torch.ones(3, 5)) and float(stats["tis_k3_kl"]) == 0.0
    assert float(stats["tis_weight_max"]) == 1.0 and float(stats["tis_truncated_share"]) == 0.0


def test_no_gradient_and_shapes_checked():
    learner = torch.zeros(1, 2, requires_grad=True)
    w, _ = tis_weights(learner, torch.zeros(1, 2), torch.ones(1, 2), cap=2.0)
    assert not w.requires_grad
    with pytest.raises(ValueError, match="same tokens"):
        tis_weights(torch.zeros(1, 2), torch.zeros(1, 3), torch.ones(1, 2), cap=2.0)
    # no real token: the max is 0, which a max over micro-batches ignores
    _, stats = tis_weights(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2), cap=2.0)
    assert float(stats["tis_weight_max"]) == 0.0 and float(stats["tis_weight_mean"]) == 0.0


def test_padded_rows():
    torch.testing.assert_close(
        padded_rows([[1.0, 2.0], [], [3.0]], 3), torch.tensor([[1.0, 2.0, 0], [0, 0, 0], [3, 0, 0]])
    )


def test_weights_scale_each_tokens_policy_gradient():
    """On-policy ratio 1, token_mean over 3 real tokens: loss = -(sum_t A_t w_t) / 3, and the gradient of
    each token's log-prob is -A w / 3; padding (weight there ignored) gets none."""
    logp = torch.tensor([[-1.0, -2.0, -0.5, -7.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0]])
    w = torch.tensor([[2.0, 0.5, 1.0, 9.0]])
    loss, st = policy_loss(logp, logp.detach(), torch.tensor([1.5]), mask, tis_weight=w)
    assert float(loss) == pytest.approx(-1.5 * (2.0 + 0.5 + 1.0) / 3)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-1.0, -0.25, -0.5, 0.0]]))
    plain, _ = policy_loss(logp.detach(), logp.detach(), torch.tensor([1.5]), mask)
    assert float(plain) == pytest.approx(-1.5) and float(st["pg_loss"]) == float(loss)
    with pytest.raises(ValueError, match="tis_weight"):
        policy_loss(logp, logp.detach(), torch.tensor([1.5]), mask, tis_weight=torch.ones(1, 3))
