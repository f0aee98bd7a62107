"""Per-sequence advantage estimators for group-sampled RL (GRPO and friends).

Layout contract: ``rewards`` is a flat 1-D tensor of ``N = B * G`` sequence rewards where the ``G``
samples drawn for prompt ``b`` are contiguous, i.e. ``rewards[b*G:(b+1)*G]``. Every estimator returns a
tensor of the same shape ``[N]`` (floating point; integer rewards are promoted to float32).

Shared rule: a group whose rewards are all equal (including a group of one) carries no learning signal,
so every estimator returns *exactly* 0 for it. The check is ``max == min`` on the raw rewards, not a
tolerance on the spread, so it never divides a rounding residue by ``eps``.

Standard deviation: GRPO uses the *sample* (Bessel-corrected, ``correction=1``) standard deviation. That
is what DeepSeekMath describes and what the common open implementations compute with ``Tensor.std()``;
choosing it keeps advantage scales comparable with published hyper-parameters. With G=2 the two
members of a non-flat group get exactly ±1/sqrt(2) (up to ``eps``) whatever their rewards.

Adding an estimator: decorate ``fn(rewards, group_size, **options) -> Tensor`` with
``@register_estimator("name", min_group_size=...)``; ``rl.algo.estimator=name`` then works, and the
config refuses a ``rl.algo.group_size`` below its minimum when it loads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from empathy_ray.algo.registry import Registry

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "compute_advantages",
    "dr_grpo",
    "grpo",
    "register_estimator",
    "reinforce_pp",
    "rloo",
    "token_advantages",
]

EstimatorFn = Callable[..., Tensor]


@dataclass(frozen=True)
class Estimator:
    """A registered estimator and what it needs from the config."""

    fn: EstimatorFn
    min_group_size: int  # rl.algo.group_size must be at least this (2: it compares answers in a group)


ESTIMATORS: Registry[Estimator] = Registry(
    "advantage estimator", "add one with @register_estimator in empathy_ray/algo/advantages.py"
)


def register_estimator(name: str, min_group_size: int = 1) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator: make ``fn(rewards [N], group_size, **options) -> [N]`` selectable as ``rl.algo.estimator``."""
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a positive int, got {min_group_size!r}")

    def add(fn: EstimatorFn) -> EstimatorFn:
        ESTIMATORS.add(name, Estimator(fn, min_group_size))
        return fn

    return add


