"""Reward-model training as a Ray Train job: a scalar head on an LM, trained on preference pairs.

Loss (Bradley-Terry, with an optional margin): -log sigmoid(r_chosen - r_rejected - margin), plus an
optional InfoNCE term where each chosen answer must beat every rejected answer of the micro-batch
(the paper trains the RM contrastively with counsellors' answers as positives). The model sees the
same chat prompt as the policy, followed by the reply text.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.config import Config
from empathy_ray.data import dataset
from empathy_ray.modeling.reward_model import load_reward_model, rm_input_ids, score
from empathy_ray.train import batches
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


def _rm_loop(config: dict[str, Any]) -> None:
    import torch

    from empathy_ray.train.engine import apply_lora, init_engine

    cfg: Config = config["cfg"]
    tc = cfg.rm
    ctx = WorkerContext()
    torch.manual_seed(cfg.run.seed)
    tokenizer, model = load_reward_model(config["base_model"])
    train, held = _pairs(cfg, tokenizer)
    shard = batches.Shard(train, tc.micro_batch_size)
    total_steps = max(1, shard.num_batches(ctx.world) // tc.grad_accum) * tc.epochs
    model = apply_lora(model, tc.lora, "SEQ_CLS")
    engine = init_engine(model, tc, total_steps)
    pad = tokenizer.pad_token_id

    history: list[dict[str, Any]] = []
    window_loss, window_acc, step, t0 = [], [], 0, time.perf_counter()
    bar = ctx.progress(total_steps, "RM")
    for epoch in range(tc.epochs):
        engine.train()
        for batch in shard.batches(epoch, cfg.run.seed, ctx.rank, ctx.world):
            r = score(engine, [c for c, _ in batch] + [rj for _, rj in batch], pad)
            rc, rr = r[: len(batch)], r[len(batch) :]
            loss = rm_loss(rc, rr, tc.margin, tc.contrastive_weight)
            engine.backward(loss)
            boundary = engine.is_gradient_accumulation_boundary()
            engine.step()
            window_loss.append(loss.item())
            window_acc.append((rc > rr).float().mean().item())
            if not boundary:
                continue
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == total_steps:
                loss_avg, acc = ctx.mean(
                    [sum(window_loss) / len(window_loss), sum(window_acc) / len(window_acc)]
                )
                history.append(
                    {
                        "step": step,
                        "epoch": epoch,
                        "train/loss": loss_avg,
                        "train/accuracy": acc,
                        "train/lr": engine.get_lr()[0],
                        "train/pairs_per_s": ctx.sum([len(window_loss) * tc.micro_batch_size])[0]
                        / (time.perf_counter() - t0),
                    }
                )
                bar.set_postfix(loss=f"{loss_avg:.3f}", acc=f"{acc:.2f}")
                window_loss, window_acc, t0 = [], [], time.perf_counter()
        history.append({"step": step, "epoch": epoch, **_held_out(engine, held, pad, ctx)})
    bar.close()

    def skeleton():
        return apply_lora(load_reward_model(config["base_model"])[1], tc.lora, "SEQ_CLS")

    ctx.finish(engine, skeleton, tokenizer, history)


def _held_out(engine, held, pad, ctx) -> dict[str, float]:
    import torch

    engine.eval()
    mine = held[ctx.rank :: ctx.world]
    correct, margin_sum = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(mine), 8):
            batch = mine[i : i + 8]
            r = score(engine, [c for c, _ in batch] + [rj for _, rj in batch], pad)
            d = r[: len(batch)] - r[len(batch) :]
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
    }
    log.info(
        "RM done: held-out pairwise accuracy %.3f on %d pairs (loss %.3f -> %.3f)",
        summary["pairwise_accuracy"] or float("nan"),
        summary["eval_pairs"],
        summary["loss_first"] or float("nan"),
        summary["loss_last"] or float("nan"),
    )
    return summary
