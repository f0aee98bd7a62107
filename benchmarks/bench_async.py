"""Asynchronous GRPO: synchronous vs rl.max_staleness=1 steps/s with simulated rollout and learner latencies.

    python benchmarks/bench_async.py [--size full|tiny] [--repeats 3]

writes benchmarks/results/<date>-<host>-async.{json,md,png}. Everything is the production path except
the two latencies: the rollout workers are real `RolloutEngine` actors with the `simulated` engine
(each generate call sleeps max_new_tokens x simulated_step_delay_s), the learner is one actor of
`SimulatedLearner` below (each update sleeps a fixed time; its "weights" are a 4 MB tensor that really
travels through the object-store sync), the reward actor is the real `RewardScorer` (rule terms), and the
driver is `GRPODriver` with its `Roles`. No reference pass (rl.algo.kl_coef=0). Rollout:train time
ratios 1:1 and 2:1; ideal speed-ups of k=1 over the synchronous loop are (R + T) / max(R, T): 2 and 1.5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, fmt, report_one_part, stat, target  # noqa: E402

SIZES = {
    # rollout seconds per step, learner seconds per step (the ratios), steps timed, B, G, workers
    "full": {"ratios": ((1.0, 1.0), (2.0, 1.0)), "steps": 8, "warmup": 2, "B": 8, "G": 4, "workers": 2},
    "tiny": {"ratios": ((0.1, 0.1),), "steps": 2, "warmup": 1, "B": 2, "G": 2, "workers": 1},
}  # fmt: skip
DECODE_STEPS = 20  # max_new_tokens of the simulated engine; the delay per step sets the rollout time


class SimulatedLearner:
    """A learner rank without a model: an update sleeps `delay_s`; the weights are one float32 tensor."""

    def __init__(self, delay_s: float, numel: int = 1 << 20) -> None:
        import torch

        self.delay_s = delay_s
        self.w = torch.zeros(numel)

    def train_step(self, items: list[dict[str, Any]]) -> dict[str, float]:
        time.sleep(self.delay_s)
        self.w += 1.0
        return {"train/policy_loss": 0.0, "train/kl": 0.0, "train/samples": float(len(items))}

    def tensors_for_sync(self) -> dict[str, Any]:
        return {"w": self.w.clone()}


def _roles(cfg, learner_s: float):
    from empathy_ray.actors.group import ActorGroup, wait_ready
    from empathy_ray.actors.learner_group import LearnerGroup
    from empathy_ray.actors.reward import RewardScorer
    from empathy_ray.actors.roles import Roles
    from empathy_ray.actors.rollout import RolloutEngine
    from empathy_ray.actors.weight_sync import start_weight_sync

    rl = cfg.rl
    roles = Roles(cfg, always_reference=False)
    try:
        roles.learners = LearnerGroup(ActorGroup.start("learner", SimulatedLearner, rl.learner, (learner_s,)))
        roles.rollout = ActorGroup.start(
            "rollout", RolloutEngine, rl.rollout, ("simulated", rl.rollout, 0), rl.rollout.num_workers
        )
        roles.reward = ActorGroup.start("reward", RewardScorer, rl.reward, (rl.reward, None, 128, 128))
        wait_ready([roles.learners.group, roles.rollout, roles.reward], 300)
        roles.weights = start_weight_sync("object_store", roles.learners, roles.rollout, 1)
    except BaseException:
        roles.shutdown()
        raise
    return roles


def _steps_per_s(s: dict[str, Any], rollout_s: float, learner_s: float, k: int, work: Path) -> dict:
    """Steps/s of `steps` driver steps after `warmup` ones, and the step's mean wait times."""
    from empathy_ray.config import load_config
    from empathy_ray.rl.driver import GRPODriver, Prompt

    cfg = load_config(None, [
        f"run.output_root={work}", f"rl.prompts_per_step={s['B']}", f"rl.algo.group_size={s['G']}",
        "rl.learner.num_workers=1", f"rl.learner.micro_batch_size={s['B'] * s['G']}", "rl.algo.kl_coef=0",
        "rl.reward_model=none", "rl.reward.rm_weight=0", "rl.reward.safety_weight=0", "rl.checkpoint_every=0",
        "rl.rollout.engine=simulated", f"rl.rollout.num_workers={s['workers']}", "rl.rollout.num_cpus=1",
        f"rl.rollout.max_new_tokens={DECODE_STEPS}", f"rl.rollout.simulated_step_delay_s={rollout_s / DECODE_STEPS}",
        f"rl.max_staleness={k}",
    ])  # fmt: skip
    prompts = [Prompt(f"p{i}", f"post {i}", [1, 2, 3, 4 + i]) for i in range(4 * s["B"])]
    roles = _roles(cfg, learner_s)
    driver = GRPODriver(cfg, work / f"async-{k}-{rollout_s}-{time.monotonic_ns()}", prompts, roles)
    try:
        for _ in range(s["warmup"]):
            driver.run_step()
        t0 = time.perf_counter()
        rows = [driver.run_step() for _ in range(s["steps"])]
        wall = time.perf_counter() - t0
        if driver.ahead is not None:
            driver.ahead.drain()
    finally:
        driver.writer.close()
        roles.shutdown()
    mean = lambda key: sum(r.get(key, 0.0) for r in rows) / len(rows)  # noqa: E731
    return {"steps_per_s": s["steps"] / wall, "learner_wait_s": mean("time/learner_wait_s"),
            "rollout_wait_s": mean("time/rollout_wait_s"), "staleness_max": max(r.get("rollout/staleness_max", 0) for r in rows)}  # fmt: skip


