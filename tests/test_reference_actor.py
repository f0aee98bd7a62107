"""ReferencePolicy log-probs against a direct full-sequence log_softmax, batching invariance, the Ray actor."""

from __future__ import annotations

import pytest
import ray
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.actors.group import ActorGroup
from empathy_ray.actors.reference import ReferencePolicy
from empathy_ray.config import ConfigError, ReferenceConfig, load_config
from empathy_ray.modeling.chat import prompt_ids
from empathy_ray.runtime.resources import rl_role_demands
from empathy_ray.train.packing import pack_by_tokens
from tests.learner_helpers import max_diff, step_items

POSTS = ["考试焦虑\n下周就要考试了，我睡不着。", "和父母吵架\n他们总是不理解我的选择，我很委屈。", "失眠"]
RESPONSE_LENGTHS = [7, 1, 13, 0, 4]


@pytest.fixture(scope="module")
def items(tiny_model_dir) -> list[tuple[list[int], list[int]]]:
    """Real chat prompts of different lengths with random responses of different lengths."""
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    g = torch.Generator().manual_seed(0)
    out = []
    for i, n in enumerate(RESPONSE_LENGTHS):
        prompt = prompt_ids(tok, POSTS[i % len(POSTS)])
        out.append((prompt, torch.randint(0, len(tok), (n,), generator=g).tolist()))
    return out


@pytest.fixture(scope="module")
def reference(tiny_model_dir) -> ReferencePolicy:
    return ReferencePolicy(str(tiny_model_dir), ReferenceConfig(batch_size=4))


def _direct(model, prompt: list[int], response: list[int], temperature: float = 1.0) -> list[float]:
    """log p(response[k] | everything before it) at the sampling temperature, one unpadded sequence
    at a time."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + response])).logits[0]
    logp = torch.log_softmax(logits.double() / temperature, dim=-1)
    return [logp[len(prompt) - 1 + k, tok].item() for k, tok in enumerate(response)]


def test_reference_is_frozen(reference):
    assert not reference.model.training
    assert not any(p.requires_grad for p in reference.model.parameters())


def test_logprobs_match_direct_log_softmax(tiny_model_dir, reference, items):
    out = reference.logprobs(items)
    assert [len(row) for row in out] == RESPONSE_LENGTHS
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for row, (prompt, response) in zip(out, items, strict=True):
        expected = _direct(model, prompt, response)
        assert max((abs(a - b) for a, b in zip(row, expected, strict=True)), default=0.0) < 1e-5
    assert all(v < 0 for row in out for v in row)


def test_logprobs_do_not_depend_on_batching(tiny_model_dir, reference, items):
    one_at_a_time = ReferencePolicy(str(tiny_model_dir), ReferenceConfig(batch_size=1)).logprobs(items)
    batched = reference.logprobs(items)
    for a, b in zip(one_at_a_time, batched, strict=True):
        assert len(a) == len(b)
        assert max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0) < 1e-5


def test_scores_at_the_sampling_temperature_in_token_budget_batches(tiny_model_dir, reference, items):
    """temperature 0.7 (the rollout's); batches of at most 150 padded tokens (rows of 102-109 tokens go
    alone) or 330 tokens and 4 rows."""
    lengths = [len(p) + len(r) for p, r in items]
    assert pack_by_tokens(lengths, 150, 4) == [[3], [2], [1], [4], [0]]
    assert pack_by_tokens(lengths, 330, 4) == [[3, 2, 1], [4, 0]]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for budget in (150, 330):
        cfg = ReferenceConfig(batch_size=4, max_tokens_per_batch=budget)
        hot = ReferencePolicy(str(tiny_model_dir), cfg, temperature=0.7)
        out = hot.logprobs(items)
        for row, (prompt, response) in zip(out, items, strict=True):
            expected = _direct(model, prompt, response, temperature=0.7)
            assert max((abs(a - b) for a, b in zip(row, expected, strict=True)), default=0.0) < 1e-5
    cold = reference.logprobs(items)  # temperature 1: other numbers
    assert (
        max(abs(a - b) for r1, r2 in zip(out, cold, strict=True) for a, b in zip(r1, r2, strict=True)) > 0.01
    )


def test_empty_prompt_rejected(reference):
    with pytest.raises(ValueError, match="item 1 has no prompt tokens"):
        reference.logprobs([([1, 2], [3]), ([], [4, 5])])


def test_reference_actor_matches_local(ray_cluster, tiny_model_dir, reference, items):
    cfg = ReferenceConfig(batch_size=2)
    group = ActorGroup.start("reference", ReferencePolicy, cfg, (str(tiny_model_dir), cfg))
    try:
        group.wait_ready(timeout_s=300)
        remote = ray.get(group.call_one(0, "logprobs", items), timeout=120)
    finally:
        group.shutdown()
    local = reference.logprobs(items)
    assert [len(row) for row in remote] == RESPONSE_LENGTHS
    for a, b in zip(remote, local, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_bf16_reference_stays_close_to_fp32(tiny_model_dir, reference, items):
    """rl.reference.bf16 loads the frozen policy in bfloat16; its log-probs are the fp32 ones to bf16
    precision (8 mantissa bits; measured max 0.0016 over these 25 tokens)."""
    half = ReferencePolicy(str(tiny_model_dir), ReferenceConfig(batch_size=4, bf16=True))
    assert {p.dtype for p in half.model.parameters()} == {torch.bfloat16}
    diffs = [
        abs(a - b)
        for r16, r32 in zip(half.logprobs(items), reference.logprobs(items), strict=True)
        for a, b in zip(r16, r32, strict=True)
    ]
    print(f"bf16 vs fp32 reference log-probs over {len(diffs)} tokens: max {max(diffs):.3g}")
    assert 0 < max(diffs) < 0.02


def test_a_lora_learner_with_its_adapter_off_is_the_reference(make_rank, tiny_model_dir, items):
    """rl.reference.source=learner: once an update has moved a LoRA learner, its reference log-probs are
    still the starting policy's (a ReferencePolicy's at the same temperature) while its own have moved;
    a fully fine-tuned learner no longer holds the starting policy and refuses."""
    rank = make_rank(lora=True, temperature=0.7)
    rank.train_step(step_items([1.0, -1.0, 0.5, -0.5]))
    want = ReferencePolicy(str(tiny_model_dir), ReferenceConfig(), temperature=0.7).logprobs(items)
    got, current = rank.logprobs(items, reference=True), rank.logprobs(items)
    print(
        f"learner as reference vs ReferencePolicy: {max_diff(got, want):.2g}; moved by {max_diff(current, want):.2g}"
    )
    assert [len(row) for row in got] == RESPONSE_LENGTHS
    assert max_diff(got, want) < 1e-5 and max_diff(current, want) > 1e-3
    with pytest.raises(ValueError, match="need a LoRA learner"):
        make_rank().logprobs(items, reference=True)


def test_the_reference_source_decides_whether_a_reference_actor_is_placed():
    def rl(*overrides: str):
        return load_config(None, list(overrides)).rl

    lora = "rl.learner.lora.enabled=true"
    assert rl(lora).reference_in_learner and "rl.reference" not in rl_role_demands(rl(lora))
    assert not rl().reference_in_learner and "rl.reference" in rl_role_demands(rl())
    assert not rl(lora, "rl.reference.source=actor").reference_in_learner
    with pytest.raises(ConfigError, match=r"rl.reference.source=learner needs a LoRA learner"):
        rl("rl.reference.source=learner")
