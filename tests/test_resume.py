"""Exact resume: checkpoint contents (RNG states, metrics rows, complete folders only) and a GRPO run
stopped after step k whose --resume repeats step k+1 of the uninterrupted run exactly."""

from __future__ import annotations

import json
import math
import random
import shutil

import numpy as np
import pytest
import torch

from empathy_ray import checkpoint
from empathy_ray.config import ConfigError
from empathy_ray.metrics import read_metrics


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


def test_metrics_rows_after_the_checkpoint_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "x": s / 10}) + "\n" for s in (1, 2, 3, 4)))
    assert checkpoint.drop_metrics_after(path, 2) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    assert checkpoint.drop_metrics_after(path, 2) == 0
    assert checkpoint.drop_metrics_after(tmp_path / "absent.jsonl", 2) == 0


COMPARED = ("reward/", "train/", "rollout/", "counters/")
NOT_COMPARED = ("rollout/tokens_per_s",)  # a speed


def _max_diff(a: dict, b: dict) -> tuple[float, str]:
    keys = [k for k in a if k.startswith(COMPARED) and k not in NOT_COMPARED]
    assert keys and set(keys) == {k for k in b if k.startswith(COMPARED) and k not in NOT_COMPARED}
    worst, name = 0.0, ""
    for k in keys:
        x, y = float(a[k]), float(b[k])
        d = 0.0 if (x == y or (math.isnan(x) and math.isnan(y))) else abs(x - y)
        if d >= worst:
            worst, name = d, k
    return worst, name


@pytest.mark.slow
def test_resume_after_a_stop_repeats_the_next_step_exactly(trained_run, tiny_model_dir, tmp_path):
    """Run A: 3 uninterrupted steps over 8 prompts (B=4: step 3 opens epoch 1), a checkpoint each step.
    Run B: fresh roles that resume from A's step-2 checkpoint (A's metrics rows copied too, as if the
    driver died after logging step 3 but before its checkpoint). B's step 3 equals A's: the same sampled
    tokens, the same rewards, loss, KL, LR and grad norm, and the same weights after the update."""
    from tests.test_fault_tolerance import _capture_rollouts
    from tests.test_rl import LENGTH_RULE, _driver, _rl_cfg

    _, _, run_dir = trained_run
    sft = str(run_dir / "sft" / "model")
    common = ("rl.steps=3", "rl.checkpoint_every=1", "rl.keep_checkpoints=2", "rl.learner.lr=1e-2")
    cfg_a = _rl_cfg(tmp_path / "a", tiny_model_dir, sft, *common, *LENGTH_RULE)
    cfg_b = _rl_cfg(tmp_path / "b", tiny_model_dir, sft, *common, *LENGTH_RULE)
    with _driver(cfg_a, sft) as (roles, driver):
        driver.prompts = driver.prompts[:8]
        rollouts_a = _capture_rollouts(driver)
        rows_a = driver.train(3)
        weights_a = roles.learners.weights_checksums()
        driver.writer.close()
    ckpts = sorted(p.name for p in (cfg_a.run.dir / "rl" / "checkpoints").iterdir())
    assert ckpts == ["step_000002", "step_000003"], "the last 2 are kept, no temporary folder is left"

    rl_b = cfg_b.run.dir / "rl"
    shutil.copytree(
        cfg_a.run.dir / "rl" / "checkpoints" / "step_000002", rl_b / "checkpoints" / "step_000002"
    )
    shutil.copy(cfg_a.run.dir / "rl" / "metrics.jsonl", rl_b / "metrics.jsonl")
    with _driver(cfg_b, sft) as (roles, driver):
        driver.prompts = driver.prompts[:8]
        rollouts_b = _capture_rollouts(driver)
        assert driver.resume() and driver.step == 2
        assert (driver.cursor.epoch, driver.cursor.position) == (1, 0), "step 2 ended epoch 0"
        rows_b = driver.train(3)
        weights_b = roles.learners.weights_checksums()
        driver.writer.close()

    assert len(rows_b) == 1, "the resumed run ran exactly step 3 (not zero steps at the epoch boundary)"
    (_, a), (_, b) = rollouts_a[2], rollouts_b[0]
    assert [s.uid for s in a] == [s.uid for s in b] and len(b) == 16
    same_tokens = [s.response_ids for s in a] == [s.response_ids for s in b]
    lp_diff = math.nan  # logprobs of the same tokens only
    if same_tokens:
        pairs = zip(a, b, strict=True)
        lp_diff = max(abs(x - y) for sa, sb in pairs for x, y in zip(sa.logprobs, sb.logprobs, strict=True))
    diff, key = _max_diff(rows_a[2], rows_b[0])
    print(
        f"step 3, uninterrupted vs resumed: sampled token ids equal: {same_tokens} "
        f"({sum(len(s.response_ids) for s in b)} tokens); max |logprob diff| {lp_diff:.3g}; "
        f"max metric diff {diff:.3g} ({key}); weight checksums {weights_a} vs {weights_b}"
    )
    assert same_tokens
    assert lp_diff <= 1e-6
    assert diff <= 1e-6, f"{key}: {rows_a[2][key]} vs {rows_b[0][key]}"
    assert weights_a == weights_b, "the same update (optimizer state and LR schedule restored)"
    rows = read_metrics(rl_b / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3], "the dead run's step-3 row was replaced, not repeated"
