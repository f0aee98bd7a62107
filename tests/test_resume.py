"""Exact resume: checkpoint contents (RNG states, metrics rows, complete folders only) and a GRPO driver
killed after step k whose resume repeats step k+1 exactly as the killed run had computed it; then a
learner rank killed mid-run, and the same driver rebuilding its learner group from the last checkpoint."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from empathy_ray.config import ConfigError
from empathy_ray.runtime import checkpoint
from empathy_ray.runtime.tracking import read_metrics
from tests.helpers import kill_after_step_3


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_states_round_trip_through_a_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draws()
    checkpoint.save_rng(tmp_path / "rng.pt")
    want = _draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    assert _draws() != want
    checkpoint.load_rng(tmp_path / "rng.pt")
    assert _draws() == want
    with pytest.raises(FileNotFoundError, match="no RNG state in this checkpoint"):
        checkpoint.load_rng(tmp_path / "missing.pt")


def test_latest_skips_unfinished_checkpoints_and_checks_the_seed(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (1, 2):
        d = checkpoint.checkpoint_dir(root, step)
        d.mkdir(parents=True)
        (d / checkpoint.DRIVER_STATE).write_text(json.dumps({"step": step, "cursor": {"seed": 7}}))
        checkpoint.save_rng(d / checkpoint.DRIVER_RNG)
    (root / ".step_000003.abc.tmp").mkdir()  # atomic_dir's temporary folder of a save that died
    (root / "step_000004").mkdir()  # a folder without driver state is not a checkpoint
    assert checkpoint.latest(root) == root / "step_000002"
    assert checkpoint.load_driver_state(root / "step_000002", seed=7)["step"] == 2
    with pytest.raises(ConfigError, match="run.seed=8, but checkpoint .* run.seed=7"):
        checkpoint.load_driver_state(root / "step_000002", seed=8)
    assert checkpoint.latest(tmp_path / "none") is None


def test_a_save_clears_what_a_killed_save_left_behind(tmp_path):
    class Weights:  # writes into the checkpoint folder what the learner group's save would
        def save(self, folder: str) -> None:
            (Path(folder) / "model.safetensors").write_bytes(b"w")

    root = tmp_path / "checkpoints"
    half = root / ".step_000003.a1b2.tmp"  # atomic_dir's folder of a save that was killed
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"half")
    (root / ".step_000002..step_000002.c3d4.tmp.old").mkdir()  # an old one moved aside, never deleted
    checkpoint.save(root, 2, Weights(), {"cursor": {"seed": 7}}, keep=2)
    checkpoint.save(root, 4, Weights(), {"cursor": {"seed": 7}}, keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["step_000002", "step_000004"]
    assert checkpoint.load_driver_state(root / "step_000004", seed=7)["step"] == 4


def test_metrics_rows_after_the_checkpoint_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "x": s / 10}) + "\n" for s in (1, 2, 3, 4)))
    assert checkpoint.drop_metrics_after(path, 2) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    assert checkpoint.drop_metrics_after(path, 2) == 0
    assert checkpoint.drop_metrics_after(tmp_path / "absent.jsonl", 2) == 0


COMPARED = ("reward/", "train/", "rollout/", "counters/")
NOT_COMPARED = ("rollout/tokens_per_s",)  # a speed


def _max_diff(a: dict, b: dict) -> tuple[float, str, int]:
    """The largest |a[k] - b[k]| over the compared metrics, its key, and how many keys were compared."""
    keys = [k for k in a if k.startswith(COMPARED) and k not in NOT_COMPARED]
    assert keys and set(keys) == {k for k in b if k.startswith(COMPARED) and k not in NOT_COMPARED}
    worst, name = 0.0, ""
    for k in keys:
        x, y = float(a[k]), float(b[k])
        d = 0.0 if (x == y or (math.isnan(x) and math.isnan(y))) else abs(x - y)
        if d >= worst:
            worst, name = d, k
    return worst, name, len(keys)


def _every_view_holds_each_step_once(run: Path, rl_dir: Path, steps: list[int]) -> None:
    """Steps 3 and 5 ran twice; every view of the run holds them once: the first rows never reached W&B or
    MLflow, which wait for a step's checkpoint, and TensorBoard's copy was rolled back with metrics.jsonl."""
    from tests.tracker_reads import mlflow_steps, tensorboard_steps, wandb_steps

    assert [r["step"] for r in read_metrics(rl_dir / "metrics.jsonl")] == steps
    assert tensorboard_steps(rl_dir / "tb", "reward/total_mean") == steps
    assert mlflow_steps(run, "rl", "reward/total_mean") == steps
    # W&B's service process is killed with the driver and drops the rows it had not yet written to its
    # file (runtime/trackers.py): earlier steps may be missing, none is there twice
    in_wandb = wandb_steps(run, "reward/total_mean")
    assert len(in_wandb) == len(set(in_wandb)) and in_wandb[-1] == steps[-1], in_wandb


def _kill_learner_rank_in_step(driver, step: int) -> dict:
    """Once step `step`'s rollout is back, Ray kills learner rank 1's process (never restarted): the
    update that follows finds it dead. Returns the metric rows written before the kill (filled then)."""
    import ray

    before: dict = {}
    rollout = driver.rollout

    def killing(batch, at=None):
        samples = rollout(batch, at)
        if driver.step + 1 == step and not before:
            before["rows"] = read_metrics(driver.dir / "metrics.jsonl")
            ray.kill(driver.roles.learners.group.actors[1], no_restart=True)
        return samples

    driver.rollout = killing
    return before


@pytest.mark.slow
def test_a_killed_driver_resumes_with_the_step_it_lost_exactly(trained_run, tiny_model_dir, tmp_path):
    """A driver process (tests/killable_run.py) runs over 8 prompts (B=4: step 3 opens epoch 1) with a
    checkpoint every 2 steps and is killed with SIGKILL in step 4, after logging step 3. A fresh driver
    with fresh roles resumes in the same run folder from step_2 and runs step 3 again: the same sampled
    tokens and log-probs, rewards, loss, KL, LR, grad norm and weights as the killed run's step 3.
    The same driver then runs on to step 6 and loses learner rank 1 in step 6, after step 5 was logged
    and step 4 checkpointed: it rebuilds the learner group from step_4 (counted once), runs steps 5 and 6
    again with step 5's numbers unchanged, and every view of the run holds each step once."""
    import ray

    from tests.helpers import LENGTH_RULE, capture_rollouts, short_rl_config, started_driver
    from tests.tracker_reads import TRACKERS

    _, _, run_dir = trained_run
    sft = str(run_dir / "sft" / "model")
    overrides = ("rl.steps=10", "rl.checkpoint_every=2", "rl.learner.lr=1e-2", *LENGTH_RULE, TRACKERS)
    cfg = short_rl_config(tmp_path, tiny_model_dir, sft, *overrides)
    rl_dir, steps_file = cfg.run.dir / "rl", cfg.run.dir / "steps.jsonl"
    address = ray.get_runtime_context().gcs_address
    args = [address, sft, str(tmp_path), str(tiny_model_dir), *overrides]
    kill_after_step_3(args, steps_file)
    killed = [json.loads(line) for line in steps_file.read_text().splitlines()][2]
    killed_row = read_metrics(rl_dir / "metrics.jsonl")[2]
    assert killed["step"] == killed_row["step"] == 3
    assert checkpoint.latest(rl_dir / "checkpoints") == rl_dir / "checkpoints" / "step_000002"

    with started_driver(cfg, sft) as (roles, driver):  # the dead driver's actors are gone: all new ones
        driver.prompts = driver.prompts[:8]
        seen = capture_rollouts(driver)
        assert driver.resume() and driver.step == 2
        assert (driver.cursor.epoch, driver.cursor.position) == (1, 0), "step 2 ended epoch 0"
        rows = driver.train(3)
        weights = roles.learners.weights_checksums()
        ((_, samples),) = seen
        killed_learner = _kill_learner_rank_in_step(driver, 6)
        later = driver.train(6)
        driver.writer.close()

    assert len(rows) == 1, "the resumed run ran exactly step 3 (not zero steps at the epoch boundary)"
    assert [s.uid for s in samples] == killed["uids"] and len(samples) == 16
    same_tokens = [s.response_ids for s in samples] == killed["response_ids"]
    lp_diff = math.nan  # logprobs of the same tokens only
    if same_tokens:
        pairs = zip(samples, killed["logprobs"], strict=True)
        lp_diff = max(abs(x - y) for s, lps in pairs for x, y in zip(s.logprobs, lps, strict=True))
    diff, key, compared = _max_diff(killed_row, rows[0])
    print(
        f"step 3, killed run vs resumed run: sampled token ids equal: {same_tokens} "
        f"({sum(len(s.response_ids) for s in samples)} tokens); max |logprob diff| {lp_diff:.3g}; "
        f"max metric diff {diff:.3g} over {compared} metrics ({key}); "
        f"weight checksums {killed['weights']} vs {weights}"
    )
    assert same_tokens
    assert lp_diff <= 1e-6
    assert diff <= 1e-6, f"{key}: {killed_row[key]} vs {rows[0][key]}"
    assert weights == killed["weights"], "the same update (optimizer state and LR schedule restored)"

    # the lost learner rank: step 5 was logged before the kill, its row dropped with the rollback to step 4
    assert [r["step"] for r in killed_learner["rows"]] == [1, 2, 3, 4, 5]
    assert len(later) == 3 and [r.get("counters/learner_rebuilt", 0) for r in later] == [0, 1, 1]
    assert checkpoint.latest(rl_dir / "checkpoints") == rl_dir / "checkpoints" / "step_000006"
    first, again = killed_learner["rows"][4], later[1]
    keys = [k for k in first if k.startswith(("reward/", "train/"))]
    worst = max(abs(float(first[k]) - float(again[k])) for k in keys)
    print(
        f"step 5 before the learner rank died vs after the rebuild: max diff {worst:.3g} "
        f"over {len(keys)} metrics"
    )
    assert keys and worst <= 1e-6, "the rebuilt group restored step 4's weights, optimizer and LR exactly"
    _every_view_holds_each_step_once(cfg.run.dir, rl_dir, [1, 2, 3, 4, 5, 6])
