"""Faults inside a GRPO step, with the real roles: a reward actor killed mid-call, a reward call that
keeps timing out, and a reward model that scores NaN. (A killed rollout worker and a killed reference
actor: tests/test_rl.py.)"""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest
import ray
import torch

from empathy_ray.actors.group import Pending
from empathy_ray.actors.reward import RewardScorer, RewardTimeoutError
from empathy_ray.actors.vllm_ext import checksum, checksums_match
from empathy_ray.config import ConfigError, load_config
from empathy_ray.rl.driver import checked_advantages
from empathy_ray.runtime.tracking import read_metrics
from tests.helpers import capture_rollouts, short_rl_config, started_driver

# One learner rank and one rollout worker, on transformers `generate`: the faults here are in the reward
# role (a vLLM worker costs ~6 s more to start here; its faults are in test_rl.py and test_async_grpo.py).
SMALL = (
    "rl.learner.num_workers=1",
    "rl.rollout.num_workers=1",
    "rl.rollout.engine=transformers",
    "rl.eval_prompts=0",
)


def _models(trained_run) -> tuple[str, str]:
    _, _, run_dir = trained_run
    return str(run_dir / "sft" / "model"), str(run_dir / "rm" / "model")


def _reward_actor(roles):
    """The reward actor, once a real, empty scoring call shows it up (model loaded)."""
    actor = roles.reward.actors[0]
    assert ray.get(actor.score.remote([], []), timeout=300)["total"] == []
    return actor


@pytest.mark.slow
def test_a_reward_actor_killed_mid_step_is_restarted_and_its_call_retried(
    trained_run, tiny_model_dir, tmp_path
):
    """ray.kill (restart allowed) while the step's reward call waits on the actor: Ray restarts it, the
    driver retries the call, and the step ends with B*G unique samples scored like a local scorer."""
    sft, rm = _models(trained_run)
    cfg = short_rl_config(
        tmp_path, tiny_model_dir, sft, *SMALL, "rl.reward.timeout_s=300", "rl.reward.retries=1"
    )
    with started_driver(cfg, sft, rm) as (roles, driver):
        reward = _reward_actor(roles)
        seen = capture_rollouts(driver)
        score = roles.score

        def score_during_a_kill(posts, texts):
            # A long call queued ahead of the step's keeps the actor busy for seconds, so the kill lands
            # while the step's own call is waiting on the actor, whatever the machine's load.
            reward.score.remote(posts * 1000, texts * 1000)
            killer = threading.Timer(1.0, lambda: ray.kill(reward, no_restart=False))
            killer.start()
            pending = score(posts, texts)

            def wait():
                try:
                    return pending.result()
                finally:
                    killer.join()

            return Pending(wait)

        roles.score = score_during_a_kill
        metrics = driver.run_step()

    ((batch, samples),) = seen
    uids = [s.uid for s in samples]
    posts = [batch[s.prompt_index].text for s in samples]
    local = RewardScorer(cfg.rl.reward, rm, cfg.data.max_prompt_tokens, cfg.data.max_response_tokens)
    want = local.score(posts, [s.text for s in samples])["total"]
    print(
        f"retries {metrics['counters/reward_retries']}, reward mean after the retry "
        f"{metrics['reward/total_mean']:.6f}, local scorer {sum(want) / len(want):.6f}"
    )
    assert metrics["counters/reward_retries"] == 1, "the step's reward call was retried once"
    assert len(samples) == 16 and len(set(uids)) == 16 and metrics["rollout/samples"] == 16
    assert metrics["reward/total_mean"] == pytest.approx(sum(want) / len(want), abs=1e-6)
    assert metrics["train/skipped"] == 0 and math.isfinite(metrics["train/policy_loss"])
    assert driver.step == 1 and roles.weights.version == 1, "the update ran and was synced"


@pytest.mark.slow
def test_a_reward_call_that_keeps_timing_out_stops_the_run(trained_run, tiny_model_dir, tmp_path, caplog):
    """A healthy actor that is simply slower than rl.reward.timeout_s: 1 + retries attempts, then a loud
    error; no step is recorded and the weights are untouched (never a silent zero reward)."""
    sft, rm = _models(trained_run)
    cfg = short_rl_config(
        tmp_path, tiny_model_dir, sft, *SMALL, "rl.reward.timeout_s=0.001", "rl.reward.retries=2"
    )
    with started_driver(cfg, sft, rm) as (roles, driver):
        reward = _reward_actor(roles)
        posts = [p.text for p in driver.prompts[:16]]
        t0 = time.perf_counter()
        ray.get(reward.score.remote(posts, posts))
        print(f"one real reward call for 16 texts: {time.perf_counter() - t0:.3f} s; timeout 0.001 s")
        before = roles.learners.weights_checksums()
        with (
            caplog.at_level(logging.WARNING, logger="empathy_ray.actors.reward"),
            pytest.raises(RewardTimeoutError, match=r"16 completions after 3 attempts of at most 0.001 s"),
        ):
            driver.run_step()
        assert roles.counters["reward_retries"] == 2
        assert sum("retrying" in r.getMessage() for r in caplog.records) == 2
        assert driver.step == 0 and roles.weights.version == 0
        assert roles.learners.weights_checksums() == before
    metrics_file = cfg.run.dir / "rl" / "metrics.jsonl"
    assert not metrics_file.exists() or read_metrics(metrics_file) == []


