"""Chain-of-Empathy supervised fine-tuning as a Ray Train job of DeepSpeed workers.

The loss is on the assistant's tokens only (CoE block + answer); the prompt is context. After the
job, greedy generations on held-out posts measure how often the model produces a valid CoE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from empathy_ray.config import Config
from empathy_ray.data import dataset
from empathy_ray.domain import coe
from empathy_ray.domain.files import weights_digest
from empathy_ray.modeling.generation import Engine, Sampling
from empathy_ray.runtime.generation_task import answer_posts
from empathy_ray.runtime.resources import Demand
from empathy_ray.train import batches, loop
from empathy_ray.train.job import TrainJob, WorkerContext, run_train_job

log = logging.getLogger(__name__)


def _examples(cfg: Config, tokenizer) -> tuple[list, list]:
    from empathy_ray.modeling.chat import sft_example

    train, held = [], []
    for post in dataset.load_posts(cfg.data):
        for ans in post.answers:
            if not ans.coe:
                continue  # SFT teaches the CoE: answers without an annotation have nothing to teach
            ex = sft_example(
                tokenizer,
                post.text,
                ans.coe,
                ans.text,
                cfg.data.max_prompt_tokens,
                cfg.data.max_response_tokens,
            )
            (held if dataset.post_split(post, cfg.data) in dataset.HELD_OUT else train).append(ex)
    if not train:
        raise ValueError("SFT: no training answer carries a CoE annotation (answers[].coe); nothing to learn")
    return train, held


def _structure_ids(tokenizer) -> set[int]:
    """Token ids of the CoE tags and EOS: never corrupted by input noise."""
    from empathy_ray.modeling.tokenizer import COE_TAGS

    ids = {tokenizer.eos_token_id}
    for tag in COE_TAGS:
        ids.update(tokenizer.encode(tag, add_special_tokens=False))
    return ids


def _sft_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from empathy_ray.modeling.tokenizer import add_coe_tokens, fit_embeddings
    from empathy_ray.train.engine import (
        apply_lora,
        created_partitioned,
        enable_gradient_checkpointing,
        init_engine,
        model_dtype,
    )

    cfg: Config = config["cfg"]
    ctx = WorkerContext()
    tc = cfg.sft
    tokenizer = AutoTokenizer.from_pretrained(config["base_model"])
    if cfg.model.add_coe_tokens:
        log.info("model.add_coe_tokens: %d CoE tags added to the tokenizer", add_coe_tokens(tokenizer))
    train, held = _examples(cfg, tokenizer)
    shard = batches.Shard(train, tc.micro_batch_size)

    def skeleton():
        # sft.bf16: loaded, trained and exported in bfloat16 (DeepSpeed keeps fp32 master weights)
        model = AutoModelForCausalLM.from_pretrained(config["base_model"], dtype=model_dtype(tc.bf16))
        enable_gradient_checkpointing(model, tc.gradient_checkpointing)
        fit_embeddings(tokenizer, model)  # rows for added CoE tags, if the embedding lacks them
        return apply_lora(model, tc.lora, "CAUSAL_LM")

    torch.manual_seed(cfg.run.seed)
    with created_partitioned(tc, ctx.world):  # ZeRO-3: each rank loads only its shard
        model = skeleton()
    engine = init_engine(model, tc, loop.total_steps(shard, tc, ctx.world))
    noise_gen = torch.Generator().manual_seed(cfg.run.seed * 100 + ctx.rank)
    batch_loss = _batch_loss_fn(engine, tokenizer, noise_gen)

    def step(batch: list) -> loop.StepResult:
        loss, n_tokens = batch_loss(batch, tc.input_noise)
        return loop.StepResult(loss, counts={"train/tokens_per_s": n_tokens})

    def held_out() -> dict[str, float]:
        return {"eval/loss": _held_out_loss(held, batch_loss, ctx)}

    history = loop.fit(ctx, engine, shard, tc, cfg.run.seed, step, held_out, "SFT", (noise_gen,))
    ctx.finish(engine, skeleton, tokenizer, history)


def _batch_loss_fn(engine, tokenizer, noise_gen) -> Callable[..., tuple[Any, int]]:
    """(batch, input noise rate) -> (the model's mean loss on the response tokens, their count)."""
    import torch

    from empathy_ray.modeling.batching import pad_batch, pad_with_mask
    from empathy_ray.modeling.tokenizer import pad_id

    protected = torch.tensor(sorted(_structure_ids(tokenizer)))

    def batch_loss(batch: list, noise: float = 0.0) -> tuple[Any, int]:
        ids, mask = pad_with_mask([e.input_ids for e in batch], pad_id(tokenizer))
        labels = pad_batch([e.labels for e in batch], -100)
        ids = batches.corrupt_inputs(ids, labels, protected, noise, len(tokenizer), noise_gen)
        out = engine(
            input_ids=ids.to(engine.device),
            attention_mask=mask.to(engine.device),
            labels=labels.to(engine.device),
        )
        return out.loss, int((labels[:, 1:] != -100).sum())

    return batch_loss


def _held_out_loss(held: list, batch_loss: Callable[..., tuple[Any, int]], ctx: WorkerContext) -> float:
    """Token-weighted mean loss over every rank's share of the held-out examples."""
    mine = held[ctx.rank :: ctx.world]
    total, count = 0.0, 0
    for i in range(0, len(mine), 4):
        loss, n = batch_loss(mine[i : i + 4])
        total, count = total + loss.item() * n, count + n
    total, count = ctx.sum([total, count])
    return total / max(count, 1)


def evaluate_validity(cfg: Config, model_dir: str, engine: Engine = "vllm") -> dict[str, Any]:
    """Greedy generations on held-out posts: share with a valid CoE, and every reason it broke."""
    posts = [p for p in dataset.load_posts(cfg.data) if dataset.post_split(p, cfg.data) in dataset.HELD_OUT]
    posts = posts[: cfg.sft.eval_prompts]
    sampling = Sampling(cfg.sft.eval_max_new_tokens)  # greedy: the seed does not matter
    # one SFT worker's device: where SFT trained, the engine can run (a GPU node on a cluster)
    demand = Demand.of_trainer(cfg.sft)
    texts = answer_posts(
        model_dir, [p.text for p in posts], cfg.data.max_prompt_tokens, sampling, engine, demand=demand
    )
    reasons = [coe.validate(t) for t in texts]
    valid = sum(1 for r in reasons if not r)
    return {
        "coe_validity": valid / max(len(texts), 1),
        "eval_prompts": len(texts),
        "eval_engine": engine,
        "samples": [
            {"post_id": p.id, "completion": t, "reasons": r}
            for p, t, r in zip(posts, texts, reasons, strict=True)
        ],
    }


def run_sft(cfg: Config, base_model: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Train, export to `out_dir` (an HF directory), evaluate; returns the summary dict."""
    job = TrainJob(name="sft", loop=_sft_loop, trainer=cfg.sft, base_model=str(base_model))
    result = run_train_job(cfg, job, Path(out_dir))
    losses = [r["train/loss"] for r in result["history"] if "train/loss" in r]
    evals = [r["eval/loss"] for r in result["history"] if "eval/loss" in r]
    validity = evaluate_validity(cfg, str(out_dir), cfg.sft.eval_engine)
    summary = {
        "model_dir": str(out_dir),
        "weights_sha256": weights_digest(out_dir),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "eval_loss_first": evals[0] if evals else None,
        "eval_loss_last": evals[-1] if evals else None,
        "coe_validity": validity["coe_validity"],
        "eval_prompts": validity["eval_prompts"],
        "eval_engine": validity["eval_engine"],
        "workers": cfg.sft.num_workers,
        "zero_stage": cfg.sft.zero_stage,
        "lora": cfg.sft.lora.enabled,
        "wall_s": result["wall_s"],
        "resumed_from_step": result["resumed_from_step"],  # 0: trained from the start
    }
    log.info(
        "SFT done: loss %.3f -> %.3f, held-out CoE validity %.2f (%d prompts, %s)",
        summary["loss_first"] or float("nan"),
        summary["loss_last"] or float("nan"),
        summary["coe_validity"],
        summary["eval_prompts"],
        summary["eval_engine"],
    )
    return {**summary, "_samples": validity["samples"]}
