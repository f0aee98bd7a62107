"""Pure-torch RL algorithm core: advantage estimators, KL estimators and the clipped policy loss.

No Ray / vLLM / DeepSpeed imports here, so the driver and the learner can both use it.
"""

from __future__ import annotations

from empathy_ray.algo.advantages import (
    ESTIMATORS,
    compute_advantages,
    dr_grpo,
    grpo,
    reinforce_pp,
    rloo,
    token_advantages,
)
from empathy_ray.algo.kl import KL_KINDS, approx_kl, kl_penalised_rewards
from empathy_ray.algo.losses import (
    AGG_MODES,
    aggregate,
    entropy_from_logits,
    logprobs_from_logits,
    policy_loss,
)
from empathy_ray.algo.masked import masked_mean, masked_sum

__all__ = [
    "AGG_MODES",
    "ESTIMATORS",
    "KL_KINDS",
    "aggregate",
    "approx_kl",
    "compute_advantages",
    "dr_grpo",
    "entropy_from_logits",
    "grpo",
    "kl_penalised_rewards",
    "logprobs_from_logits",
    "masked_mean",
    "masked_sum",
    "policy_loss",
    "reinforce_pp",
    "rloo",
    "token_advantages",
]
