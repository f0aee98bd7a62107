"""KL estimators k1/k2/k3 and the KL-in-reward penalty; expected numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from empathy_ray.algo import approx_kl, kl_penalised_rewards

# [1, 2]: logp = [-1, -2], ref_logp = [-1.5, -1]  ->  log_r = ref - logp = [-0.5, 1.0]
LOGP = torch.tensor([[-1.0, -2.0]])
REF = torch.tensor([[-1.5, -1.0]])


def test_k1_k2_k3_on_specific_numbers():
    # k1 = -log_r = [0.5, -1.0]
    assert_close(approx_kl(LOGP, REF, "k1"), torch.tensor([[0.5, -1.0]]))
    # k2 = 0.5 * log_r^2 = [0.125, 0.5]
    assert_close(approx_kl(LOGP, REF, "k2"), torch.tensor([[0.125, 0.5]]))
    # k3 = e^log_r - 1 - log_r: e^-0.5 = 0.606531 -> 0.106531;  e^1 = 2.718282 -> 0.718282
    assert_close(approx_kl(LOGP, REF, "k3"), torch.tensor([[0.106531, 0.718282]]), atol=1e-6, rtol=0)


def test_k3_gradient_is_one_minus_ref_over_pi():
    # d k3 / d logp = 1 - e^log_r = [1 - 0.606531, 1 - 2.718282] = [0.393469, -1.718282]
    logp = LOGP.clone().requires_grad_(True)
    approx_kl(logp, REF, "k3").sum().backward()
    assert_close(logp.grad, torch.tensor([[0.393469, -1.718282]]), atol=1e-6, rtol=0)


def test_k3_and_k2_are_non_negative():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(64, 50, generator=g) * 4
    ref = torch.randn(64, 50, generator=g) * 4
    assert (approx_kl(logp, ref, "k3") >= 0).all()
    assert (approx_kl(logp, ref, "k2") >= 0).all()
    assert (approx_kl(logp, ref, "k1") < 0).any()  # k1 alone is not a per-token bound


def test_k1_and_k3_are_unbiased_in_expectation():
    # pi = [0.5, 0.3, 0.2], ref = [0.2, 0.3, 0.5]
    # KL(pi || ref) = 0.5 ln 2.5 + 0.3 ln 1 + 0.2 ln 0.4 = 0.3 * ln 2.5 = 0.274887
    # Expectation under pi = sum_i pi_i * k(i), exactly (no sampling needed).
    pi = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    ref = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    for kind in ("k1", "k3"):
        expected = (pi * approx_kl(pi.log()[None], ref.log()[None], kind)[0]).sum()
        assert_close(expected, torch.tensor(0.3 * math.log(2.5), dtype=torch.float64))


def test_masked_positions_are_zero_even_with_inf_and_nan():
    # [1, 3]: position 1 is padding holding -inf / nan; its value and gradient must be 0, not NaN
    logp = torch.tensor([[-1.0, float("-inf"), -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, float("nan"), -1.0]])
    mask = torch.tensor([[1, 0, 1]])
    for kind in ("k1", "k2", "k3"):
        logp.grad = None
        kl = approx_kl(logp, ref, kind, mask=mask)
        assert kl[0, 1] == 0
        kl.sum().backward()
        assert torch.isfinite(logp.grad).all() and logp.grad[0, 1] == 0


def test_log_ratio_clip_keeps_k3_finite():
    # logp = -100, ref = 0 -> log_r = 100: e^100 overflows float32 (max ~3.4e38) -> inf without the clip.
    # With the default clip 10: k3 = e^10 - 1 - 10 = 22015.465795
    logp, ref = torch.tensor([[-100.0]]), torch.tensor([[0.0]])
    assert torch.isinf(approx_kl(logp, ref, "k3", log_ratio_clip=None)).all()
    assert_close(approx_kl(logp, ref, "k3"), torch.tensor([[22015.4658]]))
    # the clip applies to every kind: k1 of log_r = -100 becomes 10, k2 = 0.5 * 100 = 50
    assert_close(approx_kl(ref, logp, "k1"), torch.tensor([[10.0]]))
    assert_close(approx_kl(ref, logp, "k2"), torch.tensor([[50.0]]))
    assert_close(approx_kl(ref, logp, "k1", log_ratio_clip=None), torch.tensor([[100.0]]))


def test_approx_kl_errors():
    with pytest.raises(ValueError, match="unknown KL estimator kind 'k4'; registered: k1, k2, k3"):
        approx_kl(LOGP, REF, "k4")
    with pytest.raises(ValueError, match="same shape"):
        approx_kl(LOGP, REF[:, :1])
    with pytest.raises(ValueError, match="mask"):
        approx_kl(LOGP, REF, mask=torch.ones(2, 2))


def test_kl_penalised_rewards_sums_valid_tokens_and_detaches():
    # rewards [2] = [1, 2]; logp [2, 3] against a reference of 0, mask [[1,1,1],[1,0,0]]
    # k1 = logp - ref_logp, per-sequence sums: 0.1+0.2+0.3 = 0.6 and 0.5 (the 9.0 and nan are padding)
    # coef 0.5 -> [1 - 0.3, 2 - 0.25] = [0.7, 1.75]
    logp = torch.tensor([[0.1, 0.2, 0.3], [0.5, 9.0, float("nan")]], requires_grad=True)
    ref = torch.zeros(2, 3)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    out = kl_penalised_rewards(torch.tensor([1.0, 2.0]), logp, ref, mask, coef=0.5, kind="k1")
    assert_close(out, torch.tensor([0.7, 1.75]))
    assert not out.requires_grad
    # integer rewards are promoted instead of truncating the penalty: [1] - 0.5 * 0.6 = [0.7]
    assert_close(
        kl_penalised_rewards(torch.tensor([1]), logp[:1], ref[:1], mask[:1], 0.5, "k1"), torch.tensor([0.7])
    )
    # k3 (the default) of log_r = ln 2 per token: 2 - 1 - ln 2 = 0.306853; two valid tokens, coef 1
    # -> 1 - 0.613706 = 0.386294; float64 rewards stay float64
    out = kl_penalised_rewards(
        torch.tensor([1.0], dtype=torch.float64),
        torch.zeros(1, 3),
        torch.full((1, 3), math.log(2)),
        torch.tensor([[1, 1, 0]]),
        coef=1.0,
    )
    assert out.dtype == torch.float64
    assert_close(out, torch.tensor([0.386294], dtype=torch.float64), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"rewards \[N\] and logp, ref_logp, mask \[N, T\]"):
        kl_penalised_rewards(torch.tensor([1.0]), logp, ref, mask, 0.5)
