"""The real-model recipes set what a 7B instruct model needs, and the single-machine one fits one
8-GPU machine; the demo defaults stay the demo's (cluster-7b.yaml's fit: tests/test_cluster_recipe.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from empathy_ray.config import load_config
from empathy_ray.pipeline import check_stages, planned_stages

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def model_dir(tmp_path) -> Path:
    model = tmp_path / "Qwen2.5-7B-Instruct"
    model.mkdir()
    return model


@pytest.mark.parametrize("recipe", ["cluster-7b.yaml", "single-node-7b.yaml"])
def test_real_model_recipes_set_precision_memory_and_lengths(model_dir, recipe):
    cfg = load_config(REPO / "configs" / recipe, [f"model.path={model_dir}"])
    assert all(t.bf16 and t.gradient_checkpointing for t in (cfg.sft, cfg.rm, cfg.rl.learner))
    assert (
        cfg.rl.learner.max_tokens_per_micro_batch
        >= cfg.data.max_prompt_tokens + cfg.rl.rollout.max_new_tokens
    )
    assert cfg.rl.reward.bf16 and cfg.rl.reward.max_tokens_per_batch > 0
    if not cfg.rl.reference_in_learner:  # else the learner's precision and token budget score it
        assert cfg.rl.reference.bf16 and cfg.rl.reference.max_tokens_per_batch > 0
    assert (cfg.data.max_prompt_tokens, cfg.sft.input_noise) == (1024, 0.0) and cfg.sft.epochs <= 2
    for section in (cfg.sft, cfg.rm, cfg.rl.learner):  # LoRA learning rates are ~10x full fine-tuning's
        assert section.lr >= 1e-5 if section.lora.enabled else section.lr <= 1e-5


def test_single_node_recipe_fits_one_machine_with_8_gpus(model_dir):
    cfg = load_config(REPO / "configs" / "single-node-7b.yaml", [f"model.path={model_dir}"])
    assert planned_stages(cfg) == ["sft", "rm", "rl", "eval", "serve"]
    check_stages(cfg, planned_stages(cfg), [{"CPU": 32.0, "GPU": 8.0}])
    assert cfg.sft.lora.enabled and cfg.rl.learner.lora.enabled and cfg.rl.learner.zero_stage == 2
    # the LoRA learner gives the reference log-probs: the GPU a reference actor would hold rolls out
    assert cfg.rl.reference_in_learner and cfg.rl.rollout.num_workers == 3


def test_demo_defaults_stay_demo_sized():
    cfg = load_config(None, [])
    assert (cfg.data.max_prompt_tokens, cfg.sft.epochs, cfg.sft.input_noise) == (128, 100, 0.15)
    assert not (
        cfg.sft.bf16 or cfg.rl.learner.gradient_checkpointing or cfg.rl.learner.max_tokens_per_micro_batch
    )
