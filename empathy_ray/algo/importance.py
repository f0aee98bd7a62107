"""Truncated importance sampling (TIS) between the rollout engine and the learner.

The rollout engine samples each token with its own numerics (other kernels, another precision) and,
in asynchronous GRPO, with weights one or more versions old, so its probability of a sampled token
is not the learner's. The policy gradient is taken under the learner's distribution, so each token's
policy-gradient term is weighted by  w = pi_learner_old(t) / pi_rollout(t)  (the learner's log-probs
before the update against the engine's), truncated at `cap` so that one token the engine found
unlikely cannot dominate the batch's variance. The weights carry no gradient.

Statistics over the real tokens of a batch, as tensors for the learner to accumulate (token-weighted
means and a max): the k3 estimate of KL(rollout || learner), the weights' mean and max before
truncation, and the share of tokens truncated.
"""

from __future__ import annotations

import torch
from torch import Tensor

from empathy_ray.algo.masked import masked_mean

__all__ = ["TIS_MEAN_STATS", "padded_rows", "tis_weights"]

# token-weighted means of `tis_weights`'s statistics; "tis_weight_max" is the one reduced by max
TIS_MEAN_STATS = ("tis_k3_kl", "tis_weight_mean", "tis_truncated_share")


def padded_rows(rows: list[list[float]], width: int) -> Tensor:
    """[len(rows), width] float32, each row's values from the left and 0 after them."""
    out = torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=out.dtype)
    return out


def tis_weights(
    learner_logp: Tensor, rollout_logp: Tensor, mask: Tensor, cap: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token weights min(exp(learner - rollout), cap), 1 at padding, and what they say.

    `learner_logp` and `rollout_logp` are [N, T] log-probs of the same sampled tokens. `cap` <= 0
    switches the correction off (weights 1, nothing truncated); the gap is still measured. The
    statistics (detached scalars): "tis_k3_kl", "tis_weight_mean", "tis_truncated_share" (means over
    real tokens) and "tis_weight_max" (0 when no token is real, which a max over batches ignores).
    """
    if learner_logp.shape != rollout_logp.shape or mask.shape != learner_logp.shape:
        raise ValueError(
            f"learner log-probs {tuple(learner_logp.shape)}, rollout log-probs {tuple(rollout_logp.shape)} "
            f"and mask {tuple(mask.shape)} must cover the same tokens"
        )
    valid = mask.bool()
    with torch.no_grad():
        zero = torch.zeros((), dtype=learner_logp.dtype, device=learner_logp.device)
        # select before exp: padding may hold -inf or garbage on either side
        log_ratio = torch.where(valid, learner_logp - rollout_logp.to(learner_logp.dtype), zero)
        ratio = torch.exp(log_ratio)
        # k3 = (r - 1) - log r with r = p_learner / p_rollout on tokens the rollout sampled: a
        # non-negative, unbiased estimate of KL(rollout || learner)
        stats = {
            "tis_k3_kl": masked_mean((ratio - 1) - log_ratio, valid),
            "tis_weight_mean": masked_mean(ratio, valid),
            "tis_weight_max": torch.where(valid, ratio, zero).max() if ratio.numel() else zero,
        }
        if cap > 0:
            truncated = valid & (ratio > cap)
            weights = torch.where(valid, ratio.clamp(max=cap), torch.ones_like(ratio))
        else:
            truncated, weights = torch.zeros_like(valid), torch.ones_like(ratio)
        stats["tis_truncated_share"] = masked_mean(truncated.to(ratio.dtype), valid)
    return weights, stats
