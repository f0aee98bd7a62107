"""Reward-model training as a Ray Train job: a scalar head on an LM, trained on preference pairs.

Loss (Bradley-Terry, with an optional margin): -log sigmoid(r_chosen - r_rejected - margin), plus an
optional InfoNCE term where each chosen answer must beat every rejected answer of the micro-batch
(the paper trains the RM contrastively with counsellors' answers as positives). The model sees the
same chat prompt as the policy, followed by the reply text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from empathy_ray.config import Config, TrainerConfig
from empathy_ray.data import dataset
from empathy_ray.domain.files import weights_digest
from empathy_ray.modeling.reward_model import load_reward_model, rm_input_ids, score
from empathy_ray.modeling.tokenizer import pad_id
from empathy_ray.train import batches, loop
from empathy_ray.train.job import TrainJob, WorkerContext, run_train_job

log = logging.getLogger(__name__)


def _pairs(cfg: Config, tokenizer) -> tuple[list, list]:
    train, held = [], []
    for pair in dataset.load_pairs(cfg.data):
        enc = (
            rm_input_ids(
                tokenizer, pair.post, pair.chosen, cfg.data.max_prompt_tokens, cfg.data.max_response_tokens
            ),
            rm_input_ids(
                tokenizer, pair.post, pair.rejected, cfg.data.max_prompt_tokens, cfg.data.max_response_tokens
            ),
        )
        (held if dataset.pair_split(pair, cfg.data) in dataset.HELD_OUT else train).append(enc)
    if not train:
        raise ValueError("RM: no preference pairs in the training split (data.pairs)")
    return train, held


def rm_loss(r_chosen, r_rejected, margin: float = 0.0, contrastive_weight: float = 0.0):
    """Pairwise loss over a micro-batch of [B] chosen and [B] rejected scores."""
    import torch
    import torch.nn.functional as F

    loss = -F.logsigmoid(r_chosen - r_rejected - margin).mean()
    if contrastive_weight > 0:
        # row i: chosen_i against all rejected of the batch; the target is column 0 (chosen_i)
        logits = torch.cat(
            [r_chosen[:, None], r_rejected[None, :].expand(len(r_chosen), -1)], dim=1
        )  # (B, 1+B)
        loss = loss + contrastive_weight * F.cross_entropy(
            logits, torch.zeros(len(r_chosen), dtype=torch.long)
        )
    return loss


def build_reward_model(base_model: str, tc: TrainerConfig, world: int):
    """Tokenizer + the reward model that trains (gradient checkpointing and LoRA as `tc` says).

    Under ZeRO-3 it is created partitioned, as SFT and the learner are: each rank loads only its shard.
    The adapters and PEFT's trainable copy of the fresh scalar head are built inside too (PEFT gathers
    the head to copy it), then every trainable tensor DeepSpeed has not partitioned is cast to the
    model's dtype: ZeRO-3 keeps a partitioned model's dtypes as they are, and its partition buffer
    holds one dtype (fp32 adapters beside a bf16 head fail its assertion)."""
    from empathy_ray.train.engine import (
        apply_lora,
        created_partitioned,
        enable_gradient_checkpointing,
        model_dtype,
    )

    dtype = model_dtype(tc.bf16)  # rm.bf16: loaded, trained and exported in bfloat16
    with created_partitioned(tc, world):
        tokenizer, model = load_reward_model(base_model, dtype)
        model = apply_lora(
            enable_gradient_checkpointing(model, tc.gradient_checkpointing), tc.lora, "SEQ_CLS"
        )
    for p in model.parameters():
        if p.requires_grad and not hasattr(p, "ds_id"):  # a shard's .data is empty: leave shards alone
            p.data = p.data.to(dtype)
    return tokenizer, model


def export_skeleton(base_model: str, tc: TrainerConfig):
    """The module the gathered weights are loaded into for export: built outside ZeRO-3's partitioned
    creation, so it holds full tensors."""
    from empathy_ray.train.engine import apply_lora, model_dtype

    return apply_lora(load_reward_model(base_model, model_dtype(tc.bf16))[1], tc.lora, "SEQ_CLS")


def _rm_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import torch

    from empathy_ray.train.engine import init_engine

    cfg: Config = config["cfg"]
    tc = cfg.rm
    ctx = WorkerContext()
    torch.manual_seed(cfg.run.seed)  # the scalar head is initialised at random
    tokenizer, model = build_reward_model(config["base_model"], tc, ctx.world)
    train, held = _pairs(cfg, tokenizer)
    shard = batches.Shard(train, tc.micro_batch_size)
    engine = init_engine(model, tc, loop.total_steps(shard, tc, ctx.world))
    pad = pad_id(tokenizer)  # the id the model pools past (Llama 3: EOS)

    def step(batch: list) -> loop.StepResult:
        rc, rr = _scores(engine, batch, pad)
        return loop.StepResult(
            rm_loss(rc, rr, tc.margin, tc.contrastive_weight),
            means={"train/accuracy": (rc > rr).float().mean().item()},
            counts={"train/pairs_per_s": len(batch)},
        )

    history = loop.fit(
        ctx, engine, shard, tc, cfg.run.seed, step, lambda: _held_out(engine, held, pad, ctx), "RM"
    )

    ctx.finish(engine, lambda: export_skeleton(config["base_model"], tc), tokenizer, history)


def _scores(engine, batch: list, pad: int):
    """[B] chosen and [B] rejected rewards of a batch of (chosen ids, rejected ids) pairs, in one forward."""
    r = score(engine, [c for c, _ in batch] + [rj for _, rj in batch], pad)
    return r[: len(batch)], r[len(batch) :]


def _held_out(engine, held: list, pad: int, ctx: WorkerContext) -> dict[str, float]:
    """Pairwise accuracy and mean margin over every rank's share of the held-out pairs."""
    mine = held[ctx.rank :: ctx.world]
    correct, margin_sum = 0.0, 0.0
    for i in range(0, len(mine), 8):
        rc, rr = _scores(engine, mine[i : i + 8], pad)
        d = rc - rr
        correct += (d > 0).sum().item()
        margin_sum += d.sum().item()
    correct, margin_sum, n = ctx.sum([correct, margin_sum, len(mine)])
    return {
        "eval/pairwise_accuracy": correct / max(n, 1),
        "eval/margin": margin_sum / max(n, 1),
        "eval/pairs": n,
    }