@pytest.fixture
def nan_rm_dir(trained_run, tmp_path):
    """The session's reward model with its score head set to NaN: every reward it gives is NaN."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _, rm = _models(trained_run)
    model = AutoModelForSequenceClassification.from_pretrained(rm)
    with torch.no_grad():
        model.score.weight.fill_(float("nan"))
    out = tmp_path / "nan-rm"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(rm).save_pretrained(out)
    return str(out)


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1], ids=["sync", "async-k1"])
def test_nan_rewards_skip_the_update_then_stop_the_run(
    trained_run, tiny_model_dir, tmp_path, nan_rm_dir, caplog, k
):
    """A NaN reward skips the step (weights and rollout weights unchanged, counted in metrics.jsonl);
    more than rl.max_nonfinite_steps such steps in a row stop the run with an error naming the key.
    Asynchronous (k=1): the unchanged weights are still published, as version 1, so the batch sent next
    keeps its place in the schedule; the rollout workers then hold exactly the starting weights."""
    sft, _ = _models(trained_run)
    extra = (*SMALL, "rl.max_nonfinite_steps=1", f"rl.max_staleness={k}")
    cfg = short_rl_config(tmp_path, tiny_model_dir, sft, *extra)
    with started_driver(cfg, sft, nan_rm_dir) as (roles, driver):
        before = roles.learners.weights_checksums()
        with caplog.at_level(logging.WARNING, logger="empathy_ray.rl.driver"):
            first = driver.run_step()
        assert "step 1: non-finite rewards" in caplog.text
        assert roles.learners.weights_checksums() == before, "a skipped step leaves the weights alone"
        if k:
            driver.ahead.drain()  # the publish of v1 is done and its load has reached the workers
        assert roles.weights.version == k, "synchronous: nothing synced; k=1: the same weights as v1"
        if k:
            want = checksum(ray.get(roles.learners.gather_weights().result()).items())
            assert ray.get(roles.rollout.call_all("get_weight_version")) == [1]
            assert all(checksums_match(g, want) for g in ray.get(roles.rollout.call_all("weights_checksum")))
        with pytest.raises(FloatingPointError, match=r"2 steps in a row .*\(rl\.max_nonfinite_steps=1\)"):
            driver.run_step()
    rows = read_metrics(cfg.run.dir / "rl" / "metrics.jsonl")
    print({key: v for key, v in first.items() if key.startswith(("counters/", "train/", "reward/rm"))})
    assert [r["step"] for r in rows] == [1, 2], "both skipped steps are on record"
    assert [r["train/skipped"] for r in rows] == [1.0, 1.0]
    assert [r["counters/skipped_nonfinite"] for r in rows] == [1, 2]
    assert all(math.isnan(r["reward/rm_mean"]) for r in rows)
    assert "train/policy_loss" not in rows[0], "no learner step ran"


def test_checked_advantages_names_what_is_not_finite():
    f64 = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    adv, bad = checked_advantages(f64([1.0, 0.0, 0.0, 0.0]), "grpo", 4)
    # mean 0.25, sample std 0.5: (r - mean) / std
    assert bad is None and adv.tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5], abs=1e-5)
    _, bad = checked_advantages(f64([1e39, 0.0, 0.0, 0.0]), "grpo", 4)  # finite in float64, inf in float32
    assert bad == "rewards [1e+39, 0.0, 0.0, 0.0]"
    _, bad = checked_advantages(f64([3e38, 3e38, 0.0, 0.0]), "grpo", 4)  # the group sum overflows
    assert bad == "advantages [nan, nan, nan, nan]"


def test_the_reference_call_has_its_own_timeout_and_retries():
    """rl.reference.timeout_s and rl.reference.retries bound the reference call (Roles.ref_logprobs) as
    rl.reward's bound the reward call; bad values fail when the config loads, naming the key."""
    cfg = load_config(None, ["rl.reference.timeout_s=30", "rl.reference.retries=0"])
    assert (cfg.rl.reference.timeout_s, cfg.rl.reference.retries) == (30.0, 0)
    assert (cfg.rl.reward.timeout_s, cfg.rl.reward.retries) == (300.0, 2), "the reward's keys are its own"
    with pytest.raises(ConfigError, match="rl.reference.timeout_s"):
        load_config(None, ["rl.reference.timeout_s=0"])
    with pytest.raises(ConfigError, match="rl.reference.retries"):
        load_config(None, ["rl.reference.retries=-1"])
