"""Asynchronous GRPO (rl.max_staleness = k >= 1) end to end on the session's Ray cluster: the weight version
of every trained sample, learning with k=1 through a rollout-worker kill, and an exact resume after SIGKILL
with k=2 over the collective (gloo) weight sync. k=0 is the synchronous loop (its golden test)."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from empathy_ray.runtime import checkpoint
from empathy_ray.runtime.tracking import read_metrics
from tests.helpers import LENGTH_RULE, kill_after_step_3, short_rl_config, started_driver

pytestmark = pytest.mark.slow


def _recording(driver) -> list[tuple[int, list]]:
    """(learner version, samples) of every step the driver trains from now on."""
    trained: list[tuple[int, list]] = []
    run_step = driver.run_step

    def recording():
        version = driver.step
        metrics = run_step()
        trained.append((version, [x.sample for x in driver.trained]))
        return metrics

    driver.run_step = recording
    return trained


def _check_batches(trained: list[tuple[int, list]], k: int, start: int = 0) -> int:
    """Every step trained B*G = 16 samples of its own prompts, none lost or repeated, none more than k
    versions behind the learner; returns how many were off the schedule (version max(0, t - k))."""
    off = 0
    for t, (version, samples) in enumerate(trained, start=start):
        assert version == t
        assert len(samples) == 16 and len({s.uid for s in samples}) == 16, f"step {t + 1}"
        assert all(s.uid.startswith(f"{t}-") for s in samples), f"step {t + 1}: another step's samples"
        assert sorted({s.prompt_index for s in samples}) == [0, 1, 2, 3]
        ages = [t - s.weight_version for s in samples]
        assert all(0 <= a <= k for a in ages), f"step {t + 1}: staleness {ages}"
        off += sum(s.weight_version != max(0, t - k) for s in samples)
    return off


def test_k1_learns_the_rule_reward_through_a_rollout_worker_kill(trained_run, tiny_model_dir, tmp_path):
    """20 steps at k=1 (the synchronous learning test's settings) raise the length-rule reward. After step 5
    rollout worker 0 is killed with a batch and a weight load queued on it: Ray restarts it, it gets the
    newest weights, its chunk is generated again there, and every step still trains on 16 unique samples
    of its own prompts, each at most one version behind the learner."""
    import ray

    _, _, run_dir = trained_run
    sft = str(run_dir / "sft" / "model")
    extra = ("rl.steps=20", "rl.learner.lr=3e-2", "rl.max_staleness=1", *LENGTH_RULE)
    cfg = short_rl_config(tmp_path, tiny_model_dir, sft, *extra)
    with started_driver(cfg, sft) as (roles, driver):
        trained = _recording(driver)
        while driver.step < cfg.rl.steps:
            driver.run_step()
            if driver.step == 5:  # the batch of step 7 was just sent, behind the weights of version 5
                ray.kill(roles.rollout.actors[0], no_restart=False)
        driver.ahead.drain()
        driver.writer.close()
        redispatched = roles.counters["rollout_redispatched"]
    rows = read_metrics(cfg.run.dir / "rl" / "metrics.jsonl")
    rewards = [r["reward/total_mean"] for r in rows]
    # The least-squares trend over all 20 steps, not the first 4 against the last 4: the worker kill
    # shakes steps 5-10, and on one CPU (same seed, same code) the 4-step means rose only 0.27 while the
    # trend rose 0.43 (t = 2.9).
    trend = statistics.linear_regression(range(len(rewards)), rewards).slope * (len(rewards) - 1)
    off = _check_batches(trained, k=1)
    waits = [(round(r["time/learner_wait_s"], 2), round(r["time/rollout_wait_s"], 2)) for r in rows]
    print(
        f"k=1: reward trend over {len(rewards)} steps {trend:+.3f}; per step {rewards}; "
        f"{redispatched} chunks re-dispatched, {off} samples off the schedule; (learner, rollout) waits {waits}"
    )
    assert redispatched >= 1, "the kill found no call on the worker"
    assert len(rows) == 20 and trend > 0.3, "asynchronous GRPO (k=1) did not raise the rule reward"
    for r in rows:
        assert r["rollout/staleness_max"] <= 1 and r["rollout/staleness_0"] + r["rollout/staleness_1"] == 16
        assert (
            r["time/learner_wait_s"] >= 0 and r["time/rollout_wait_s"] >= 0 and math.isfinite(r["train/kl"])
        )
    assert [r["rollout/staleness_1"] for r in rows[1:5]] == [16] * 4, "steps 2-5 trained one version behind"


COMPARED = ("reward/", "train/", "rollout/", "counters/")


def _max_metric_diff(a: dict, b: dict) -> tuple[float, str]:
    keys = {k for k in a if k.startswith(COMPARED) and k != "rollout/tokens_per_s"}
    assert keys and keys == {k for k in b if k.startswith(COMPARED) and k != "rollout/tokens_per_s"}
    return max((abs(float(a[k]) - float(b[k])), k) for k in keys)


def test_k2_killed_driver_resumes_with_the_samples_in_flight(trained_run, tiny_model_dir, tmp_path):
    """k=2 over the gloo broadcast, a checkpoint every 2 steps, the driver killed with SIGKILL after step 3.
    The checkpoint of step 2 holds the batches of steps 3-5 (drawn with version 0); a fresh driver with
    fresh roles resumes from it and trains step 3 on exactly the killed run's samples: the same tokens,
    log-probs, versions, metrics and weights. Steps 1-3 trained 0, 1 and 2 versions behind."""
    import ray

    _, _, run_dir = trained_run
    sft = str(run_dir / "sft" / "model")
    overrides = (
        "rl.steps=10",
        "rl.checkpoint_every=2",
        "rl.learner.lr=1e-2",
        "rl.max_staleness=2",
        "rl.sync=gloo",
    )
    overrides += tuple(LENGTH_RULE)
    cfg = short_rl_config(tmp_path, tiny_model_dir, sft, *overrides)
    rl_dir, steps_file = cfg.run.dir / "rl", cfg.run.dir / "steps.jsonl"
    address = ray.get_runtime_context().gcs_address
    kill_after_step_3([address, sft, str(tmp_path), str(tiny_model_dir), *overrides], steps_file)
    killed_rows = [json.loads(line) for line in steps_file.read_text().splitlines()]
    assert [row["versions"] for row in killed_rows[:3]] == [[0] * 16] * 3, "steps 1-3: batches of version 0"
    killed, killed_metrics = killed_rows[2], read_metrics(rl_dir / "metrics.jsonl")[2]
    latest = checkpoint.latest(rl_dir / "checkpoints")
    assert latest == rl_dir / "checkpoints" / "step_000002"
    state = json.loads((latest / checkpoint.DRIVER_STATE).read_text())
    assert [b["step"] for b in state["inflight"]] == [2, 3, 4] and state["max_staleness"] == 2
    assert all(len(b["samples"]) == 16 for b in state["inflight"])

    with started_driver(cfg, sft) as (roles, driver):  # the dead driver's actors are gone: all new ones
        driver.prompts = driver.prompts[:8]
        assert driver.resume() and driver.step == 2
        trained = _recording(driver)
        rows = driver.train(3)
        weights = roles.learners.weights_checksums()
        driver.writer.close()

    assert len(rows) == 1 and _check_batches(trained, k=2, start=2) == 0
    samples = trained[0][1]
    assert [s.uid for s in samples] == killed["uids"]
    assert [s.response_ids for s in samples] == killed["response_ids"]
    assert [s.weight_version for s in samples] == killed["versions"]
    lp_diff = max(
        abs(x - y)
        for s, lps in zip(samples, killed["logprobs"], strict=True)
        for x, y in zip(s.logprobs, lps, strict=True)
    )
    diff, key = _max_metric_diff(killed_metrics, rows[0])
    print(f"k=2 step 3, killed vs resumed: max |logprob diff| {lp_diff:.3g}, max metric diff {diff:.3g} ({key}); "
          f"weights {killed['weights']} vs {weights}")  # fmt: skip
    assert lp_diff == 0.0 and diff <= 1e-6, key
    assert rows[0]["rollout/staleness_2"] == 16
    assert weights == killed["weights"], "the same update (optimizer state and LR schedule restored)"
    assert [r["step"] for r in read_metrics(rl_dir / "metrics.jsonl")] == [1, 2, 3]