def run_rm(cfg: Config, base_model: str | Path, out_dir: str | Path) -> dict[str, Any]:
    job = TrainJob(name="rm", loop=_rm_loop, trainer=cfg.rm, base_model=str(base_model))
    result = run_train_job(cfg, job, Path(out_dir))
    hist = result["history"]
    evals = [r for r in hist if "eval/pairwise_accuracy" in r]
    losses = [r["train/loss"] for r in hist if "train/loss" in r]
    summary = {
        "model_dir": str(out_dir),
        "weights_sha256": weights_digest(out_dir),
        "base_model": str(base_model),
        "pairwise_accuracy": evals[-1]["eval/pairwise_accuracy"] if evals else None,
        "pairwise_accuracy_first_epoch": evals[0]["eval/pairwise_accuracy"] if evals else None,
        "eval_pairs": int(evals[-1]["eval/pairs"]) if evals else 0,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "workers": cfg.rm.num_workers,
        "zero_stage": cfg.rm.zero_stage,
        "lora": cfg.rm.lora.enabled,
        "wall_s": result["wall_s"],
        "resumed_from_step": result["resumed_from_step"],  # 0: trained from the start
    }
    log.info(
        "RM done: held-out pairwise accuracy %.3f on %d pairs (loss %.3f -> %.3f)",
        summary["pairwise_accuracy"] or float("nan"),
        summary["eval_pairs"],
        summary["loss_first"] or float("nan"),
        summary["loss_last"] or float("nan"),
    )
    return summary
