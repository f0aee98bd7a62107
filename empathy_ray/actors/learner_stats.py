"""A learner step's statistics: accumulated over its micro-batches, reduced over ranks once.

Averaged over a step's micro-batches and ranks ("train/" prefixed): the loss terms weighted like the
loss (algo.losses.agg_weight: "train/policy_loss" is the step's loss), the per-token ones by token
counts. The rollout-vs-learner statistics of truncated importance sampling (algo.importance) are
token-weighted over the tokens that came with rollout log-probs, their weight max is a max; they are
reported only when some rank had such tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist

from empathy_ray.algo.importance import TIS_MEAN_STATS

LOSS_STATS = ("policy_loss", "pg_loss")
TOKEN_STATS = ("kl", "clip_frac", "entropy", "approx_kl_old", "ratio_mean")
MEAN_STATS = LOSS_STATS + TOKEN_STATS

AllReduce = Callable[[list[float], dist.ReduceOp.RedOpType], list[float]]


class StepStats:
    """Sums (and one max) of a step's counted micro-batches on this rank."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys(MEAN_STATS, 0.0) | {"weight": 0.0, "tokens": 0.0, "norm": 0.0, "norms": 0.0}
        self.sums |= dict.fromkeys(TIS_MEAN_STATS, 0.0) | {"tis_tokens": 0.0}
        self.tis_weight_max = 0.0  # importance weights are positive: 0 is "none seen"

    def add(self, st: dict[str, torch.Tensor], weight: int, tokens: int) -> None:
        """One counted micro-batch's stats, weighted as `reduce` divides them."""
        for key in MEAN_STATS:
            self.sums[key] += float(st[key]) * (weight if key in LOSS_STATS else tokens)
        self.sums["weight"] += weight
        self.sums["tokens"] += tokens
        if "tis_weight_max" in st:
            for key in TIS_MEAN_STATS:
                self.sums[key] += float(st[key]) * tokens
            self.sums["tis_tokens"] += tokens
            self.tis_weight_max = max(self.tis_weight_max, float(st["tis_weight_max"]))

    def add_grad_norm(self, norm: float | None) -> None:
        if norm is not None:
            self.sums["norm"] += float(norm)
            self.sums["norms"] += 1

    def reduce(self, all_reduce: AllReduce) -> dict[str, float]:
        """The means over every rank's micro-batches (NaN where nothing was counted), the mean grad
        norm, and the importance-sampling figures when there were any. Collective: every rank calls it."""
        keys = list(self.sums)
        totals = dict(zip(keys, all_reduce([self.sums[k] for k in keys], dist.ReduceOp.SUM), strict=True))
        weight_max = all_reduce([self.tis_weight_max], dist.ReduceOp.MAX)[0]
        stats = {}
        for key in MEAN_STATS:
            weight = totals["weight"] if key in LOSS_STATS else totals["tokens"]
            stats[f"train/{key}"] = totals[key] / weight if weight else math.nan
        stats["train/grad_norm"] = totals["norm"] / totals["norms"] if totals["norms"] else math.nan
        if totals["tis_tokens"]:
            stats |= {f"train/{key}": totals[key] / totals["tis_tokens"] for key in TIS_MEAN_STATS}
            stats["train/tis_weight_max"] = weight_max
        return stats
