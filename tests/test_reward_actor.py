"""RewardScorer terms on hand-checkable completions, the Ray actor, and the driver's retry helper."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from pathlib import Path

import pytest
import ray

from empathy_ray.actors.group import ActorGroup
from empathy_ray.actors.reward import RewardScorer, RewardTimeoutError, submit_score
from empathy_ray.config import RewardConfig
from empathy_ray.domain import coe
from empathy_ray.modeling.reward_model import load_reward_model, rm_input_ids, score

LAYERS = {"L1": "来访者很焦虑", "L2": "担心考试失败", "L3": "想被理解", "L4": "先共情再给建议"}
VALID = coe.render(LAYERS, "好" * 200)  # valid CoE, answer of exactly 200 characters
INVALID = "<answer>" + "嗯" * 100 + "</answer>"  # no <empathy_think>: format 0, best-effort answer 100 chars
POST = "考试焦虑\n下周就要期末考试了，我每天晚上都睡不着，担心自己考不好让父母失望。"
CRISIS_POST = "撑不下去了\n我已经攒了很多安眠药，准备今晚全部吃掉，不想再拖累任何人。"
PLAIN_ANSWER = "谢谢你愿意说出来，我能感受到你现在非常难过，也很疲惫。"
SAFE_ANSWER = "谢谢你愿意说出来。请现在就拨打心理援助热线 12356，或者去最近的医院急诊，让专业的人陪你。"
MAX_PROMPT, MAX_RESPONSE = 128, 24


def test_rule_terms_on_hand_checked_completions():
    cfg = RewardConfig(
        rm_weight=1.0, format_weight=0.5, length_weight=2.0, length_target=200, safety_weight=3.0
    )
    terms = RewardScorer(cfg, None, MAX_PROMPT, MAX_RESPONSE).score([POST, POST], [VALID, INVALID])

    assert set(terms) == {"format", "length", "safety", "total"}  # no RM directory: no rm term
    assert terms["format"] == [1.0, 0.0]
    assert terms["length"] == [0.0, -0.5]  # -|100 - 200| / 200 on the best-effort answer
    assert terms["safety"] == [0.0, 0.0]
    assert terms["total"] == [0.5 * 1.0, 2.0 * -0.5]


def test_zero_weight_rule_terms_skipped_but_format_reported():
    cfg = RewardConfig(format_weight=0.0, length_weight=0.0, safety_weight=0.0)
    terms = RewardScorer(cfg, None, MAX_PROMPT, MAX_RESPONSE).score([POST], [VALID])
    assert terms == {"format": [1.0], "total": [0.0]}


def test_crisis_post_without_safety_language_is_penalised():
    cfg = RewardConfig(format_weight=1.0, safety_weight=2.0)
    completions = [
        coe.render(LAYERS, PLAIN_ANSWER),
        coe.render(LAYERS, SAFE_ANSWER),
        coe.render(LAYERS, PLAIN_ANSWER),
    ]
    terms = RewardScorer(cfg, None, MAX_PROMPT, MAX_RESPONSE).score(
        [CRISIS_POST, CRISIS_POST, POST], completions
    )
    assert terms["safety"] == [-1.0, 0.0, 0.0]
    assert terms["total"] == [1.0 - 2.0, 1.0, 1.0]


def test_rm_term_matches_direct_score_and_enters_total(rm_dir):
    # 3 completions: a full and a partial batch; no safety term, so the total is RM and format only
    cfg = RewardConfig(rm_weight=0.7, format_weight=1.0, safety_weight=0.0, batch_size=2)
    posts = [POST, CRISIS_POST, POST]
    completions = [VALID, INVALID, coe.render(LAYERS, PLAIN_ANSWER)]
    terms = RewardScorer(cfg, str(rm_dir), MAX_PROMPT, MAX_RESPONSE).score(posts, completions)

    assert set(terms) == {"rm", "format", "total"}
    tok, model = load_reward_model(str(rm_dir))
    answers = ["好" * 200, "嗯" * 100, PLAIN_ANSWER]  # the RM reads the answer only, never the CoE block
    for i, (post, answer) in enumerate(zip(posts, answers, strict=True)):
        seq = rm_input_ids(tok, post, answer, MAX_PROMPT, MAX_RESPONSE)
        assert terms["rm"][i] == pytest.approx(score(model.eval(), [seq], tok.pad_token_id).item(), abs=1e-5)
    assert len(set(terms["rm"])) == 3  # the head really distinguishes the inputs
    assert terms["format"] == [1.0, 0.0, 1.0]
    assert terms["total"] == [0.7 * r + f for r, f in zip(terms["rm"], terms["format"], strict=True)]


def test_rm_scores_by_token_budget_equal_fixed_batches(rm_dir):
    """rl.reward.max_tokens_per_batch: rows of different lengths in other groupings, the same scores,
    each in its completion's place."""
    posts = [POST, CRISIS_POST, POST, CRISIS_POST]
    completions = [VALID, INVALID, coe.render(LAYERS, PLAIN_ANSWER), coe.render(LAYERS, SAFE_ANSWER)]
    fixed = RewardScorer(RewardConfig(batch_size=4), str(rm_dir), MAX_PROMPT, MAX_RESPONSE)
    # rows of 133, 136, 120 and 136 tokens: [120, 133] and [136, 136] under 300 padded tokens
    budget = RewardConfig(batch_size=4, max_tokens_per_batch=300)
    by_tokens = RewardScorer(budget, str(rm_dir), MAX_PROMPT, MAX_RESPONSE)
    expected = fixed.score(posts, completions)["rm"]
    assert by_tokens.score(posts, completions)["rm"] == pytest.approx(expected, abs=1e-5)
    assert len(set(expected)) == 4


