"""One resource vocabulary for every stage and role, checked before anything starts.

A `Demand` is `count` identical actors (Ray Train workers, RL role actors, Serve replicas), each
asking for CPUs, GPUs and custom node resources (e.g. `rollout_node: 1`, declared on node types in
cluster.yaml, so a role lands on the machines meant for it). Each config section builds its own.

Stages run one after another and hand their resources back in between, so each stage must fit the
cluster on its own: every single actor on one node, and each resource summed over the stage's
actors within the cluster's total. The same check runs against a live cluster (`cluster_nodes`)
at start-up and against the node types of `cluster.yaml` in a test of the cluster recipe.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from empathy_ray.config import ActorResources, ConfigError, RLConfig, ServeConfig, TrainerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Demand:
    count: int  # identical actors started at once
    cpus: float
    gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)  # custom node resources per actor

    @classmethod
    def of_actor(cls, res: ActorResources, count: int = 1) -> Demand:
        """An RL role: its section says what one actor needs; the count comes from the role."""
        return cls(count, float(res.num_cpus), float(res.num_gpus), dict(res.resources))

    @classmethod
    def of_trainer(cls, tc: TrainerConfig) -> Demand:
        """SFT / RM: the Ray Train workers."""
        return cls(tc.num_workers, float(tc.num_cpus), float(tc.num_gpus), dict(tc.resources))

    @classmethod
    def of_serve(cls, sv: ServeConfig) -> Demand:
        """Serve replicas: as many as autoscaling may start."""
        count = sv.max_replicas if sv.autoscaling else sv.num_replicas
        return cls(count, float(sv.num_cpus), float(sv.num_gpus), dict(sv.resources))

    def bundle(self) -> dict[str, float]:
        """One actor's request in Ray's words; zero amounts are left out (Ray rejects a 0 entry)."""
        wanted = {"CPU": self.cpus, "GPU": self.gpus, **self.resources}
        return {name: float(amount) for name, amount in wanted.items() if amount > 0}


Demands = dict[str, Demand]  # config key (named in errors) -> what it starts


def rl_role_demands(rl: RLConfig) -> Demands:
    """Every RL role's actors: they all run at once during GRPO (no reference actor when the learner
    gives the reference log-probs)."""
    demands = {
        "rl.rollout": Demand.of_actor(rl.rollout, rl.rollout.num_workers),
        "rl.learner": Demand.of_actor(rl.learner, rl.learner.num_workers),
        "rl.reward": Demand.of_actor(rl.reward),
    }
    if not rl.reference_in_learner:
        demands["rl.reference"] = Demand.of_actor(rl.reference)
    return demands


def check_fits(demands: Demands, nodes: list[dict[str, float]], what: str) -> None:
    """Raise ConfigError naming the key when `demands` cannot be placed on `nodes`."""
    totals: Counter[str] = Counter()
    for node in nodes:
        totals.update(node)
    need: Counter[str] = Counter()
    for key, demand in demands.items():
        one = demand.bundle()
        if not any(all(node.get(r, 0.0) >= v for r, v in one.items()) for node in nodes):
            raise ConfigError(
                f"{key}: one actor needs {one}, but no node offers that "
                f"(nodes: {[{k: v for k, v in n.items() if k in one} for n in nodes]}); "
                f"lower what {key} asks per actor (CPUs, GPUs, resources) or add a node type that has them "
                "in cluster.yaml"
            )
        for r, v in one.items():
            need[r] += v * demand.count
    short = {r: (v, totals.get(r, 0.0)) for r, v in need.items() if v > totals.get(r, 0.0) + 1e-9}
    if short:
        detail = ", ".join(f"{r}: needs {v:g}, cluster has {h:g}" for r, (v, h) in short.items())
        keys = " / ".join(demands)
        raise ConfigError(
            f"{what} together need more than the cluster has ({detail}); lower the counts or the "
            f"per-actor CPUs/GPUs/resources of {keys}, or start more nodes"
        )


def cluster_nodes() -> list[dict[str, float]]:
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def free_resources() -> dict[str, float]:
    """CPUs and GPUs nobody holds right now."""
    import ray

    return {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}


def wait_released(before: dict[str, float], timeout_s: float = 60.0) -> dict[str, float]:
    """Wait until what a stage held (Ray Train workers, RL actors, eval tasks) is free again."""
    deadline = time.monotonic() + timeout_s
    now = free_resources()
    while any(now.get(k, 0.0) < v - 1e-6 for k, v in before.items()) and time.monotonic() < deadline:
        time.sleep(0.5)
        now = free_resources()
    if any(now.get(k, 0.0) < v - 1e-6 for k, v in before.items()):
        log.warning("resources not released after %gs: free %s, before the stage %s", timeout_s, now, before)
    return now
