"""Stage fingerprints hash only the config keys each stage declares (no Ray, no disk)."""

from __future__ import annotations

import pytest

from empathy_ray.config import Config, load_config
from empathy_ray.pipeline import planned_stages
from empathy_ray.pipeline.stage import config_values, fingerprints, matches
from empathy_ray.pipeline.stages import RUN_WIDE_KEYS, STAGES

TRAINED = ("sft", "rm", "rl", "eval")


def _prints(*overrides: str) -> dict[str, str]:
    return fingerprints(STAGES, load_config(None, list(overrides)))


@pytest.mark.parametrize(
    "override",
    [
        "sft.log_every=7",
        "rm.log_every=1",
        "sft.num_cpus=3",
        "sft.resources={sft_node: 1}",
        "sft.eval_prompts=4",  # measures the SFT model after training, does not change it
        "rl.reward.timeout_s=5",
        "rl.reward.retries=0",
        "rl.rollout.num_cpus=2",
        "rl.learner.resources={learner_node: 1}",
        "rl.checkpoint_every=1",
        "rl.keep_checkpoints=7",
        "rl.sync=gloo",
        "rl.steps=50",  # recorded apart: more steps continue the same run
        "eval.judge_timeout_s=1",
        "ray.num_cpus=4",
        "run.name=elsewhere",
        "pipeline.eval=true",
    ],
)
def test_placement_logging_and_timeouts_change_no_fingerprint(override):
    assert _prints(override) == _prints()


def test_sft_lr_changes_sft_and_every_stage_after_it():
    before, after = _prints(), _prints("sft.lr=1e-4")
    assert [s for s in TRAINED if before[s] == after[s]] == []
    assert before["serve"] == after["serve"], "serve reads no stage's fingerprint"


@pytest.mark.parametrize(
    ("override", "changed"),
    [
        ("sft.num_workers=1", {"sft", "rm", "rl", "eval"}),  # global batch and data shards
        ("rm.margin=0.5", {"rm", "rl", "eval"}),
        ("data.pairs=pairs.jsonl", {"rm", "rl", "eval"}),  # SFT never reads the pairs
        ("rl.learner.num_workers=1", {"rl", "eval"}),  # gradient reduction and micro-batch split
        ("rl.rollout.num_workers=1", {"rl", "eval"}),  # batch composition in each engine
        ("rl.learner.num_gpus=1", {"rl", "eval"}),  # CUDA instead of CPU arithmetic
        ("rl.eval_prompts=4", {"rl", "eval"}),  # before/after must use the same prompts
        ("eval.max_posts=4", {"eval"}),
        ("serve.num_replicas=2", {"serve"}),
    ],
)
def test_what_counts_changes_exactly_the_stages_downstream(override, changed):
    before, after = _prints(), _prints(override)
    assert {s for s in STAGES if before[s] != after[s]} == changed


def test_a_given_model_cuts_the_dependency_on_the_stage_that_would_train_it(tmp_path):
    given = (f"rl.policy_model={tmp_path}", f"rm.base_model={tmp_path}")
    before, after = _prints(*given), _prints(*given, "sft.lr=1e-4")
    assert {s for s in STAGES if before[s] != after[s]} == {"sft", "eval"}, "eval still scores the SFT model"


def test_every_config_key_is_decided_and_every_declared_key_exists():
    """A new config key must be placed in some stage's keys (or ignore list) or be run-wide."""
    keys = config_values(Config())
    decided = RUN_WIDE_KEYS + tuple(k for s in STAGES.values() for k in s.keys)
    assert [k for k in keys if not matches(k, decided)] == []
    declared = RUN_WIDE_KEYS + tuple(k for s in STAGES.values() for k in (*s.keys, *s.ignore, *s.grows_with))
    assert [p for p in declared if not any(matches(k, (p,)) for k in keys)] == []


def test_planned_stages_follow_the_pipeline_switches_and_given_models(tmp_path):
    assert planned_stages(load_config(None, [])) == ["sft", "rm", "rl"]
    assert planned_stages(load_config(None, [f"rl.policy_model={tmp_path}", "pipeline.serve=true"])) == [
        "rm",
        "rl",
        "serve",
    ]
    assert planned_stages(load_config(None, ["rl.reward_model=none", "pipeline.eval=true"])) == [
        "sft",
        "rl",
        "eval",
    ]
    assert planned_stages(load_config(None, ["rl.reward.rm_weight=0"])) == ["sft", "rl"]
