"""Per-token sample estimators of KL(pi || ref), after J. Schulman, "Approximating KL divergence" (2020).

With tokens sampled from ``pi`` and ``log_r = ref_logp - logp`` (the log of ref/pi):

- ``k1 = -log_r = logp - ref_logp``: unbiased, high variance, can be negative per token.
- ``k2 = 0.5 * log_r**2``: biased but low variance, always >= 0.
- ``k3 = exp(log_r) - 1 - log_r``: unbiased *and* always >= 0 (since ``e^x >= 1 + x``). GRPO uses it in
  the loss; its gradient w.r.t. ``logp`` is ``1 - ref/pi``.

Use them either as a reward penalty (``kl_penalised_rewards``, no gradient) or as a loss term
(``policy_loss(kl=approx_kl(logp, ref_logp, mask=mask), kl_coef=beta)``, gradient flows into ``logp``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from empathy_ray.algo.masked import masked_sum

__all__ = ["KL_KINDS", "approx_kl", "kl_penalised_rewards"]

KL_KINDS: tuple[str, ...] = ("k1", "k2", "k3")


def approx_kl(
    logp: Tensor,
    ref_logp: Tensor,
    kind: str = "k3",
    mask: Tensor | None = None,
    log_ratio_clip: float | None = 10.0,
) -> Tensor:
    """Per-token KL(pi || ref) estimate ``[N, T]`` from log-probs of tokens sampled from ``pi``.

    ``logp`` are the policy's log-probs of the sampled tokens, ``ref_logp`` the reference model's.
    Masked positions are exactly 0 (value and gradient), even if they hold ``-inf``/NaN.
    ``log_ratio_clip`` clamps ``log_r`` to ``[-clip, clip]`` before the estimator for all kinds: it keeps
    ``exp`` in k3 from overflowing (float32 overflows near 88) when the two models disagree wildly on
    one token, at the cost of a zero gradient beyond ``e^±clip``. ``None`` disables it.
    """
    if kind not in KL_KINDS:
        raise ValueError(f"unknown KL estimator kind {kind!r}; valid kinds: {', '.join(KL_KINDS)}")
    if logp.shape != ref_logp.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)} and ref_logp {tuple(ref_logp.shape)} must have the same shape"
        )
    log_r = ref_logp - logp
    if mask is not None:
        if mask.shape != logp.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must have the shape of logp {tuple(logp.shape)}")
        log_r = torch.where(mask.bool(), log_r, torch.zeros_like(log_r))
    if log_ratio_clip is not None:
        log_r = log_r.clamp(-log_ratio_clip, log_ratio_clip)
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r.square()
    return torch.expm1(log_r) - log_r


def kl_penalised_rewards(rewards: Tensor, kl_per_token: Tensor, mask: Tensor, coef: float) -> Tensor:
    """``rewards [N] - coef * sum_t kl[N, T]`` over valid tokens: the KL-in-reward form (e.g. REINFORCE++).

    The KL is detached: a reward is a constant to the policy gradient, and keeping the graph would
    leak a second, unintended gradient path into the learner.
    """
    if rewards.dim() != 1 or kl_per_token.dim() != 2 or kl_per_token.shape[0] != rewards.shape[0]:
        raise ValueError(
            f"kl_penalised_rewards expects rewards [N] and kl_per_token [N, T], got {tuple(rewards.shape)} "
            f"and {tuple(kl_per_token.shape)}"
        )
    if not rewards.is_floating_point():
        rewards = rewards.float()
    return rewards - coef * masked_sum(kl_per_token.detach(), mask, dim=-1).to(rewards.dtype)
