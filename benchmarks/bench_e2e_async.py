"""End to end on CPU: our synchronous loop vs rl.max_staleness=1 vs TRL's GRPOTrainer, on two models.

    python benchmarks/bench_e2e_async.py [--size full|tiny] [--repeats 3] [--models demo,bench]

writes benchmarks/results/<date>-<host>-e2e-async.{json,md,png}. The settings are `bench_e2e.py`'s
(same prompts, B x G, new tokens, learning rate, clip, rule reward, no KL term, one learner rank), on
the tiny `demo` preset and on the ~100M-parameter `bench` preset, where compute rather than per-call
overhead decides.

Placement is what a cluster gives the roles: the rollout worker's process (vLLM's threads included)
is pinned to the first CPU and every other role's (learner, reward actor) to the rest, with `taskset`
once the roles are up, one torch thread each. The synchronous loop leaves one side idle while the
other works; with k=1 the next batch is generated while the learner trains. TRL runs in one process,
generation and training in turn, with torch threads on every CPU (it has no way to split them).
Sync and k=1 run one after the other in every round, so load changes hit both alike; the speed-up is
paired per round. The first step of every run is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_e2e import RULE_REWARD, _overrides, _trl  # noqa: E402
from benchmarks.common import REPO, fmt, grpo_steps, model_dir, report_one_part, stat, target  # noqa: E402

SIZES = {
    "full": {"prompts_per_step": 4, "group_size": 4, "max_new_tokens": 128},
    "tiny": {"prompts_per_step": 2, "group_size": 2, "max_new_tokens": 8},
}
STEPS = {"test": 3, "demo": 6, "bench": 4}  # per run, the first one a warm-up (bench: ~40 s a step)
PHASES = ("rollout", "reward", "train", "sync", "learner_wait", "rollout_wait", "step")


def _pid(actor: Any) -> int:
    import ray

    return ray.get(actor.__ray_call__.remote(lambda _self: os.getpid()))


def pin_roles(roles: Any) -> None:
    """Rollout workers on the first CPU, every other role on the rest: the separate devices of a cluster."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise RuntimeError("this benchmark puts rollouts and the learner on separate CPUs: it needs two")
    others = [*roles.learners.group.actors, *roles.reward.actors, *roles.reference.actors]
    for where, actors in ((str(cpus[0]), roles.rollout.actors), (",".join(map(str, cpus[1:])), others)):
        for actor in actors:
            cmd = ["taskset", "-a", "-p", "-c", where, str(_pid(actor))]
            subprocess.run(cmd, check=True, capture_output=True)


def ours(cfg_args: list[str], model: Path, steps: int, k: int) -> dict[str, Any]:
    """One run of our driver at rl.max_staleness=k: samples/s over the measured steps, phase medians."""
    from empathy_ray.config import load_config

    cfg = load_config(
        None, [*cfg_args, f"rl.max_staleness={k}", "rl.rollout.num_cpus=1", "rl.learner.num_cpus=1"]
    )
    n = cfg.rl.prompts_per_step * cfg.rl.algo.group_size
    env = {
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "VLLM_CPU_OMP_THREADS_BIND": str(min(os.sched_getaffinity(0))),
    }
    run = grpo_steps(cfg, model, steps, always_reference=False, env=env, prepare=pin_roles)
    hist = run["history"][1:]
    return {
        "k": k,
        "samples_per_s": n * len(hist) / run["measured_s"],
        "phases": {p: stat([h.get(f"time/{p}_s", 0.0) for h in hist])["median"] for p in PHASES},
        "reward": [h.get("reward/total_mean") for h in run["history"]],
        "staleness_max": max(h.get("rollout/staleness_max", 0) for h in hist),
    }


def run(size: str, repeats: int, work: Path, models: list[str]) -> dict[str, Any]:
    from empathy_ray.config import load_config

    s = SIZES[size]
    presets = ["test"] if size == "tiny" else models
    raw: list[dict[str, Any]] = []
    for preset in presets:
        model = model_dir(work, preset)
        n = s["prompts_per_step"] * s["group_size"]
        for r in range(repeats):
            for k in (0, 1):
                out = Path(tempfile.mkdtemp(prefix=f"{preset}-k{k}-", dir=work))
                m = ours(_overrides(s, model, out), model, STEPS[preset], k)
                raw.append({"model": preset, "round": r, "system": f"k={k}", **m})
                print(
                    f"{preset} round {r} k={k}: {m['samples_per_s']:.2f} samples/s {m['phases']}", flush=True
                )
            cfg = load_config(None, _overrides(s, model, Path(tempfile.mkdtemp(dir=work))))
            try:
                trl = _trl(cfg, s, model, STEPS[preset], Path(tempfile.mkdtemp(prefix="trl-", dir=work)))
                secs = trl["step_seconds"][1:]
                raw.append({"model": preset, "round": r, "system": "TRL", "samples_per_s": n * len(secs) / sum(secs),
                            "threads": trl["threads"]})  # fmt: skip
                print(f"{preset} round {r} TRL: {raw[-1]['samples_per_s']:.2f} samples/s", flush=True)
            except Exception as e:  # the report says so; our figures stay valid
                raw.append({"model": preset, "round": r, "system": "TRL", "error": str(e)[-400:]})
    return _report(s, size, repeats, presets, raw)


