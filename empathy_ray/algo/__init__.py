"""Pure-torch RL algorithm core: advantage estimators, KL estimators and the clipped policy loss.

No Ray / vLLM / DeepSpeed imports here, so the driver and the learner can both use it. Estimators, KL
kinds and loss aggregations are registries (`ESTIMATORS`, `KL_KINDS`, `AGG_MODES`): the config checks
`rl.algo.*` against them when it loads, and a new one is a decorated function in its module.
"""

from __future__ import annotations

from empathy_ray.algo.advantages import (
    ESTIMATORS,
    Estimator,
    compute_advantages,
    dr_grpo,
    grpo,
    register_estimator,
    reinforce_pp,
    rloo,
    token_advantages,
)
from empathy_ray.algo.kl import KL_KINDS, approx_kl, kl_penalised_rewards, register_kl
from empathy_ray.algo.losses import (
    AGG_MODES,
    Aggregation,
    agg_weight,
    aggregate,
    entropy_from_logits,
    logprobs_from_logits,
    policy_loss,
    register_agg,
    sampled_vocab,
    tempered,
)
from empathy_ray.algo.masked import masked_mean, masked_sum
from empathy_ray.algo.registry import Registry

__all__ = [
    "AGG_MODES",
    "ESTIMATORS",
    "KL_KINDS",
    "Aggregation",
    "Estimator",
    "Registry",
    "agg_weight",
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
    "register_agg",
    "register_estimator",
    "register_kl",
    "reinforce_pp",
    "rloo",
    "sampled_vocab",
    "tempered",
    "token_advantages",
]