def run(size: str, repeats: int, work: Path) -> dict[str, Any]:
    import ray

    from empathy_ray.runtime.process import worker_env

    s = SIZES[size]
    ray.init(
        num_cpus=8,
        include_dashboard=False,
        runtime_env={"env_vars": {**worker_env(), "PYTHONPATH": str(REPO)}},
    )
    raw: list[dict[str, Any]] = []
    try:
        for rollout_s, learner_s in s["ratios"]:
            for r in range(repeats):  # sync and async side by side in every round
                for k in (0, 1):
                    m = _steps_per_s(s, rollout_s, learner_s, k, work)
                    raw.append({"rollout_s": rollout_s, "learner_s": learner_s, "k": k, "round": r, **m})
                    print(f"R={rollout_s} T={learner_s} k={k} round {r}: {m}", flush=True)
    finally:
        ray.shutdown()
    return _report(s, repeats, raw)


def _report(s: dict[str, Any], repeats: int, raw: list[dict[str, Any]]) -> dict[str, Any]:
    rows, targets, series = [], [], {"synchronous": [], "k=1": []}
    for rollout_s, learner_s in s["ratios"]:
        runs = [x for x in raw if (x["rollout_s"], x["learner_s"]) == (rollout_s, learner_s)]
        sync, async1 = [x for x in runs if x["k"] == 0], [x for x in runs if x["k"] == 1]
        speedup = stat([a["steps_per_s"] / b["steps_per_s"] for a, b in zip(async1, sync, strict=True)])
        ideal = (rollout_s + learner_s) / max(rollout_s, learner_s)
        ratio = f"{rollout_s / learner_s:g}:1"
        sp0, sp1 = stat([x["steps_per_s"] for x in sync]), stat([x["steps_per_s"] for x in async1])
        series["synchronous"].append(sp0)
        series["k=1"].append(sp1)
        rows.append([ratio, f"{rollout_s:g} / {learner_s:g}", fmt(sp0, 3), fmt(sp1, 3), fmt(speedup, 2), f"{ideal:.2f}",
                     f"{sum(x['learner_wait_s'] for x in async1) / len(async1):.2f}",
                     f"{sum(x['rollout_wait_s'] for x in async1) / len(async1):.2f}"])  # fmt: skip
        if rollout_s == learner_s:
            met = speedup["median"] >= 1.8
            targets.append(
                target("async k=1 vs sync steps/s at rollout:train 1:1", ">= 1.8x", fmt(speedup, 2), met)
            )
    return {
        "title": "Asynchronous GRPO (k=1) vs synchronous, simulated latencies",
        "settings": {
            **{k: v for k, v in s.items() if k != "ratios"},
            "repeats": repeats,
            "decode_steps": DECODE_STEPS,
            "sync": "object_store",
        },  # fmt: skip
        "columns": [
            "rollout:train",
            "R / T s",
            "sync steps/s",
            "k=1 steps/s",
            "speed-up",
            "ideal",
            "k=1 learner wait s",
            "k=1 rollout wait s",
        ],  # fmt: skip
        "rows": rows,
        "plot": {
            "x": [f"{r:g}:{t:g}" for r, t in s["ratios"]],
            "xlabel": "rollout:train seconds",
            "ylabel": "steps/s",
            "series": series,
            "bars": True,
        },  # fmt: skip
        "targets": targets,
        "notes": [
            "Speed-up is paired per round (k=1 and sync run one after the other). Ideal: (R + T) / max(R, T). "
            "The waits are per-step means of the k=1 runs: the learner waiting for its batch, the rollout "
            "workers idle waiting for the weights their next batch must be generated with."
        ],
        "raw": raw,
    }


def main() -> int:
    from empathy_ray.runtime.process import setup_process

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    setup_process()
    measure = lambda work: run(args.size, args.repeats, work)  # noqa: E731
    report_one_part("async", "async", args.size, args.repeats, Path(args.out_dir), measure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
