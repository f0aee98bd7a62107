"""The DeepSpeed settings of the learner ranks, derived from rl.learner (`init_engine` takes a trainer's)."""

from __future__ import annotations

from empathy_ray.config import RLConfig, TrainerConfig


def micro_batches_per_rank(cfg: RLConfig) -> int:
    """DeepSpeed's gradient accumulation: each rank's share of the step's B*G samples in micro-batches,
    so that one optimizer step consumes the whole batch once (the config checks that it divides evenly
    when it loads: Config.validate). With a token budget DeepSpeed's count is nominal: `train_step` sets
    the accumulation boundary itself."""
    lc, n = cfg.learner, cfg.prompts_per_step * cfg.algo.group_size
    return n // (lc.num_workers * lc.micro_batch_size)


def trainer_config(cfg: RLConfig) -> TrainerConfig:
    """The DeepSpeed settings `init_engine` takes, from the learner's: constant LR, one step per epoch."""
    lc = cfg.learner
    return TrainerConfig(
        num_workers=lc.num_workers,
        num_gpus=lc.num_gpus,
        zero_stage=lc.zero_stage,
        bf16=lc.bf16,
        lr=lc.lr,
        min_lr_ratio=1.0,
        warmup_ratio=0.0,
        weight_decay=lc.weight_decay,
        micro_batch_size=lc.micro_batch_size,
        grad_accum=micro_batches_per_rank(cfg),
        max_grad_norm=lc.max_grad_norm,
        lora=lc.lora,
    )
