"""Chain-of-Empathy supervised fine-tuning as a Ray Train job of DeepSpeed workers.

The loss is on the assistant's tokens only (CoE block + answer); the prompt is context. After the
job, greedy generations on held-out posts measure how often the model produces a valid CoE.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.config import Config
from empathy_ray.data import dataset
from empathy_ray.domain import coe
from empathy_ray.train import batches
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
            (held if dataset.post_split(post.id, cfg.data) in dataset.HELD_OUT else train).append(ex)
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

    from empathy_ray.modeling.batching import pad_batch
    from empathy_ray.train.engine import apply_lora, init_engine

    cfg: Config = config["cfg"]
    ctx = WorkerContext()
    tc = cfg.sft
    tokenizer = AutoTokenizer.from_pretrained(config["base_model"])
    train, held = _examples(cfg, tokenizer)
    shard = batches.Shard(train, tc.micro_batch_size)
    steps_per_epoch = max(1, shard.num_batches(ctx.world) // tc.grad_accum)
    total_steps = steps_per_epoch * tc.epochs

    torch.manual_seed(cfg.run.seed)
    model = AutoModelForCausalLM.from_pretrained(config["base_model"], dtype=torch.float32)
    model = apply_lora(model, tc.lora, "CAUSAL_LM")
    engine = init_engine(model, tc, total_steps)
    pad = tokenizer.pad_token_id
    protected = torch.tensor(sorted(_structure_ids(tokenizer)))
    noise_gen = torch.Generator().manual_seed(cfg.run.seed * 100 + ctx.rank)

    def batch_loss(batch, noise: float = 0.0) -> tuple[Any, int]:
        ids = pad_batch([e.input_ids for e in batch], pad)
        labels = pad_batch([e.labels for e in batch], -100)
        mask = torch.arange(ids.shape[1])[None, :] < torch.tensor([len(e.input_ids) for e in batch])[:, None]
        ids = batches.corrupt_inputs(ids, labels, protected, noise, len(tokenizer), noise_gen)
        out = engine(
            input_ids=ids.to(engine.device),
            attention_mask=mask.to(engine.device),
            labels=labels.to(engine.device),
        )
        return out.loss, int((labels[:, 1:] != -100).sum())

    history: list[dict[str, Any]] = []
    window: list[float] = []
    tokens, t0, step = 0, time.perf_counter(), 0
    bar = ctx.progress(total_steps, "SFT")
    for epoch in range(tc.epochs):
        engine.train()
        for batch in shard.batches(epoch, cfg.run.seed, ctx.rank, ctx.world):
            loss, n_tok = batch_loss(batch, tc.input_noise)
            engine.backward(loss)
            boundary = engine.is_gradient_accumulation_boundary()
            engine.step()
            window.append(loss.item())
            tokens += n_tok
            if not boundary:
                continue
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == total_steps:
                loss_avg, tok_sum = ctx.mean([sum(window) / len(window)])[0], ctx.sum([tokens])[0]
                row = {
                    "epoch": epoch,
                    "train/loss": loss_avg,
                    "train/lr": engine.get_lr()[0],
                    "train/tokens_per_s": tok_sum / (time.perf_counter() - t0),
                }
                history.append({"step": step, **row})
                bar.set_postfix(loss=f"{loss_avg:.3f}")
                window, tokens, t0 = [], 0, time.perf_counter()
        history.append(
            {"step": step, "epoch": epoch, "eval/loss": _held_out_loss(engine, held, batch_loss, ctx)}
        )
    bar.close()
    ctx.finish(
        engine,
        lambda: apply_lora(
            AutoModelForCausalLM.from_pretrained(config["base_model"], dtype=torch.float32), tc.lora
        ),
        tokenizer,
        history,
    )


def _held_out_loss(engine, held, batch_loss, ctx) -> float:
    import torch

    engine.eval()
    mine = held[ctx.rank :: ctx.world]
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(mine), 4):
            loss, n = batch_loss(mine[i : i + 4])
            total, count = total + loss.item() * n, count + n
    total, count = ctx.sum([total, count])
    return total / max(count, 1)


def evaluate_validity(cfg: Config, model_dir: str, engine: str = "vllm") -> dict[str, Any]:
    """Greedy generations on held-out posts: share with a valid CoE, and every reason it broke."""
    import ray
    from transformers import AutoTokenizer

    from empathy_ray.modeling.chat import prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    posts = [
        p for p in dataset.load_posts(cfg.data) if dataset.post_split(p.id, cfg.data) in dataset.HELD_OUT
    ]
    posts = posts[: cfg.sft.eval_prompts]
    prompts = [prompt_ids(tokenizer, p.text, cfg.data.max_prompt_tokens) for p in posts]
    gen = ray.remote(num_cpus=1)(_generate_task)
    texts = ray.get(gen.remote(model_dir, prompts, cfg.sft.eval_max_new_tokens, engine))
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


def _generate_task(model_dir: str, prompts: list[list[int]], max_new_tokens: int, engine: str) -> list[str]:
    from empathy_ray.modeling.generation import generate
    from empathy_ray.runtime.process import setup_process

    setup_process()
    return [c.text for c in generate(model_dir, prompts, max_new_tokens, engine=engine)]


def run_sft(cfg: Config, base_model: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Train, export to `out_dir` (an HF directory), evaluate; returns the summary dict."""
    job = TrainJob(name="sft", loop=_sft_loop, trainer=cfg.sft, base_model=str(base_model))
    result = run_train_job(cfg, job, Path(out_dir))
    losses = [r["train/loss"] for r in result["history"] if "train/loss" in r]
    evals = [r["eval/loss"] for r in result["history"] if "eval/loss" in r]
    validity = evaluate_validity(cfg, str(out_dir), cfg.sft.eval_engine)
    summary = {
        "model_dir": str(out_dir),
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
