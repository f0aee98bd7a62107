"""Precision and memory settings on CPU, without Ray: gradient checkpointing changes no number, a bf16
GRPO step runs on every role in bfloat16 and syncs half the bytes, and the learner scores the
distribution the rollout engine sampled (temperature applied; top-p truncation measured, not applied).
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.actors.reference import ReferencePolicy
from empathy_ray.actors.reward import RewardScorer
from empathy_ray.actors.rollout import RolloutEngine
from empathy_ray.algo import compute_advantages
from empathy_ray.config import LoraConfig, ReferenceConfig, RewardConfig, RolloutConfig
from empathy_ray.modeling.chat import prompt_ids
from empathy_ray.train.engine import apply_lora, enable_gradient_checkpointing

POSTS = [
    "室友总在半夜打游戏\n我跟他提过两次，他嘴上答应，第二天照旧。我快一个月没睡好了，上课总走神。",
    "工作第一年\n领导说我做事太慢，我每天加班到十点还是做不完，开始怀疑自己根本不适合这行。",
]


def _prompts(model_dir) -> list[list[int]]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    return [prompt_ids(tok, p, 256) for p in POSTS]


def _loss_and_grads(model: torch.nn.Module, ids: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model_dir, lora):
    """What sft/rm/rl.learner.gradient_checkpointing switch on: recomputed activations, same numbers.
    Under LoRA the embedding is frozen; non-reentrant checkpointing still reaches the adapters."""
    ids = torch.tensor([_prompts(tiny_model_dir)[0][:48], _prompts(tiny_model_dir)[1][:48]])
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        model = apply_lora(enable_gradient_checkpointing(model, checkpointing), LoraConfig(enabled=lora, r=4))
        assert model.is_gradient_checkpointing == checkpointing
        results.append(_loss_and_grads(model, ids))
    (loss0, g0), (loss1, g1) = results
    assert loss1 == pytest.approx(loss0, rel=1e-6)
    assert set(g0) == set(g1) and len(g0) > 0
    assert all(("lora_" in n) == lora or not lora for n in g0)  # LoRA: only adapters get gradients
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-5, atol=1e-7)


def _rollout(model_dir, temperature: float, top_p: float = 1.0) -> RolloutEngine:
    cfg = RolloutConfig(engine="transformers", max_new_tokens=12, temperature=temperature, top_p=top_p)
    return RolloutEngine(str(model_dir), cfg, seed=3)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_learner_scores_what_the_rollout_sampled(make_rank, tiny_model_dir, temperature):
    """The rollout engine's log-prob of each sampled token (after temperature) is the learner's."""
    samples = _rollout(tiny_model_dir, temperature).generate(_prompts(tiny_model_dir), 2, step=0)
    rank = make_rank(temperature=temperature)
    learner = rank.logprobs([(s.prompt_ids, s.response_ids) for s in samples])
    gaps = [
        abs(a - b)
        for s, row in zip(samples, learner, strict=True)
        for a, b in zip(s.logprobs, row, strict=True)
    ]
    print(f"T={temperature}: rollout vs learner log-probs over {len(gaps)} tokens: max |gap| {max(gaps):.2g}")
    assert len(gaps) >= 8 and max(gaps) < 1e-4


def test_top_p_gap_is_the_log_of_the_nucleus_mass(make_rank, tiny_model_dir):
    """top_p < 1: the sampler renormalises over the nucleus, the learner scores the full tempered
    distribution, so rollout log-prob - learner log-prob = -log(nucleus mass) >= 0 per token. This gap
    is left to the asynchronous issue's truncated importance sampling; here it is measured."""
    samples = _rollout(tiny_model_dir, 0.7, top_p=0.9).generate(_prompts(tiny_model_dir), 2, step=0)
    learner = make_rank(temperature=0.7).logprobs([(s.prompt_ids, s.response_ids) for s in samples])
    gaps = [
        a - b for s, row in zip(samples, learner, strict=True) for a, b in zip(s.logprobs, row, strict=True)
    ]
    mean = sum(gaps) / len(gaps)
    print(f"top_p=0.9, T=0.7: gap over {len(gaps)} tokens: mean {mean:.4f}, max {max(gaps):.4f} nats")
    assert min(gaps) > -1e-4 and mean > 0.01  # the nucleus holds less than all of the mass
    assert max(gaps) < -math.log(0.9) + 1e-4  # the nucleus holds at least top_p of it


def test_bf16_grpo_step_on_every_role(make_rank, tiny_model_dir, rm_dir):
    """One GRPO step by hand with the plain classes, rl.*.bf16 everywhere: reward and reference actors
    and the learner (gradient checkpointing on, KL in the loss) hold bfloat16 weights, the loss is
    finite, and the sync ships bfloat16 tensors, half the bytes of fp32. The CPU rollout engine stays
    fp32 (vLLM's CPU bf16 needs AMX permission) and casts what it receives."""
    rollout = _rollout(tiny_model_dir, 0.7)
    samples = rollout.generate(_prompts(tiny_model_dir), 2, step=0)  # the step: 2 prompts x 2
    reward = RewardScorer(RewardConfig(bf16=True), str(rm_dir), 256, 64)
    reference = ReferencePolicy(str(tiny_model_dir), ReferenceConfig(bf16=True), temperature=0.7)
    rank = make_rank(kl_coef=0.05, temperature=0.7, bf16=True, gradient_checkpointing=True)
    assert {p.dtype for p in reward.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in reference.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in rank.engine.module.parameters()} == {torch.bfloat16}

    rewards = reward.score([POSTS[s.prompt_index] for s in samples], [s.text for s in samples])["total"]
    ref = reference.logprobs([(s.prompt_ids, s.response_ids) for s in samples])
    adv = compute_advantages("grpo", torch.tensor(rewards), 2).tolist()
    items = [
        {"prompt_ids": s.prompt_ids, "response_ids": s.response_ids, "advantage": a, "ref_logprobs": r}
        for s, a, r in zip(samples, adv, ref, strict=True)
    ]
    stats = rank.train_step(items)

    assert all(math.isfinite(stats[k]) for k in ("train/policy_loss", "train/kl", "train/grad_norm"))
    weights = rank.weights_for_sync()
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    fp32_bytes = sum(
        p.numel() * 4 for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict().values()
    )
    loaded = rollout.update_weights(weights, version=1)
    print(f"sync bytes: bf16 {loaded} vs fp32 {fp32_bytes}")
    assert loaded * 2 == fp32_bytes
