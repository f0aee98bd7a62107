"""DeepSpeed inside a Ray Train worker: engine set-up, LR schedule, and export as an HF directory.

Shared by the SFT and reward-model trainers. Ray Train has already created the torch.distributed
process group (gloo on CPU, NCCL on GPU) and set RANK/WORLD_SIZE/MASTER_*; DeepSpeed joins it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from empathy_ray.config import LoraConfig, TrainerConfig
from empathy_ray.modeling.export import save_like_source

log = logging.getLogger(__name__)


def deepspeed_config(tc: TrainerConfig, world_size: int) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": tc.zero_stage}
    if tc.zero_stage == 3:
        # Export needs the full weights on rank 0; gather them at save time.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": tc.micro_batch_size,
        "gradient_accumulation_steps": tc.grad_accum,
        "train_batch_size": tc.micro_batch_size * tc.grad_accum * world_size,
        "gradient_clipping": tc.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": tc.bf16},
        "zero_allow_untested_optimizer": True,  # torch AdamW as the client optimizer
        "steps_per_print": 10**9,  # our own logging, not DeepSpeed's
        "wall_clock_breakdown": False,
    }


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, tc: TrainerConfig):
    """Linear warm-up, then cosine decay to lr * min_lr_ratio."""
    warmup = max(1, int(total_steps * tc.warmup_ratio)) if tc.warmup_ratio > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def model_dtype(bf16: bool) -> torch.dtype:
    """The dtype a role loads its model in: bf16 when its config says so, so no rank ever holds an fp32
    copy it does not need (DeepSpeed keeps its own fp32 master weights for the optimizer)."""
    return torch.bfloat16 if bf16 else torch.float32


def enable_gradient_checkpointing(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """Recompute each decoder layer's activations in backward instead of keeping them (HF's own
    checkpointing, active only in train mode). Non-reentrant: it needs no input that requires grad,
    so a frozen embedding under LoRA still gets gradients to the adapters."""
    if enabled:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


@contextmanager
def created_partitioned(tc: TrainerConfig, world_size: int) -> Iterator[None]:
    """Under ZeRO-3, models loaded inside are created partitioned (transformers' DeepSpeed integration
    runs `from_pretrained` under `deepspeed.zero.Init`): no rank ever holds the full weights, each loads
    its shard. Nothing changes for ZeRO-2. Only around the model that trains: a model built after it (an
    export skeleton) must hold full tensors again."""
    if tc.zero_stage != 3:
        yield
        return
    from transformers.integrations.deepspeed import HfDeepSpeedConfig, unset_hf_deepspeed_config

    ds_config = deepspeed_config(tc, world_size)
    # DeepSpeed's comm is not up yet, so it would check the global batch against a world of 1: leave
    # the global batch out (it follows from the micro-batch, accumulation and the real world later)
    del ds_config["train_batch_size"]
    keep = HfDeepSpeedConfig(ds_config)  # noqa: F841 (registers itself while alive)
    try:
        yield
    finally:
        unset_hf_deepspeed_config()


def apply_lora(model: torch.nn.Module, lora: LoraConfig, task_type: str = "CAUSAL_LM") -> torch.nn.Module:
    if not lora.enabled:
        return model
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_cfg = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type=task_type,
        # the reward head is new: it must train in full, not through an adapter
        modules_to_save=["score"] if task_type == "SEQ_CLS" else None,
    )
    return get_peft_model(model, peft_cfg)


def init_engine(model: torch.nn.Module, tc: TrainerConfig, total_steps: int):
    """Wrap `model` in a DeepSpeed engine (ZeRO stage from the config) with AdamW + cosine LR."""
    import deepspeed

    world = dist.get_world_size() if dist.is_initialized() else 1
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)  # counted before ZeRO-3 partitions them away
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.95))
    scheduler = cosine_schedule(optimizer, total_steps, tc)
    engine, *_ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        config=deepspeed_config(tc, world),
        dist_init_required=False,
    )
    if engine.global_rank == 0:
        log.info(
            "DeepSpeed %s engine: ZeRO-%d, %d ranks, %s, %.2fM trainable params",
            deepspeed.__version__,
            tc.zero_stage,
            world,
            "bf16" if tc.bf16 else "fp32",
            n_trainable / 1e6,
        )
    return engine


def full_state_dict(engine) -> dict[str, torch.Tensor] | None:
    """Full weights on rank 0 (None elsewhere). Collective under ZeRO-3: every rank must call it."""
    if engine.zero_optimization_stage() == 3:
        sd = engine._zero3_consolidated_16bit_state_dict()
    else:
        sd = engine.module.state_dict()
    if engine.global_rank != 0:
        return None
    # Tied weights (embedding = LM head) stay one tensor: sent once, counted once by checksums.
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for k, v in sd.items():
        key = (v.data_ptr(), tuple(v.shape), v.dtype)
        if key not in copies:
            copies[key] = v.detach().to("cpu").clone()
        out[k] = copies[key]
    return out


def export_hf(
    state_dict: dict[str, torch.Tensor], skeleton: torch.nn.Module, tokenizer, out_dir: Path
) -> None:
    """Load `state_dict` into a CPU copy of the trained module and save a plain HF directory.

    A LoRA model is merged into its base first, so the export loads without PEFT (in vLLM too).
    """
    missing, unexpected = skeleton.load_state_dict(state_dict, strict=False)
    if unexpected or [k for k in missing if "lora_" not in k]:
        raise RuntimeError(
            f"export: weights do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model = skeleton.merge_and_unload() if hasattr(skeleton, "merge_and_unload") else skeleton
    # the source checkpoint's dtype, tokenizer files and generation_config.json go with the weights
    save_like_source(model, tokenizer, model.config._name_or_path, out_dir)


def merged_state(peft_model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PEFT state dict -> the plain HF state dict of the merged model.

    Adds each LoRA layer's delta, scaling * B @ A, to a copy of its base weight and drops the adapter
    keys. The delta is computed from `state` (the gathered full weights), never from the live module,
    so it works under ZeRO-3, whose live parameters are shards; the live weights are never merged and
    unmerged in place either, which in bf16 would drift a little at every sync.
    """
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import transpose

    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and module.active_adapters:
            key = f"{name}.base_layer.weight"
            merged = state[key].float()
            for adapter in module.active_adapters:
                a = state[f"{name}.lora_A.{adapter}.weight"].float()  # [r, in]
                b = state[f"{name}.lora_B.{adapter}.weight"].float()  # [out, r]
                merged += transpose(b @ a, module.fan_in_fan_out) * module.scaling[adapter]
            state[key] = merged.to(state[key].dtype)
    return {
        k.removeprefix("base_model.model.").replace(".base_layer.", "."): v
        for k, v in state.items()
        if "lora_" not in k
    }


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum floats over ranks (on the GPU under NCCL, which cannot reduce CPU tensors)."""
    if not dist.is_initialized():
        return list(values)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_reduce_mean(values: list[float]) -> list[float]:
    """Average floats over ranks (each rank's numbers weigh the same)."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    return [v / world for v in all_reduce_sum(values)]