def _groups(rewards: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    """Validate the layout and return ``(groups [B, G], flat [B, 1])`` where ``flat`` marks no-spread groups."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if rewards.dim() != 1:
        raise ValueError(
            f"rewards must be a flat 1-D tensor of B*G sequence rewards, got shape {tuple(rewards.shape)}; "
            "flatten it so the G samples of each prompt are contiguous"
        )
    if rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards has {rewards.numel()} entries, not a multiple of group_size={group_size}; "
            "every prompt must contribute exactly group_size samples"
        )
    if not rewards.is_floating_point():
        rewards = rewards.float()
    bad = ~torch.isfinite(rewards)
    if bool(bad.any()):
        idx = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"rewards[{idx}] = {rewards[idx].item()} is not finite (prompt {idx // group_size}, "
            f"sample {idx % group_size}); fix the reward function or drop that group"
        )
    groups = rewards.detach().view(-1, group_size)
    flat = groups.amax(dim=-1, keepdim=True) == groups.amin(dim=-1, keepdim=True)
    return groups, flat


def _finish(values: Tensor, flat: Tensor) -> Tensor:
    """Zero the no-signal groups and flatten back to ``[N]``."""
    return torch.where(flat, torch.zeros_like(values), values).reshape(-1)


@register_estimator("grpo", min_group_size=2)
def grpo(rewards: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """GRPO advantage ``(r - mean(group)) / (std(group) + eps)`` with the sample std (``correction=1``)."""
    groups, flat = _groups(rewards, group_size)
    if group_size == 1:  # the sample std of one value is undefined; such a group has no signal anyway
        return torch.zeros_like(groups).reshape(-1)
    centred = groups - groups.mean(dim=-1, keepdim=True)
    return _finish(centred / (groups.std(dim=-1, correction=1, keepdim=True) + eps), flat)


@register_estimator("dr_grpo", min_group_size=2)
def dr_grpo(rewards: Tensor, group_size: int) -> Tensor:
    """Dr. GRPO advantage ``r - mean(group)``: no std division, so easy/hard prompts are not re-weighted.

    Pair it with ``policy_loss(..., agg="seq_sum_norm", max_len=...)`` which also drops the per-sequence
    length normalisation; together they remove both biases Dr. GRPO identifies in GRPO.
    """
    groups, flat = _groups(rewards, group_size)
    return _finish(groups - groups.mean(dim=-1, keepdim=True), flat)


@register_estimator("rloo", min_group_size=2)
def rloo(rewards: Tensor, group_size: int) -> Tensor:
    """REINFORCE leave-one-out: ``r_i - mean(r_j, j != i)``, i.e. ``G/(G-1) * (r_i - mean(group))``.

    The baseline never includes the sample itself, so it stays an unbiased estimator. G=1 has no
    "others" and gives 0.
    """
    groups, flat = _groups(rewards, group_size)
    if group_size == 1:
        return torch.zeros_like(groups).reshape(-1)
    others_mean = (groups.sum(dim=-1, keepdim=True) - groups) / (group_size - 1)
    return _finish(groups - others_mean, flat)


@register_estimator("reinforce_pp")
def reinforce_pp(rewards: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """REINFORCE++ with group baseline: group-centre, then whiten over the whole batch.

    Exactly: ``c = r - mean(group)``; ``a = (c - mean(c)) / (std(c) + eps)`` where ``mean``/``std`` run over
    all N sequences of the batch (sample std, ``correction=1``; each sequence has weight 1, unlike
    OpenRLHF which whitens over response *tokens*). Flat groups take part in the batch statistics
    (their ``c`` is 0) and are then reset to exactly 0. The batch std is what keeps the step size stable
    across batches without the per-prompt std that GRPO uses and that over-weights near-flat groups.
    """
    groups, flat = _groups(rewards, group_size)
    centred = _finish(groups - groups.mean(dim=-1, keepdim=True), flat)
    if centred.numel() < 2:
        return torch.zeros_like(centred)
    whitened = (centred - centred.mean()) / (centred.std(correction=1) + eps)
    return _finish(whitened.view_as(groups), flat)


def compute_advantages(estimator: str, rewards: Tensor, group_size: int, **kw: float) -> Tensor:
    """Dispatch by name (a config string) through ``ESTIMATORS``; ``kw`` goes to that function (e.g. ``eps``)."""
    fn = ESTIMATORS[estimator].fn
    accepted = set(inspect.signature(fn).parameters) - {"rewards", "group_size"}
    unknown = sorted(set(kw) - accepted)
    if unknown:
        raise ValueError(
            f"advantage estimator {estimator!r} does not take {unknown}; "
            f"it accepts {sorted(accepted) if accepted else 'no extra options'}"
        )
    return fn(rewards, group_size, **kw)


def token_advantages(adv_per_seq: Tensor, mask: Tensor) -> Tensor:
    """Broadcast ``[N]`` sequence advantages to ``[N, T]`` tokens; positions where ``mask`` is 0/False get 0."""
    if adv_per_seq.dim() != 1 or mask.dim() != 2 or mask.shape[0] != adv_per_seq.shape[0]:
        raise ValueError(
            f"token_advantages expects adv_per_seq [N] and mask [N, T], got {tuple(adv_per_seq.shape)} "
            f"and {tuple(mask.shape)}"
        )
    expanded = adv_per_seq[:, None].expand(mask.shape)
    return torch.where(mask.bool(), expanded, torch.zeros_like(expanded))
