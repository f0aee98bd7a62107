"""A GRPO driver process for tests/test_resume.py (and test_async_grpo.py) to kill with SIGKILL mid-run.

    python -m tests.killable_run <ray address> <sft model> <output root> <tiny model> [key=value ...]

It joins the test session's Ray cluster, runs steps over the first 8 training prompts and, after each
step, appends the trained samples' token ids, log-probs and weight versions and the learner weight
checksums to <output root>/t/steps.jsonl: what the test compares the resumed run against.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ray

from empathy_ray.runtime.process import setup_process, worker_env
from tests.helpers import capture_rollouts, short_rl_config, started_driver


def main(address: str, sft: str, root: str, tiny: str, *overrides: str) -> None:
    setup_process()
    ray.init(address=address, runtime_env={"env_vars": worker_env()})
    cfg = short_rl_config(Path(root), Path(tiny), sft, *overrides)
    with started_driver(cfg, sft) as (roles, driver), open(cfg.run.dir / "steps.jsonl", "a") as out:
        driver.prompts = driver.prompts[:8]
        seen = capture_rollouts(driver)
        while driver.step < cfg.rl.steps:
            driver.run_step()
            if driver.step % cfg.rl.checkpoint_every == 0:
                driver.save_checkpoint()
            samples = [x.sample for x in driver.trained] if driver.ahead else seen[-1][1]
            row = {
                "step": driver.step,
                "uids": [s.uid for s in samples],
                "response_ids": [s.response_ids for s in samples],
                "logprobs": [s.logprobs for s in samples],
                "versions": [s.weight_version for s in samples],
                "weights": roles.learners.weights_checksums(),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
