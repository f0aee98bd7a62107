"""Starting the RL roles on a Ray cluster: resource checks first, then one set of actors per role.

Each role's count and per-actor resources come from its own config section, so changing
`rl.rollout.num_workers` changes nothing else. Resource requests are checked against the cluster
before any actor starts: an impossible request fails at once and names the config key.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from empathy_ray.config import Config
from empathy_ray.runtime.resources import check_fits, cluster_nodes, stage_demands

log = logging.getLogger(__name__)


def check_resources(cfg: Config, nodes: list[dict[str, float]]) -> None:
    """Fail before any actor starts when the RL roles cannot be placed on these nodes."""
    check_fits(stage_demands(cfg, "rl"), nodes, "the RL roles")


@dataclass
class Roles:
    """Handles of every RL actor, plus the operations the driver needs across roles."""

    cfg: Config
    rollout_workers: list[Any]
    reward: Any
    reference: Any
    learners: Any  # LearnerGroup
    sync: Any  # ObjectStoreSync; None with rl.sync=nccl/gloo (learner rank 0 broadcasts)
    counters: Counter = field(default_factory=Counter)
    always_reference: bool = True  # KL to the reference is always measured, even when not penalised
    rollout_pg: Any = None  # the rollout workers' placement group
    last_weights: Any = None  # ObjectRef of the latest published weights (re-sent to restarted workers)
    last_version: int = 0

    @classmethod
    def create(cls, cfg: Config, policy_dir: str, reward_model_dir: str | None) -> Roles:
        from empathy_ray.actors.learner_group import LearnerGroup
        from empathy_ray.actors.reference import make_reference_actor
        from empathy_ray.actors.reward import make_reward_actor
        from empathy_ray.actors.rollout import make_rollout_workers
        from empathy_ray.actors.weight_sync import ObjectStoreSync
        from empathy_ray.runtime.placement import reserve

        rl = cfg.rl
        check_resources(cfg, cluster_nodes())
        learners = LearnerGroup.create(policy_dir, rl, seed=cfg.run.seed)
        # All rollout workers are reserved at once (a restarted worker comes back in its own bundle).
        rollout_pg = reserve("rollout", rl.rollout.num_workers, rl.rollout, timeout_s=300)
        workers = make_rollout_workers(policy_dir, rl.rollout, seed=cfg.run.seed, placement_group=rollout_pg)
        reward = make_reward_actor(
            rl.reward, reward_model_dir, cfg.data.max_prompt_tokens, cfg.data.max_response_tokens
        )
        reference = make_reference_actor(policy_dir, rl.reference)
        sync = None
        if rl.sync in ("nccl", "gloo"):  # the broadcast source is learner rank 0, not this driver
            learners.init_collective_sync(workers, rl.rollout.tensor_parallel_size, rl.sync)
        else:
            sync = ObjectStoreSync(workers)
        log.info(
            "RL roles up: %d rollout workers (%s), %d learner ranks (DeepSpeed ZeRO-%d), reward actor (RM: %s), "
            "reference actor, weight sync: %s",
            len(workers),
            rl.rollout.engine,
            rl.learner.num_workers,
            rl.learner.zero_stage,
            reward_model_dir or "none",
            rl.sync,
        )
        return cls(cfg, workers, reward, reference, learners, sync, rollout_pg=rollout_pg)

    def score_rewards(self, posts: list[str], texts: list[str]) -> dict[str, list[float]]:
        from empathy_ray.actors.reward import score_with_retry

        r = self.cfg.rl.reward
        return score_with_retry(self.reward, posts, texts, r.timeout_s, r.retries, self.counters)

    def sync_weights(self, version: int) -> dict[str, float]:
        if self.sync is None:
            self.last_version = version
            return self.learners.publish_collective(version)
        self.last_weights = self.learners.weights_for_sync()  # an ObjectRef: put once, every worker pulls
        self.last_version = version
        return self.sync.publish(self.last_weights, version).as_metrics()

    def resync_weights(self) -> None:
        """After a rollout worker restarted (it comes back with the starting weights)."""
        if self.sync is None:
            raise RuntimeError(
                f"a rollout worker restarted, and the {self.cfg.rl.sync} broadcast group cannot re-admit it; rerun with --resume "
                "(or use rl.sync=object_store, which re-sends the weights to restarted workers)"
            )
        if self.last_weights is not None:
            self.sync.publish(self.last_weights, self.last_version)

    def shutdown(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        self.learners.shutdown()
        for a in [*self.rollout_workers, self.reward, self.reference]:
            ray.kill(a)
        if self.rollout_pg is not None:
            remove_placement_group(self.rollout_pg)