def _report(s: dict, size: str, repeats: int, presets: list[str], raw: list[dict]) -> dict[str, Any]:
    rows, targets, notes = [], [], []
    series: dict[str, list] = {"synchronous": [], "k=1": [], "TRL": []}
    for preset in presets:
        runs = {
            sys_: [x for x in raw if x["model"] == preset and x["system"] == sys_]
            for sys_ in ("k=0", "k=1", "TRL")
        }
        trl_ok = [x for x in runs["TRL"] if "samples_per_s" in x]
        speed = stat(
            [a["samples_per_s"] / b["samples_per_s"] for a, b in zip(runs["k=1"], runs["k=0"], strict=True)]
        )
        sps = {name: stat([x["samples_per_s"] for x in xs]) if xs else None
               for name, xs in (("k=0", runs["k=0"]), ("k=1", runs["k=1"]), ("TRL", trl_ok))}  # fmt: skip
        vs_trl = {k: stat([a["samples_per_s"] / t["samples_per_s"] for a, t in zip(runs[k], runs["TRL"], strict=True)
                          if "samples_per_s" in t]) for k in ("k=0", "k=1")} if trl_ok else {}  # fmt: skip
        rows.append([preset, fmt(sps["k=0"], 2), fmt(sps["k=1"], 2), fmt(speed, 2),
                     fmt(sps["TRL"], 2) if sps["TRL"] else "not run",
                     fmt(vs_trl["k=0"], 2) if vs_trl else "-", fmt(vs_trl["k=1"], 2) if vs_trl else "-"])  # fmt: skip
        for name, key in (("synchronous", "k=0"), ("k=1", "k=1"), ("TRL", "TRL")):
            series[name].append(sps[key] or {"median": 0.0, "min": 0.0, "max": 0.0})
        for k in ("k=0", "k=1"):
            ph = {p: round(stat([x["phases"][p] for x in runs[k]])["median"], 2) for p in PHASES}
            notes.append(f"{preset}, {k}: median seconds per step by phase {ph}.")
        notes += [f"{preset}, TRL failed: {x['error']}" for x in runs["TRL"] if "error" in x]
        if preset == "bench" and size == "full":
            targets.append(target("bench model: k=1 vs our synchronous loop", ">= 1.3x", fmt(speed, 2),
                                  speed["median"] >= 1.3))  # fmt: skip
        if vs_trl and size == "full":
            targets.append(target(f"{preset} model: k=1 vs TRL samples/s", ">= 2x", fmt(vs_trl["k=1"], 2),
                                  vs_trl["k=1"]["median"] >= 2.0))  # fmt: skip
    return {
        "title": "End to end: synchronous vs k=1 vs TRL GRPOTrainer, rollouts and learner on separate CPUs",
        "settings": {
            **s,
            "repeats": repeats,
            "reward": RULE_REWARD,
            "kl": "none",
            "learner_ranks": 1,
            "placement": "rollout worker pinned to CPU 0, other roles to the rest; TRL: all CPUs",
        },  # fmt: skip
        "columns": [
            "model",
            "sync samples/s",
            "k=1 samples/s",
            "k=1 / sync",
            "TRL samples/s",
            "sync / TRL",
            "k=1 / TRL",
        ],  # fmt: skip
        "rows": rows,
        "plot": {
            "x": presets,
            "xlabel": "model preset",
            "ylabel": "samples/s",
            "series": series,
            "bars": True,
        },
        "targets": targets,
        "notes": notes,
        "raw": raw,
    }


def main() -> int:
    from empathy_ray.runtime.process import setup_process

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="demo,bench", help="tiny-model presets to run (full size)")
    ap.add_argument("--work", default=None, help="folder for models and runs (default: a temporary one)")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    setup_process()
    measure = lambda tmp: run(args.size, args.repeats, Path(args.work or tmp), args.models.split(","))  # noqa: E731
    report_one_part("e2e-async", "e2e_async", args.size, args.repeats, Path(args.out_dir), measure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
