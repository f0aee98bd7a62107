"""Foreign checkpoints: Qwen2.5- and Llama-3-layout folders (tests/hub_models.py) go through every stage.

What the project's own tiny model never exercises: a pad token that is missing (Llama 3) or differs
from EOS (Qwen), several EOS ids, embedding rows past the tokenizer, bf16 weights, a tokenizer that
splits the CoE tags, and a generation_config.json full of sampling defaults the rollout must ignore.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.modeling.chat import prompt_ids, sft_example
from empathy_ray.modeling.generation import Sampling, Vocabulary
from empathy_ray.modeling.tokenizer import COE_TAGS, add_coe_tokens, fit_embeddings, pad_id
from tests.hub_models import CHECKPOINT_SAMPLING

POSTS = [
    "最近考试压力很大，晚上总是睡不着，一闭眼就想到考砸了怎么办。",
    "和室友吵了一架，现在回宿舍都觉得尴尬。",
]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def weight_dtypes(model_dir: Path) -> set[str]:
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        return {str(f.get_slice(k).get_dtype()) for k in f.keys()}


def weight_names(model_dir: Path) -> set[str]:
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        return set(f.keys())


def test_fixtures_are_laid_out_like_hub_instruct_checkpoints(hub_models):
    qwen, llama = hub_models["qwen"], hub_models["llama"]
    qt, lt = AutoTokenizer.from_pretrained(qwen), AutoTokenizer.from_pretrained(llama)
    assert len(qt) == 100_259 and len(lt) == 100_261  # cl100k's 100,256 ids + the specials
    q_vocab, l_vocab = Vocabulary.of(str(qwen), qt), Vocabulary.of(str(llama), lt)
    assert (qt.eos_token, qt.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert q_vocab.stop_ids == (100_256, 100_258) and q_vocab.model_rows == 100_352  # padded to 128s
    assert len(q_vocab.padded_ids()) == 93 and "lm_head.weight" not in weight_names(qwen)  # tied
    assert lt.pad_token is None and lt.eos_token == "<|eot_id|>"
    assert l_vocab.stop_ids == (100_257, 100_260) and l_vocab.padded_ids() == []
    assert "lm_head.weight" in weight_names(llama)  # untied
    for d in (qwen, llama):
        assert weight_dtypes(d) == {"BF16"}
        gen = json.loads((d / "generation_config.json").read_text())
        assert {k: gen[k] for k in CHECKPOINT_SAMPLING} == CHECKPOINT_SAMPLING


def test_foreign_prompts_keep_one_bos_and_the_coe_tags_as_plain_text(hub_models):
    lt = AutoTokenizer.from_pretrained(hub_models["llama"])
    # the CoE system prompt is ~150 cl100k tokens: a limit of 96 cannot hold it
    with pytest.raises(ValueError, match=r"data.max_prompt_tokens=96 .* alone take 151 tokens"):
        prompt_ids(lt, POSTS[0], max_tokens=96)
    ids = prompt_ids(lt, POSTS[0], max_tokens=170)  # cut in the middle: one bos, the whole frame
    assert 160 < len(ids) <= 170 and ids.count(lt.bos_token_id) == 1 and ids[0] == lt.bos_token_id
    assert lt.decode(ids[-4:]) == "<|start_header_id|>assistant<|end_header_id|>\n\n"
    assert "……" in lt.decode(ids) and lt.decode(ids).count("<|eot_id|>") == 2
    for kind, eos in (("qwen", "<|im_end|>"), ("llama", "<|eot_id|>")):
        tok = AutoTokenizer.from_pretrained(hub_models[kind])
        assert len(tok.encode("<empathy_think>", add_special_tokens=False)) > 1  # plain text
        ex = sft_example(
            tok, POSTS[1], {"L1": "尴尬", "L2": "怕", "L3": "和好", "L4": "共情"}, "慢慢来。", 192, 64
        )
        assert ex.input_ids[-1] == tok.convert_tokens_to_ids(eos) and ex.labels[-1] == ex.input_ids[-1]
        assert "<L1>尴尬</L1>" in tok.decode(ex.input_ids, skip_special_tokens=True)


def test_a_tokenizer_without_chat_template_names_the_model_folder(hub_models, tmp_path):
    bare = tmp_path / "base-model"
    shutil.copytree(hub_models["qwen"], bare)
    (bare / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match=rf"{bare}: the tokenizer has no chat template"):
        prompt_ids(AutoTokenizer.from_pretrained(bare), POSTS[0])


def test_sft_batches_pad_a_tokenizer_without_pad_token(hub_models):
    """Llama 3 has no pad token: SFT batches used to fail in torch.full(fill_value=None)."""
    from empathy_ray.train.sft import _batch_loss_fn

    tok = AutoTokenizer.from_pretrained(hub_models["llama"])
    model = AutoModelForCausalLM.from_pretrained(hub_models["llama"], dtype=torch.float32)
    examples = [
        sft_example(tok, p, None, a, 192, 64)
        for p, a in zip(POSTS, ["嗯，我在听。", "先睡一觉吧"], strict=True)
    ]
    assert len({len(e.input_ids) for e in examples}) == 2  # the batch needs padding
    loss, n_tokens = _batch_loss_fn(model, tok, torch.Generator())(examples)
    assert pad_id(tok) == tok.eos_token_id and torch.isfinite(loss)
    assert n_tokens == sum(sum(1 for x in e.labels if x != -100) for e in examples)
    # a random model over 100,261 ids: the loss is about ln(100,261) = 11.5
    assert 11.0 < loss.item() < 12.0


def test_a_reward_model_without_pad_token_scores_each_row_as_if_alone(hub_models):
    from empathy_ray.modeling.reward_model import load_reward_model, rm_input_ids, score

    torch.manual_seed(0)
    tok, model = load_reward_model(str(hub_models["llama"]))
    assert tok.pad_token is None and model.config.pad_token_id == tok.eos_token_id
    replies = ["我在。", "听起来你这段时间真的很累，愿意多说一点吗？", "好的<|eot_id|>"]
    seqs = [rm_input_ids(tok, POSTS[0], r, 192, 64) for r in replies]
    assert seqs[2][-1] != tok.eos_token_id  # special-token text in a reply stays text
    with torch.no_grad():
        batched = score(model, seqs, pad_id(tok))
        alone = torch.cat([score(model, [s], pad_id(tok)) for s in seqs])
    assert torch.allclose(batched, alone, atol=1e-5), (batched, alone)
    assert len(set(batched.tolist())) == 3


def test_export_keeps_the_source_tokenizer_generation_config_and_dtype(hub_models, tmp_path):
    """Trained in fp32 (as SFT loads it), exported as the source was: bf16, same files byte for byte, the
    trained values. (Every export of both fixtures' pipeline runs is checked the same way, file for file,
    in test_hub_pipeline.py.)"""
    from empathy_ray.train.engine import export_hf

    src = hub_models["qwen"]
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    state = {k: v + 0.01 for k, v in model.state_dict().items()}  # "trained" weights
    export_hf(
        state,
        AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32),
        AutoTokenizer.from_pretrained(src),
        tmp_path,
    )
    for name in (*TOKENIZER_FILES, "generation_config.json"):
        assert (tmp_path / name).read_bytes() == (src / name).read_bytes(), name
    assert weight_dtypes(tmp_path) == {"BF16"} and weight_names(tmp_path) == weight_names(src)
    back = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert back.dtype == torch.bfloat16
    emb = back.get_input_embeddings().weight
    assert torch.equal(emb, state["model.embed_tokens.weight"].to(torch.bfloat16))
    assert prompt_ids(AutoTokenizer.from_pretrained(tmp_path), POSTS[0]) == prompt_ids(
        AutoTokenizer.from_pretrained(src), POSTS[0]
    )


@pytest.mark.parametrize("kind", ["qwen", "llama"])
def test_coe_tokens_added_on_request_grow_the_embedding_only_when_needed(hub_models, tmp_path, kind):
    from empathy_ray.train.engine import export_hf

    src = hub_models[kind]
    tok = AutoTokenizer.from_pretrained(src)
    assert add_coe_tokens(tok) == len(COE_TAGS) == 12 and add_coe_tokens(tok) == 0
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    fit_embeddings(tok, model)
    rows = model.get_input_embeddings().weight.shape[0]
    # Qwen's padded rows have room for the 12 tags; Llama's exact embedding grows to a multiple of 64
    assert rows == {"qwen": 100_352, "llama": 100_288}[kind] >= len(tok)
    export_hf(model.state_dict(), model, tok, tmp_path)
    back_tok = AutoTokenizer.from_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert back.config.vocab_size == back.get_output_embeddings().weight.shape[0] == rows
    assert back_tok.encode("<L2>", add_special_tokens=False) == [tok.convert_tokens_to_ids("<L2>")]
    assert back_tok.decode(back_tok.encode("<L2>怕</L2>"), skip_special_tokens=True) == "<L2>怕</L2>"
    assert (tmp_path / "generation_config.json").read_bytes() == (src / "generation_config.json").read_bytes()
    assert weight_dtypes(tmp_path) == {"BF16"}


# -- full fine-tuning on a foreign checkpoint ---------------------------------------------------------


@pytest.mark.slow
def test_full_fine_tuning_on_the_llama_fixture(hub_models):
    """The pipeline runs (test_hub_pipeline.py) use LoRA for SFT and the learner; this is the full-weight path on the
    Llama fixture (untied head, no pad token) in bf16: one SFT step (the SFT stage's loss function) and
    one GRPO learner step. In a process of its own: DeepSpeed keeps the first process group it saw, and
    the suite's in-process learners make and drop theirs (tests/conftest.py)."""
    import os
    import subprocess
    import sys

    from empathy_ray.runtime.placement import free_port

    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    env["MASTER_PORT"] = str(port := free_port())
    code = f"from tests.test_hub_models import full_fine_tuning_check as f; f({str(hub_models['llama'])!r}, {port})"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def full_fine_tuning_check(model_dir: str, port: int) -> None:
    """The body of the test above, run in a fresh process."""
    from empathy_ray.actors.learner import LearnerRank
    from empathy_ray.config import load_config
    from empathy_ray.train.engine import init_engine
    from empathy_ray.train.sft import _batch_loss_fn
    from tests.learner_helpers import rl_config

    src = Path(model_dir)
    tok, source = AutoTokenizer.from_pretrained(src), load_file(src / "model.safetensors")
    assert tok.pad_token is None and "lm_head.weight" in source
    prompts = [prompt_ids(tok, p, 192) for p in POSTS]

    # GRPO learner, every weight trainable: the untied head and the embeddings move, the sync ships the
    # source's tensor names in bf16
    rank = LearnerRank(str(src), rl_config(bf16=True), rank=0, world_size=1, seed=0)
    rank.setup("127.0.0.1", port)
    assert {p.dtype for p in rank.engine.module.parameters()} == {torch.bfloat16}
    replies = [
        tok.encode(r, add_special_tokens=False) for r in ("我在听，你慢慢说。", "好的", "嗯", "先睡吧")
    ]
    items = [
        {
            "prompt_ids": prompts[i // 2],
            "response_ids": r + [tok.eos_token_id],
            "advantage": a,
            "ref_logprobs": [],
        }
        for i, (r, a) in enumerate(zip(replies, (1.0, -1.0, 1.0, -1.0), strict=True))
    ]
    stats = rank.train_step(items)
    assert math.isfinite(stats["train/policy_loss"]) and stats["train/grad_norm"] > 0, stats
    synced = rank.weights_for_sync()
    assert set(synced) == set(source) and {t.dtype for t in synced.values()} == {torch.bfloat16}
    moved = {k for k in source if not torch.equal(synced[k], source[k])}
    assert {"lm_head.weight", "model.embed_tokens.weight"} <= moved and any("q_proj" in k for k in moved)

    # SFT: the stage's own loss function on a padded batch, full weights in bf16 (no pad token: eos pads)
    tc = load_config(None, ["sft.bf16=true", "sft.lora.enabled=false", "sft.lr=1e-3"]).sft
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
    engine = init_engine(model, tc, total_steps=2)
    examples = [
        sft_example(tok, p, None, a, 192, 16)
        for p, a in zip(POSTS, ["嗯，我在听。", "先睡一觉吧"], strict=True)
    ]
    batch_loss = _batch_loss_fn(engine, tok, torch.Generator())
    losses = []
    for _ in range(2):
        loss, n_tokens = batch_loss(examples)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    assert n_tokens > 0 and all(math.isfinite(x) for x in losses) and losses[1] < losses[0], losses
    assert {p.dtype for p in engine.module.parameters()} == {torch.bfloat16}
    assert not torch.equal(engine.module.lm_head.weight.detach().cpu(), source["lm_head.weight"])


# -- what the rollout engines sample ---------------------------------------------------------------


def _generator(engine: str, model_dir: Path):
    from empathy_ray.modeling.generation import HfGenerator, VllmGenerator

    if engine == "transformers":
        return HfGenerator(str(model_dir))
    return VllmGenerator(str(model_dir), max_model_len=512, logprobs_mode="processed_logprobs")


def _trap_copy(src: Path, out: Path, first_greedy: int) -> Path:
    """A copy of the Qwen fixture whose generation_config.json has no sampling defaults left, only its
    special ids and one more EOS: greedy's first token. Every padded embedding row is 10x that token's
    row, so an unmasked engine would pick a padded id first; a masked one stops on the token at once."""
    from safetensors.torch import save_file

    shutil.copytree(src, out)
    weights = load_file(out / "model.safetensors")
    emb = weights["model.embed_tokens.weight"]  # tied: also the LM head
    tokenizer_size = len(AutoTokenizer.from_pretrained(src))
    emb[tokenizer_size:] = 10 * emb[first_greedy]
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    gen = json.loads((out / "generation_config.json").read_text())
    gen = {k: v for k, v in gen.items() if k not in CHECKPOINT_SAMPLING}
    gen["eos_token_id"] = [*gen["eos_token_id"], first_greedy]
    (out / "generation_config.json").write_text(json.dumps(gen))
    return out


@pytest.mark.parametrize("engine", ["transformers", pytest.param("vllm", marks=pytest.mark.slow)])
def test_rollouts_take_stop_ids_from_the_checkpoint_and_sampling_from_the_config(
    hub_models, tmp_path, engine
):
    """Same seeds, same ids with and without the checkpoint's sampling defaults (temperature 0.3, top_k
    5, top_p 0.5, repetition_penalty 1.5 there; 1.0 / none / 1.0 / 1.0 here); padded embedding rows are
    never sampled; an EOS listed only in generation_config.json stops a reply and is kept."""
    src = hub_models["qwen"]
    tok = AutoTokenizer.from_pretrained(src)
    prompts = [prompt_ids(tok, p, 192) for p in POSTS]
    sampled, greedy = Sampling(12, temperature=1.0, logprobs=True), Sampling(6)

    gen = _generator(engine, src)
    with_defaults = [c for group in gen.sample(prompts, sampled, n=2, seeds=[11, 12]) for c in group]
    first_greedy = gen.sample(prompts[:1], greedy, n=1, seeds=[0])[0][0].token_ids
    del gen
    # repetition_penalty 1.5 would forbid greedy's repeats; top_k 5 would keep logprobs above ln(1/5)
    assert len(set(first_greedy)) < len(first_greedy)
    assert min(lp for c in with_defaults for lp in c.logprobs) < -5
    assert all(len(c.token_ids) == 12 and c.finish_reason == "length" for c in with_defaults)

    trap = _generator(engine, _trap_copy(src, tmp_path / "trap", stop := first_greedy[0]))
    reply = trap.sample(prompts[:1], greedy, n=1, seeds=[0])[0][0]
    assert reply.token_ids == [stop] and reply.finish_reason == "stop"
    without = [c for group in trap.sample(prompts, sampled, n=2, seeds=[11, 12]) for c in group]
    for a, b in zip(with_defaults, without, strict=True):  # the same draws, cut at the extra EOS if any
        cut = a.token_ids.index(stop) + 1 if stop in a.token_ids else len(a.token_ids)
        assert b.token_ids == a.token_ids[:cut] and b.finish_reason == (
            "stop" if stop in a.token_ids else "length"
        )
    assert max(t for c in without for t in c.token_ids) < len(tok)


# -- the learner scores the distribution the rollout sampled from ----------------------------------

# per token, absolute (measured: Llama 1.9e-6; Qwen 9.5e-7 since scoring drops the padded rows too,
# 9.8e-4 when it spanned them)
LOGPROB_TOLERANCE = {"qwen": 1e-4, "llama": 1e-4}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qwen", "llama"])
def test_learner_logprobs_match_the_rollout_engines_at_its_temperature(hub_models, kind):
    """vLLM's sampling log-probs (processed: after temperature) against the learner's scoring path
    (`response_logits` -> `tempered` -> `logprobs_from_logits`, which the reference role shares), at
    temperature 0.7 and 1.0. fp32 on both sides: kernels differ by ~1e-6; the Qwen fixture's 93 padded
    rows, which the engine masks out, are left out of the scoring softmax too (algo.sampled_vocab). Scored at
    temperature 1 instead, samples drawn at 0.7 are off by 0.13."""
    from empathy_ray.actors.reference import ReferencePolicy
    from empathy_ray.config import ReferenceConfig

    src = hub_models[kind]
    tok = AutoTokenizer.from_pretrained(src)
    prompts = [prompt_ids(tok, p, 192) for p in POSTS]
    engine = _generator("vllm", src)
    gaps = {}
    for temperature in (0.7, 1.0):
        groups = engine.sample(
            prompts, Sampling(16, temperature=temperature, logprobs=True), n=2, seeds=[5, 6]
        )
        done = [(p, c) for p, group in zip(prompts, groups, strict=True) for c in group]
        learner = ReferencePolicy(str(src), ReferenceConfig(), temperature=temperature)
        scored = learner.logprobs([(p, c.token_ids) for p, c in done])
        gap = max(
            abs(a - b)
            for (_, c), row in zip(done, scored, strict=True)
            for a, b in zip(c.logprobs, row, strict=True)
        )
        gaps[temperature] = gap
    assert max(gaps.values()) < LOGPROB_TOLERANCE[kind], gaps