def test_rm_not_loaded_when_its_weight_is_zero(rm_dir):
    scorer = RewardScorer(RewardConfig(rm_weight=0.0), str(rm_dir), MAX_PROMPT, MAX_RESPONSE)
    assert scorer.model is None
    assert set(scorer.score([POST], [VALID])) == {"format", "safety", "total"}  # safety: on by default


def test_non_finite_rm_score_is_returned_with_a_warning(rm_dir, caplog):
    """The driver decides (skip the step, count it, stop after rl.max_nonfinite_steps in a row)."""
    scorer = RewardScorer(RewardConfig(), str(rm_dir), MAX_PROMPT, MAX_RESPONSE)
    scorer.model.score.weight.data.fill_(float("nan"))
    with caplog.at_level(logging.WARNING):
        terms = scorer.score([POST, POST], [VALID, INVALID])
    assert all(math.isnan(v) for v in terms["rm"] + terms["total"])
    assert terms["format"] == [1.0, 0.0]
    assert "scored 2 of 2 completions as non-finite" in caplog.text


def test_mismatched_inputs_rejected():
    with pytest.raises(ValueError, match="2 posts but 1 completions"):
        RewardScorer(RewardConfig(), None, MAX_PROMPT, MAX_RESPONSE).score([POST, POST], [VALID])


def test_reward_actor_matches_local_scorer(ray_cluster, rm_dir):
    cfg = RewardConfig(rm_weight=0.7, length_weight=1.0, batch_size=2)
    posts, completions = [POST, CRISIS_POST, POST], [VALID, INVALID, VALID]
    local = RewardScorer(cfg, str(rm_dir), MAX_PROMPT, MAX_RESPONSE).score(posts, completions)
    group = ActorGroup.start("reward", RewardScorer, cfg, (cfg, str(rm_dir), MAX_PROMPT, MAX_RESPONSE))
    try:
        group.wait_ready(timeout_s=300)
        remote = submit_score(group.actors[0], posts, completions, timeout_s=120, retries=0).result()
    finally:
        group.shutdown()
    assert set(remote) == {"rm", "format", "length", "safety", "total"}
    for name, values in local.items():
        assert remote[name] == pytest.approx(values, abs=1e-6)


@ray.remote(num_cpus=0)
class _StallingScorer:
    """Async so that a cancelled (timed-out) call really stops; its first `stalls` calls never answer."""

    def __init__(self, stalls: int) -> None:
        self.stalls = stalls
        self.calls = 0

    async def score(self, posts: list[str], completions: list[str]) -> dict[str, list[float]]:
        self.calls += 1
        if self.calls <= self.stalls:
            await asyncio.sleep(600)
        return {"total": [1.0] * len(completions)}

    async def num_calls(self) -> int:
        return self.calls


def _retry_warnings(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "empathy_ray.actors.reward" and r.levelno == logging.WARNING
    ]


def test_score_with_retry_raises_after_all_attempts(ray_cluster, caplog):
    actor = _StallingScorer.remote(stalls=100)
    assert ray.get(actor.num_calls.remote()) == 0  # started: each attempt below reaches the actor
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(RewardTimeoutError, match=r"after 3 attempts of at most 1 s"),
    ):
        submit_score(actor, [POST], [VALID], timeout_s=1.0, retries=2).result()
    assert ray.get(actor.num_calls.remote()) == 3
    assert len(_retry_warnings(caplog)) == 2  # one per retry
    ray.kill(actor)


def test_submitted_score_recovers_after_a_timeout(ray_cluster, caplog):
    actor = _StallingScorer.remote(stalls=1)
    assert ray.get(actor.num_calls.remote()) == 0
    counters = Counter()
    pending = submit_score(actor, [POST, POST], [VALID, INVALID], timeout_s=2.0, retries=2, counters=counters)
    deadline = time.monotonic() + 30  # the first attempt reaches the actor before anyone waits on it
    while ray.get(actor.num_calls.remote()) == 0:
        assert time.monotonic() < deadline, "submit_score did not send the first attempt"
        time.sleep(0.05)
    with caplog.at_level(logging.WARNING):
        out = pending.result()
    assert out == {"total": [1.0, 1.0]} and pending.result() is out and counters["reward_retries"] == 1
    assert ray.get(actor.num_calls.remote()) == 2
    assert len(_retry_warnings(caplog)) == 1
    ray.kill(actor)


@ray.remote(num_cpus=0, max_restarts=1, max_task_retries=0)
class _CrashOnceScorer:
    """Its process dies on the first call ever (a marker file survives the restart)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def score(self, posts: list[str], completions: list[str]) -> dict[str, list[float]]:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return {"total": [2.0] * len(completions)}


def test_score_with_retry_survives_an_actor_death(ray_cluster, tmp_path, caplog):
    actor = _CrashOnceScorer.remote(str(tmp_path / "crashed"))
    with caplog.at_level(logging.WARNING):
        out = submit_score(actor, [POST], [VALID], timeout_s=120, retries=1).result()
    assert out == {"total": [2.0]}
    assert "actor died" in _retry_warnings(caplog)[0].getMessage()
    ray.kill(actor)
