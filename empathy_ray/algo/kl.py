"""Per-token sample estimators of KL(pi || ref), after J. Schulman, "Approximating KL divergence" (2020).

With tokens sampled from ``pi`` and ``log_r = ref_logp - logp`` (the log of ref/pi):

- ``k1 = -log_r = logp - ref_logp``: unbiased, high variance, can be negative per token.
- ``k2 = 0.5 * log_r**2``: biased but low variance, always >= 0.
- ``k3 = exp(log_r) - 1 - log_r``: unbiased *and* always >= 0 (since ``e^x >= 1 + x``). GRPO uses it in
  the loss; its gradient w.r.t. ``logp`` is ``1 - ref/pi``.

Use them either as a reward penalty (``kl_penalised_rewards``, no gradient) or as a loss term
(``policy_loss(kl=approx_kl(logp, ref_logp, mask=mask), kl_coef=beta)``, gradient flows into ``logp``).
A new kind is one ``@register_kl("name")`` function of ``log_r``; ``rl.algo.kl_kind`` is checked against
``KL_KINDS`` when the config loads.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from empathy_ray.algo.masked import masked_sum
from empathy_ray.algo.registry import Registry

__all__ = ["KL_KINDS", "approx_kl", "kl_penalised_rewards", "register_kl"]

KLFn = Callable[[Tensor], Tensor]  # log(ref / pi) per token -> KL estimate per token
KL_KINDS: Registry[KLFn] = Registry(
    "KL estimator kind", "add one with @register_kl in empathy_ray/algo/kl.py"
)


def register_kl(name: str) -> Callable[[KLFn], KLFn]:
    """Decorator: make ``fn(log_r) -> kl`` (elementwise) selectable as ``rl.algo.kl_kind``."""

    def add(fn: KLFn) -> KLFn:
        KL_KINDS.add(name, fn)
        return fn

    return add


@register_kl("k1")
def k1(log_r: Tensor) -> Tensor:
    return -log_r


@register_kl("k2")
def k2(log_r: Tensor) -> Tensor:
    return 0.5 * log_r.square()


@register_kl("k3")
def k3(log_r: Tensor) -> Tensor:
    return torch.expm1(log_r) - log_r


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
    estimate = KL_KINDS[kind]
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
    return estimate(log_r)


def kl_penalised_rewards(
    rewards: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, coef: float, kind: str = "k3"
) -> Tensor:
    """``rewards [N] - coef * sum_t approx_kl(logp, ref_logp)[N, T]`` over valid tokens: the KL-in-reward
    form (``rl.algo.kl_in=reward``, e.g. REINFORCE++). ``logp``/``ref_logp`` are the sampler's and the
    reference's log-probs of the sampled tokens, padded to ``[N, T]``; ``mask`` marks the real tokens.

    The KL is detached: a reward is a constant to the policy gradient, and keeping the graph would
    leak a second, unintended gradient path into the learner. The result has ``rewards``' dtype
    (integer rewards become float32).
    """
    if rewards.dim() != 1 or logp.dim() != 2 or logp.shape[0] != rewards.shape[0]:
        raise ValueError(
            f"kl_penalised_rewards expects rewards [N] and logp, ref_logp, mask [N, T], got {tuple(rewards.shape)} "
            f"and {tuple(logp.shape)}"
        )
    if not rewards.is_floating_point():
        rewards = rewards.float()
    kl = approx_kl(logp.detach(), ref_logp.detach(), kind, mask=mask)
    return rewards - coef * masked_sum(kl, mask, dim=-1).to(rewards.dtype)
