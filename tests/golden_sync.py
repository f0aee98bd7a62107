"""Golden values of the synchronous GRPO driver (issue 15): the first steps of the demo recipe's RL
settings on the test fixtures' tiny models, recorded from commit 41c5856 (before the asynchronous
driver) so that `rl.max_staleness=0` with the correction off can be held to exactly the same run.

`record` runs the steps on a Ray cluster that is already up; `python -m tests.golden_sync` starts
one like tests/conftest.py, builds the models the same way and writes tests/data/golden/sync_grpo.json.
Recorded with a clean checkout on PYTHONPATH (the file says which commit and which empathy_ray).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from tests.helpers import REPO, capture_rollouts, short_rl_config, started_driver

GOLDEN = REPO / "tests" / "data" / "golden" / "sync_grpo.json"
STEPS = 3
# configs/demo.yaml's rl section (B=4 prompts x G=4, 2 rollout workers on vLLM, 2 ZeRO-2 learner ranks,
# the default reward terms: reward model, format, safety) on the test model, answers cut at 48 tokens;
# lr 1e-2 so that three steps move the weights and the samples visibly.
DEMO_RL = (
    "rl.prompts_per_step=4",
    "rl.algo.group_size=4",
    "rl.algo.estimator=grpo",
    "rl.rollout.num_workers=2",
    "rl.rollout.engine=vllm",
    "rl.learner.num_workers=2",
    "rl.learner.zero_stage=2",
    "rl.learner.lr=1e-2",
    "rl.eval_prompts=0",
    f"rl.steps={STEPS}",
)
# Not compared: wall-clock figures, and the counters of faults that a loaded machine may provoke.
VARYING_PREFIXES = ("time/", "rollout/tokens_per_s", "sync/", "counters/")


def seeded_reward_model(policy_dir: Path, out: Path) -> Path:
    """The test LM with a scalar head drawn from seed 0: the same reward model in every process
    (tests/conftest.py's rm_dir draws its head unseeded)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (out / "config.json").exists():
        torch.manual_seed(0)
        AutoModelForSequenceClassification.from_pretrained(policy_dir, num_labels=1).save_pretrained(out)
        AutoTokenizer.from_pretrained(policy_dir).save_pretrained(out)
    return out


def tokens_digest(samples: list) -> str:
    return hashlib.sha256(json.dumps([s.response_ids for s in samples]).encode()).hexdigest()


def record(tiny_model_dir: Path, rm_dir: Path, out_root: Path, *extra: str) -> list[dict[str, Any]]:
    """Per step: the metrics (all but VARYING_PREFIXES), the sampled token ids (and their digest) and
    the learner's full-weight checksum after the update. `extra` overrides come last."""
    import ray

    from empathy_ray.actors.vllm_ext import checksum

    cfg = short_rl_config(
        out_root, tiny_model_dir, tiny_model_dir, *DEMO_RL, f"rl.reward_model={rm_dir}", *extra
    )
    steps = []
    with started_driver(cfg, str(tiny_model_dir), str(rm_dir)) as (roles, driver):
        seen = capture_rollouts(driver)
        for _ in range(STEPS):
            metrics = driver.run_step()
            samples = seen[-1][1]
            weights = checksum(ray.get(roles.learners.gather_weights().result()).items())
            steps.append(
                {
                    "metrics": {
                        k: v for k, v in sorted(metrics.items()) if not k.startswith(VARYING_PREFIXES)
                    },
                    "response_ids": [s.response_ids for s in samples],
                    "tokens_sha256": tokens_digest(samples),
                    "weight_versions": [s.weight_version for s in samples],
                    "weights": weights,
                }
            )
    return steps


def differences(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Where two recordings differ (metric keys and fields, per step), with both values."""
    out = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for key in sorted(set(x["metrics"]) | set(y["metrics"])):
            u, v = x["metrics"].get(key), y["metrics"].get(key)
            if u != v and not (
                isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v)
            ):
                out.append(f"step {i + 1} {key}: {u!r} vs {v!r}")
        for key in ("tokens_sha256", "weight_versions", "weights"):
            if x[key] != y[key]:
                out.append(f"step {i + 1} {key}: {x[key]!r} vs {y[key]!r}")
    return out


def main() -> None:
    """Record twice in one Ray session; write the first recording, and what differed between the two."""
    import shutil
    import subprocess
    import tempfile

    import ray

    import empathy_ray
    from empathy_ray.modeling.tiny import build_tiny_model
    from empathy_ray.runtime.process import setup_process, worker_env

    setup_process()
    work = Path(tempfile.mkdtemp(prefix="er-golden-", dir="/tmp"))
    ray.init(
        num_cpus=8,
        _temp_dir=str(work / "ray"),
        include_dashboard=False,
        runtime_env={"env_vars": worker_env()},
    )
    try:
        where = ray.get(ray.remote(lambda: __import__("empathy_ray").__file__).remote())
        assert Path(where).resolve().parent == Path(empathy_ray.__file__).resolve().parent, where
        tiny = build_tiny_model(work / "tiny-test", preset="test", seed=0)
        rm = seeded_reward_model(tiny, work / "tiny-rm")
        runs = [record(tiny, rm, work / f"run{k}") for k in range(2)]
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    src = Path(empathy_ray.__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "commit": commit.strip(),
        "empathy_ray": str(src),
        "overrides": list(DEMO_RL),
        "differed_between_two_runs": differences(*runs),
        "steps": runs[0],
    }
    GOLDEN.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {GOLDEN} from {src} at {commit.strip()}; differences: {payload['differed_between_two_runs']}"
    )


if __name__ == "__main__":
    main()
