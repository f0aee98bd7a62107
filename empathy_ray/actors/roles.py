"""The RL roles on a Ray cluster, and the operations the driver needs from them.

Every role is an `ActorGroup` of its plain class: the rollout workers (N `RolloutEngine`), the reward
actor (one `RewardScorer`), the reference actor (one `ReferencePolicy`; none when a LoRA learner gives
the reference log-probs with its adapter off, rl.reference.source) and the learner ranks (M
`LearnerRank` in a `LearnerGroup`). Each role's count and per-actor resources come from its own config
section, so changing `rl.rollout.num_workers` changes nothing else. Resource requests are checked
against the cluster before any actor starts: an impossible request fails at once and names the key.

The driver talks to `Roles` only through its typed methods (`generate`, `score`, `ref_logprobs`,
`train`, `sync`); each submits the work and returns a `Pending`, whose `result()` waits (and retries
or re-dispatches where the role needs it), so calls to different roles run side by side.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from empathy_ray.actors.group import ActorGroup, Pending, call_with_retries, wait_ready
from empathy_ray.config import Config
from empathy_ray.domain.rollouts import Sample
from empathy_ray.runtime.resources import check_fits, cluster_nodes, rl_role_demands

if TYPE_CHECKING:
    from empathy_ray.actors.learner_group import LearnerGroup
    from empathy_ray.actors.weight_sync import WeightSync

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 900.0  # every actor's __init__ (model loading, vLLM start-up) must end within this


def check_resources(cfg: Config, nodes: list[dict[str, float]]) -> None:
    """Fail before any actor starts when the RL roles cannot be placed on these nodes."""
    check_fits(rl_role_demands(cfg.rl), nodes, "the RL roles")


@dataclass
class Roles:
    """Every RL role's actors, and one typed method per thing the driver asks of them."""

    cfg: Config
    rollout: ActorGroup | None = None
    reward: ActorGroup | None = None
    reference: ActorGroup | None = None
    learners: LearnerGroup | None = None
    weights: WeightSync | None = None  # learner -> rollout workers (rl.sync's transport)
    counters: Counter = field(default_factory=Counter)
    policy_dir: str = ""  # the starting policy: what a replaced learner group loads (restart_learners)
    always_reference: bool = True  # KL to the reference is always measured, even when not penalised

    @classmethod
    def create(cls, cfg: Config, policy_dir: str, reward_model_dir: str | None) -> Roles:
        """Every role started side by side, up (models loaded) and connected; on any failure all stop."""
        from empathy_ray.actors.learner_group import LearnerGroup
        from empathy_ray.actors.reference import ReferencePolicy
        from empathy_ray.actors.reward import RewardScorer
        from empathy_ray.actors.rollout import RolloutEngine
        from empathy_ray.actors.weight_sync import start_weight_sync

        rl, seed = cfg.rl, cfg.run.seed
        check_resources(cfg, cluster_nodes())
        roles = cls(cfg, policy_dir=policy_dir)
        try:
            roles.learners = LearnerGroup.start(policy_dir, rl, seed)
            # Every worker gets the run's seed: a request's samples depend only on (seed, step, prompt
            # index), never on which worker took it, so a re-dispatch or a resume draws the same tokens.
            # rl.sync_lora=adapter: the workers keep the base and take each sync as a LoRA adapter
            lora = rl.learner.lora if rl.adapter_sync else None
            roles.rollout = ActorGroup.start(
                "rollout",
                RolloutEngine,
                rl.rollout,
                (policy_dir, rl.rollout, seed, lora),
                rl.rollout.num_workers,
            )
            scorer_args = (
                rl.reward,
                reward_model_dir,
                cfg.data.max_prompt_tokens,
                cfg.data.max_response_tokens,
            )
            roles.reward = ActorGroup.start("reward", RewardScorer, rl.reward, scorer_args)
            if not rl.reference_in_learner:
                ref_args = (policy_dir, rl.reference, rl.rollout.temperature)
                roles.reference = ActorGroup.start("reference", ReferencePolicy, rl.reference, ref_args)
            groups = [roles.learners.group, roles.rollout, roles.reward, roles.reference]
            wait_ready([g for g in groups if g is not None], READY_TIMEOUT_S)
            roles.learners.setup()
            roles.weights = start_weight_sync(
                rl.sync, roles.learners, roles.rollout, rl.rollout.tensor_parallel_size
            )
        except BaseException:
            roles.shutdown()
            raise
        log.info(
            "RL roles up: %d rollout workers (%s), %d learner ranks (DeepSpeed ZeRO-%d), reward actor (RM: %s), "
            "reference: %s, weight sync: %s",
            rl.rollout.num_workers,
            rl.rollout.engine,
            rl.learner.num_workers,
            rl.learner.zero_stage,
            reward_model_dir or "none",
            "the learner with its adapter off" if rl.reference_in_learner else "an actor of its own",
            rl.sync,
        )
        return roles

    # -- what the driver asks of the roles ----------------------------------------------------------

    def generate(self, prompts: list[list[int]], group_size: int, step: int) -> Pending[list[Sample]]:
        """`group_size` samples per prompt, in prompt order; uids and seeds from (step, prompt index).

        One chunk of prompts per rollout worker keeps every vLLM call as large as it can be (chunk x G
        sequences decoded together): an actor runs its calls one after another, so two half-size
        chunks cost two full decode loops (benchmarks/results/2026-11-27-vm-quiet-one-chunk.md has the
        measurement). A worker that dies mid-call is restarted by Ray with its starting
        weights, so the current weights are published to it again and its chunk re-sent: every
        sample still arrives exactly once.
        """
        size = max(1, math.ceil(len(prompts) / len(self.rollout.actors)))
        calls = [(prompts[s : s + size], group_size, step, s) for s in range(0, len(prompts), size)]
        chunks = self.rollout.balanced("generate", calls, self._rollout_worker_died)
        return Pending(lambda: [sample for chunk in chunks.result() for sample in chunk])

    def _rollout_worker_died(self, worker: int, call: tuple, error: Exception) -> None:
        """The restarted worker gets the newest published weights; its chunk is generated again there or
        on another worker, and its samples carry the version they were generated with."""
        self.counters["rollout_redispatched"] += 1
        log.warning(
            "rollout worker %d died on prompts %d+ of step %d (%s); re-syncing and re-dispatching",
            worker,
            call[3],
            call[2],
            error,
        )
        self.resync(worker)

    def score(self, posts: list[str], completions: list[str]) -> Pending[dict[str, list[float]]]:
        """Per-term rewards and "total"; retried on a timeout or a reward-actor death (rl.reward)."""
        from empathy_ray.actors.reward import submit_score

        r = self.cfg.rl.reward
        return submit_score(self.reward.actors[0], posts, completions, r.timeout_s, r.retries, self.counters)

    def ref_logprobs(self, items: list[tuple[list[int], list[int]]]) -> Pending[list[list[float]]]:
        """Per-token log-probs of each (prompt ids, response ids) under the frozen starting policy. From
        the reference actor: retried on a timeout or its death (rl.reference), as the reward call is. From
        the LoRA learner (rl.reference.source): a lost rank fails the step, which the driver's learner
        recovery runs again."""
        from empathy_ray.actors.reference import ReferenceTimeoutError

        if self.reference is None:
            return self.learners.logprobs(items, reference=True)
        r = self.cfg.rl.reference
        return call_with_retries(
            self.reference.actors[0],
            "logprobs",
            (items,),
            timeout_s=r.timeout_s,
            retries=r.retries,
            what=f"reference call for {len(items)} samples",
            section="rl.reference",
            error=ReferenceTimeoutError,
            counters=self.counters,
            logger=log,
        )

    def train(self, items: list[dict[str, Any]]) -> Pending[dict[str, float]]:
        """One learner update on the step's scored samples; its stats, reduced over ranks."""
        return self.learners.train(items)

    def sync(self, version: int) -> Pending[dict[str, float]]:
        """The learner's weights into every rollout worker as `version`; the sync's metrics. With the
        object store the loads are queued behind the generate calls already sent (they finish on the
        weights they started with); a collective broadcast needs every worker idle to join it."""
        published = self.weights.publish(version)
        return Pending(lambda: published.result().as_metrics())

    @property
    def sync_needs_idle_workers(self) -> bool:
        """True for the collective transports: a worker joins the broadcast only between its calls, and
        the loads are sent by the learner, so they are not ordered with the driver's generate calls."""
        return self.weights is not None and self.weights.transport != "object_store"

    def resync(self, worker: int | None = None) -> None:
        """After rollout worker `worker` restarted (it comes back with the starting weights)."""
        if self.weights is not None:
            self.weights.resync(worker)

    def restart_learners(self) -> None:
        """A new learner group with the starting policy, and a new weight sync from it, in place of one
        that lost a rank (the driver then restores its last checkpoint into it: rl/recovery.py)."""
        from empathy_ray.actors.learner_group import LearnerGroup
        from empathy_ray.actors.weight_sync import start_weight_sync

        rl = self.cfg.rl
        lost, self.learners, self.weights = self.learners, None, None
        if lost is not None:
            lost.shutdown()
        self.learners = LearnerGroup.create(self.policy_dir, rl, self.cfg.run.seed, READY_TIMEOUT_S)
        self.weights = start_weight_sync(
            rl.sync, self.learners, self.rollout, rl.rollout.tensor_parallel_size
        )

    def shutdown(self) -> None:
        for group in (self.learners, self.rollout, self.reward, self.reference):
            if group is not None:
                group.shutdown()
