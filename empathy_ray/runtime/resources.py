"""What each pipeline stage asks of the cluster, checked before anything starts.

Stages run one after another and hand their resources back in between, so each stage must fit the
cluster on its own: every single actor on one node, and each resource summed over the stage's
actors within the cluster's total. The same check runs against a live cluster (`cluster_nodes`)
at start-up and against the node types of `cluster.yaml` in a test of the cluster recipe.
"""

from __future__ import annotations

from collections import Counter

from empathy_ray.config import ActorResources, Config, ConfigError

Demands = dict[str, tuple[dict[str, float], int]]  # config key -> (one actor's resources, count)


def _demand(res: ActorResources) -> dict[str, float]:
    d = {"CPU": float(res.num_cpus), **{k: float(v) for k, v in res.resources.items()}}
    if res.num_gpus:
        d["GPU"] = float(res.num_gpus)
    return d


def stage_demands(cfg: Config, stage: str) -> Demands:
    """The actors a stage starts at once (eval's generation tasks run one model at a time: 1 CPU)."""
    if stage in ("sft", "rm"):
        tc = cfg.sft if stage == "sft" else cfg.rm
        one = {"CPU": float(tc.cpus_per_worker), **({"GPU": 1.0} if tc.use_gpu else {})}
        return {f"{stage}.num_workers": (one, tc.num_workers)}
    if stage == "rl":
        rl = cfg.rl
        return {
            "rl.rollout": (_demand(rl.rollout), rl.rollout.num_workers),
            "rl.learner": (_demand(rl.learner), rl.learner.num_workers),
            "rl.reward": (_demand(rl.reward), 1),
            "rl.reference": (_demand(rl.reference), 1),
        }
    if stage == "serve":
        sv = cfg.serve
        one = {"CPU": float(sv.num_cpus), **({"GPU": float(sv.num_gpus)} if sv.num_gpus else {})}
        return {"serve": (one, sv.max_replicas if sv.autoscaling else sv.num_replicas)}
    if stage == "eval":
        return {"eval": ({"CPU": 1.0}, 1)}
    raise ValueError(f"unknown stage {stage!r}")


def check_fits(demands: Demands, nodes: list[dict[str, float]], what: str) -> None:
    """Raise ConfigError naming the key when `demands` cannot be placed on `nodes`."""
    totals: Counter[str] = Counter()
    for node in nodes:
        totals.update(node)
    need: Counter[str] = Counter()
    for key, (one, count) in demands.items():
        if not any(all(node.get(r, 0.0) >= v for r, v in one.items()) for node in nodes):
            raise ConfigError(
                f"{key}: one actor needs {one}, but no node offers that "
                f"(nodes: {[{k: v for k, v in n.items() if k in one} for n in nodes]}); "
                f"lower {key}.num_cpus/num_gpus/resources or add a node type that has them in cluster.yaml"
            )
        for r, v in one.items():
            need[r] += v * count
    short = {r: (v, totals.get(r, 0.0)) for r, v in need.items() if v > totals.get(r, 0.0) + 1e-9}
    if short:
        detail = ", ".join(f"{r}: needs {v:g}, cluster has {h:g}" for r, (v, h) in short.items())
        keys = " / ".join(demands)
        raise ConfigError(
            f"{what} together need more than the cluster has ({detail}); lower the counts or "
            f"num_cpus/num_gpus of {keys}, or start more nodes"
        )


def check_stages(cfg: Config, stages: list[str], nodes: list[dict[str, float]]) -> None:
    for stage in stages:
        check_fits(stage_demands(cfg, stage), nodes, f"the {stage} stage's actors")


def cluster_nodes() -> list[dict[str, float]]:
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
