"""RolloutEngine without Ray, on both engines: sample structure, seeding, logprobs against a
transformers forward pass, in-place weight updates (checked by checksum and by logprobs), and the
EOS policy. One engine of each kind for the whole module."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.actors.rollout import RolloutEngine, request_seed
from empathy_ray.actors.vllm_ext import checksum, checksums_match
from empathy_ray.config import RolloutConfig
from empathy_ray.data.samples import load_sample_posts

MAX_NEW = 12
# fp32 on both sides and the same math; only the kernels differ (oneDNN vs torch matmul, summation
# order): measured max |diff| ~1e-6. A wrong alignment, stale weights or stale prompt KV differ by
# 0.1-1, so 1e-4 separates right from wrong with a wide margin on both sides.
LOGPROB_ATOL = 1e-4


def load_hf(model_dir) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def prompts(tok) -> list[list[int]]:
    """Three real posts cut to 40-150 tokens: longer than a KV block, so the prefix cache holds them."""
    posts = load_sample_posts()[:3]
    return [tok.encode(p.text)[: 40 + 50 * i] for i, p in enumerate(posts)]


@pytest.fixture(scope="module")
def model_a(tiny_model_dir):
    return load_hf(tiny_model_dir)


@pytest.fixture(scope="module")
def model_b(tmp_path_factory):
    from empathy_ray.modeling.tiny import build_tiny_model

    return load_hf(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-test-b", preset="test", seed=1))


@pytest.fixture(scope="module", params=["vllm", "transformers"])
def engine(request, tiny_model_dir):
    cfg = RolloutConfig(engine=request.param, max_new_tokens=MAX_NEW, max_model_len=256)
    eng = RolloutEngine(tiny_model_dir, cfg, seed=0)
    yield eng
    del eng


@contextlib.contextmanager
def loaded(engine: RolloutEngine, model: torch.nn.Module, version: int, restore: torch.nn.Module):
    """Run with `model`'s weights in the engine, then put `restore`'s back (version 0)."""
    engine.update_weights(model.state_dict(), version=version)
    try:
        yield
    finally:
        engine.update_weights(restore.state_dict(), version=0)


def logprob_diffs(model: torch.nn.Module, samples) -> torch.Tensor:
    """|engine logprob - log_softmax(HF logits)| for every response token of every sample."""
    diffs = []
    with torch.no_grad():
        for s in samples:
            ids = torch.tensor([s.prompt_ids + s.response_ids])
            logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
            n = len(s.prompt_ids)
            ref = logp[n - 1 : -1].gather(-1, torch.tensor(s.response_ids)[:, None]).squeeze(-1)
            diffs.append((ref - torch.tensor(s.logprobs)).abs())
    return torch.cat(diffs)


def check_samples(samples, prompts, group_size, step, offset, eos_id, version):
    expected = {f"{step}-{offset + i}-{j}" for i in range(len(prompts)) for j in range(group_size)}
    assert [s.uid for s in samples] == sorted(expected, key=lambda u: tuple(map(int, u.split("-"))))
    for s in samples:
        assert s.prompt_ids == prompts[s.prompt_index - offset]
        assert s.uid == f"{step}-{s.prompt_index}-{s.sample_index}"
        assert len(s.logprobs) == len(s.response_ids) >= 1
        assert all(lp <= 0.0 for lp in s.logprobs)
        assert s.weight_version == version
        assert eos_id not in s.response_ids[:-1]
        if s.finish_reason == "stop":
            assert s.response_ids[-1] == eos_id  # the EOS the engine stopped on is kept
        else:
            assert (
                s.finish_reason == "length"
                and len(s.response_ids) == MAX_NEW
                and eos_id not in s.response_ids
            )


def test_generate_gives_group_size_aligned_samples(engine, prompts, tok):
    samples = engine.generate(prompts, group_size=3, step=5, prompt_offset=2)
    assert len(samples) == 9
    check_samples(samples, prompts, 3, step=5, offset=2, eos_id=tok.eos_token_id, version=0)
    # a near-uniform random model over ~6k tokens: the 3 answers to a prompt all differ
    for i in range(3):
        group = [tuple(s.response_ids) for s in samples if s.prompt_index == 2 + i]
        assert len(set(group)) == 3
    assert samples[0].text == tok.decode(samples[0].response_ids, skip_special_tokens=True)
    assert engine.generate([], group_size=3, step=5) == []
    with pytest.raises(ValueError, match=r"prompts \[3\] have no tokens"):
        engine.generate([prompts[0], []], group_size=3, step=5, prompt_offset=2)


def test_same_seed_step_and_prompt_give_the_same_samples(engine, prompts):
    first = engine.generate(prompts, group_size=2, step=1)
    again = engine.generate(prompts, group_size=2, step=1)
    assert [(s.response_ids, s.logprobs) for s in first] == [(s.response_ids, s.logprobs) for s in again]
    next_step = engine.generate(prompts, group_size=2, step=2)
    assert sum(a.response_ids != b.response_ids for a, b in zip(first, next_step, strict=True)) == 6
    assert request_seed(0, 1, 0) != request_seed(0, 1, 1) != request_seed(1, 1, 0)


def test_sampling_logprobs_match_a_transformers_forward(engine, prompts, model_a):
    diffs = logprob_diffs(model_a, engine.generate(prompts, group_size=4, step=0))
    print(
        f"\n{engine.cfg.engine} vs HF logprobs: max |diff| {diffs.max():.2e}, mean {diffs.mean():.2e} over {diffs.numel()} tokens"
    )
    assert diffs.numel() == 3 * 4 * MAX_NEW
    assert diffs.max() < LOGPROB_ATOL


def test_update_weights_in_place(engine, prompts, model_a, model_b):
    """Checksums are float64 sums over every parameter: equal to rtol 1e-9 (summation order only)."""
    before = engine.generate(prompts, group_size=2, step=0)
    assert checksums_match(engine.weights_checksum(), checksum(model_a.named_parameters()))
    with loaded(engine, model_b, version=7, restore=model_a):
        assert engine.weight_version == 7
        inside = engine.weights_checksum()
        assert checksums_match(inside, checksum(model_b.named_parameters()))
        assert not checksums_match(inside, checksum(model_a.named_parameters()), rtol=1e-3)
        after = engine.generate(prompts, group_size=2, step=0)
        assert all(s.weight_version == 7 for s in after)
        # same seeds, same noise: near-uniform A and B often pick the same token, never with the same logprob
        assert all(a.logprobs != b.logprobs for a, b in zip(before, after, strict=True))
        assert any(a.response_ids != b.response_ids for a, b in zip(before, after, strict=True))
        # the same prompts were cached under the old weights: matching B proves that KV was dropped
        assert logprob_diffs(model_b, after).max() < LOGPROB_ATOL
    assert engine.weight_version == 0
    assert checksums_match(engine.weights_checksum(), checksum(model_a.named_parameters()))


def eos_prone(model_dir, eos_id: int, eos_gain: float) -> torch.nn.Module:
    """A model whose next-token logits favour EOS by a fixed margin.

    Residual dimension 0 is pinned to the embedding's value (1 for every token: no layer writes
    into it) and the final norm reads only that dimension, so every logit is c * E[token, 0]:
    c for ordinary tokens and c * eos_gain for EOS.
    """
    model = load_hf(model_dir)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                p[0] = 0.0
        emb = model.get_input_embeddings().weight
        emb[:, 0] = 1.0
        emb[eos_id, 0] = eos_gain
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
    return model


def test_eos_is_kept_with_its_logprob(engine, prompts, tiny_model_dir, tok, model_a):
    model = eos_prone(tiny_model_dir, tok.eos_token_id, eos_gain=2.0)
    with loaded(engine, model, version=1, restore=model_a):
        samples = engine.generate(prompts, group_size=4, step=0)
        check_samples(samples, prompts, 4, step=0, offset=0, eos_id=tok.eos_token_id, version=1)
        stopped = [s for s in samples if s.finish_reason == "stop"]
        print(
            f"\n{engine.cfg.engine}: {len(stopped)}/12 stopped on EOS, lengths {[len(s.response_ids) for s in samples]}"
        )
        assert len(stopped) >= 6
        assert all(tok.eos_token not in s.text for s in stopped)
        assert logprob_diffs(model, samples).max() < LOGPROB_ATOL
