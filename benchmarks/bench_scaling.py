"""Orchestration scaling: 1..16 rollout workers of the `simulated` engine on a simulated multi-node cluster.

The workers are the real `RolloutEngine` actors (`rl.rollout.engine=simulated`: no model, a fixed
delay per decoding step), placed by the real placement group on the nodes of a
`ray.cluster_utils.Cluster`, and fed by the real `GRPODriver.rollout` dispatch (`Roles.generate`: one
chunk of prompts per worker, streamed back with `ray.wait`). Weak scaling: every worker gets the same number
of prompts, so the ideal throughput of n workers is n times that of one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import fmt, stat, target

SIZES = {
    # workers, nodes x CPUs per node, prompts per worker, G, decoding steps, seconds per step
    "full": {"workers": (1, 2, 4, 8, 16), "nodes": 4, "node_cpus": 4, "prompts_per_worker": 4,
             "group_size": 4, "max_new_tokens": 64, "step_delay_s": 0.02},  # ~ a GPU decode step of a 7B
    "tiny": {"workers": (1, 2), "nodes": 2, "node_cpus": 1, "prompts_per_worker": 2,
             "group_size": 2, "max_new_tokens": 4, "step_delay_s": 0.005},
}  # fmt: skip


def _start_cluster(s: dict[str, Any]):
    import ray
    from ray.cluster_utils import Cluster

    from empathy_ray.runtime.process import worker_env

    small = 80 * 2**20  # object store per node: the samples are a few hundred kB
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": small})
    for _ in range(s["nodes"]):
        cluster.add_node(
            num_cpus=s["node_cpus"], resources={"rollout_node": s["node_cpus"]}, object_store_memory=small
        )
    ray.init(address=cluster.address, runtime_env={"env_vars": worker_env()})
    return cluster


def _measure(n: int, s: dict[str, Any], repeats: int, work: Path) -> dict[str, Any]:
    """Rollout seconds of `repeats` driver steps with n workers (after one warm-up step)."""
    import ray

    from empathy_ray.actors.group import ActorGroup
    from empathy_ray.actors.roles import Roles
    from empathy_ray.actors.rollout import RolloutEngine
    from empathy_ray.config import load_config
    from empathy_ray.rl.driver import GRPODriver, Prompt

    cfg = load_config(
        None,
        [
            f"run.output_root={work}",
            f"rl.prompts_per_step={n * s['prompts_per_worker']}",
            f"rl.algo.group_size={s['group_size']}",
            "rl.learner.num_workers=1",  # no learner runs here; only so the config validates
            "rl.learner.micro_batch_size=1",
            "rl.rollout.engine=simulated",
            f"rl.rollout.num_workers={n}",
            "rl.rollout.num_cpus=1",
            "rl.rollout.resources={rollout_node: 1}",
            f"rl.rollout.max_new_tokens={s['max_new_tokens']}",
            f"rl.rollout.simulated_step_delay_s={s['step_delay_s']}",
        ],
    )
    rollout = ActorGroup.start("rollout", RolloutEngine, cfg.rl.rollout, ("simulated", cfg.rl.rollout, 0), n)
    rollout.wait_ready(timeout_s=300)
    workers = rollout.actors
    roles = Roles(cfg, rollout)  # only the rollout role is measured: no reward, reference or learner
    batch = [Prompt(f"p{i}", "", [1, 2, 3, i + 4]) for i in range(cfg.rl.prompts_per_step)]
    driver = GRPODriver(cfg, work / f"scaling-{n}", batch, roles)
    try:
        nodes = {
            ray.get(w.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()))
            for w in workers
        }
        driver.rollout(batch, step=0)  # warm-up: first call of each actor
        seconds, tokens = [], 0
        for r in range(repeats):
            t0 = time.perf_counter()
            samples = driver.rollout(batch, step=r + 1)
            seconds.append(time.perf_counter() - t0)
            tokens = sum(len(x.response_ids) for x in samples)
    finally:
        driver.writer.close()
        rollout.shutdown()
    return {"workers": n, "nodes_used": len(nodes), "tokens_per_step": tokens, "seconds": stat(seconds),
            "tokens_per_s": stat([tokens / t for t in seconds])}  # fmt: skip


def run(size: str, repeats: int, work: Path) -> dict[str, Any]:
    import ray

    s = SIZES[size]
    cluster = _start_cluster(s)
    try:
        rows = [_measure(n, s, repeats, work) for n in s["workers"]]
    finally:
        ray.shutdown()
        cluster.shutdown()
    one = rows[0]["tokens_per_s"]["median"] / rows[0]["workers"]
    # Cost-model bound: each worker runs its one chunk in max_new_tokens steps of step_delay_s.
    bound_per_worker = s["prompts_per_worker"] * s["group_size"] / s["step_delay_s"]
    table, series = [], {"achieved": [], "ideal (n x 1 worker)": []}
    for r in rows:
        n, tps = r["workers"], r["tokens_per_s"]
        r["ideal_tokens_per_s"] = n * one
        r["efficiency"] = tps["median"] / (n * one)
        r["efficiency_vs_engine_bound"] = tps["median"] / (n * bound_per_worker)
        r["overhead_ms"] = 1000 * (r["seconds"]["median"] - rows[0]["seconds"]["median"])
        table.append([n, r["nodes_used"], fmt(r["seconds"], 3), f"{r['overhead_ms']:.0f}", fmt(tps, 0), f"{n * one:.0f}",
                      f"{100 * r['efficiency']:.1f} %", f"{100 * r['efficiency_vs_engine_bound']:.1f} %"])  # fmt: skip
        series["achieved"].append(tps)
        series["ideal (n x 1 worker)"].append({"median": n * one, "min": n * one, "max": n * one})
    last = rows[-1]
    return {
        "title": "Orchestration scaling (simulated engine, simulated multi-node cluster)",
        "settings": {
            **s,
            "workers": list(s["workers"]),
            "repeats": repeats,
            "dispatch": "GRPODriver.rollout via Roles.generate (one chunk of ceil(B / n) prompts per worker)",
        },  # fmt: skip
        "columns": [
            "workers",
            "nodes used",
            "rollout s/step",
            "ms over 1 worker",
            "tokens/s",
            "ideal tokens/s",
            "efficiency",
            "vs engine bound",
        ],  # fmt: skip
        "rows": table,
        "plot": {
            "x": list(s["workers"]),
            "xlabel": "rollout workers",
            "ylabel": "tokens/s",
            "series": series,
            "log": True,
        },  # fmt: skip
        "targets": [
            target(
                f"scaling efficiency at {last['workers']} workers",
                ">= 90 %",
                f"{100 * last['efficiency']:.1f} %",
                last["efficiency"] >= 0.9,
            )
        ],
        "notes": [
            "'ms over 1 worker' is the orchestration cost that grows with the worker count: with another "
            "engine speed, efficiency ~ t1 / (t1 + that), t1 being one worker's rollout seconds per step."
        ],
        "raw": rows,
    }
