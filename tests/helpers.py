"""Helpers shared by test modules (import them from here, never from another test file)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the helpers stay cheap to import: conftest imports this module at collection
    from empathy_ray.actors.roles import Roles
    from empathy_ray.config import Config
    from empathy_ray.rl.driver import GRPODriver

REPO = Path(__file__).resolve().parent.parent


def short_run_overrides(output_root: Path, model_dir: Path, *extra: str) -> list[str]:
    """A pipeline run sized for tests: the 'test' preset model, short sequences, few epochs."""
    return [
        f"run.output_root={output_root}",
        "run.name=t",
        f"model.path={model_dir}",
        "data.max_prompt_tokens=128",
        "data.max_response_tokens=160",
        "sft.epochs=2",
        "sft.eval_prompts=4",
        "sft.eval_max_new_tokens=16",
        "sft.log_every=2",
        "rm.epochs=1",
        "rm.log_every=2",
        *extra,
    ]


# A rule reward a tiny model can learn in a few steps: answers close to 20 characters are best.
LENGTH_RULE = [
    "rl.reward_model=none",
    "rl.reward.rm_weight=0",
    "rl.reward.format_weight=0",
    "rl.reward.length_weight=1",
    "rl.reward.length_target=20",
    "rl.reward.safety_weight=0",  # a constant -2 on crisis prompts would only shift the batch means
]


def short_rl_config(output_root: Path, tiny_model_dir: Path, policy_dir: Path | str, *extra: str) -> Config:
    """A GRPO config sized for tests: B=4 prompts x G=4 answers of up to 48 tokens, 2 rollout workers,
    2 learner ranks, no checkpoints; `extra` overrides come last."""
    from empathy_ray.config import load_config

    return load_config(
        None,
        short_run_overrides(
            output_root,
            tiny_model_dir,
            f"rl.policy_model={policy_dir}",
            "rl.prompts_per_step=4",
            "rl.algo.group_size=4",
            "rl.rollout.max_new_tokens=48",
            "rl.rollout.num_workers=2",
            "rl.learner.num_workers=2",
            "rl.learner.micro_batch_size=4",
            "rl.checkpoint_every=0",
            "rl.eval_prompts=4",
            *extra,
        ),
    )


@contextlib.contextmanager
def started_driver(
    cfg: Config, policy_dir: str, reward_model_dir: str | None = None
) -> Iterator[tuple[Roles, GRPODriver]]:
    """(roles, driver): the roles started for `cfg` (reward model `reward_model_dir`, or rule terms
    only) and a GRPO driver over the training prompts; the roles stop afterwards."""
    from empathy_ray.actors.roles import Roles
    from empathy_ray.rl.driver import GRPODriver
    from empathy_ray.rl.stage import build_prompts

    roles = Roles.create(cfg, policy_dir, reward_model_dir)
    try:
        yield roles, GRPODriver(cfg, cfg.run.dir / "rl", build_prompts(cfg, policy_dir, ("train",)), roles)
    finally:
        roles.shutdown()


def capture_rollouts(driver) -> list[tuple[list, list]]:
    """Record each (prompt batch, samples) the driver's rollout returns; the rollout itself runs as is."""
    seen: list[tuple[list, list]] = []
    rollout = driver.rollout

    def recording(batch, step=None):
        samples = rollout(batch, step)
        seen.append((batch, samples))
        return samples

    driver.rollout = recording
    return seen


def run_cluster_script(script: str, out_dir: Path, *args: str, timeout: int = 900) -> dict:
    """Run `script` (python -c) in a fresh process with its own simulated Ray cluster and return the
    JSON it wrote to out_dir/result.json. A file, not stdout: Ray workers' log lines are interleaved
    into the process's stdout. A process holds one Ray connection, hence the subprocess."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAY_ADDRESS": ""}  # never the session's cluster
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    result_file = out_dir / "result.json"
    assert proc.returncode == 0 and result_file.exists(), proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(result_file.read_text())


def kill_after_step_3(args: list[str], steps_file: Path) -> None:
    """Run `tests.killable_run` with `args` and SIGKILL it once `steps_file` holds three steps."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "tests.killable_run", *args], cwd=REPO)
    try:
        deadline = time.monotonic() + 600
        while not (steps_file.exists() and steps_file.read_text().count("\n") >= 3):
            assert proc.poll() is None, f"the run to kill ended by itself (exit code {proc.returncode})"
            assert time.monotonic() < deadline, "the run to kill did not finish step 3 within 10 minutes"
            time.sleep(0.2)
    finally:
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
