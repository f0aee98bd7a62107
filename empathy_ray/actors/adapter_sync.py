"""LoRA rollouts without full-weight syncs (rl.sync_lora=adapter).

With a LoRA learner only the adapter changes, so each vLLM rollout engine loads the base model once
with LoRA enabled, and every sync ships the adapter's A and B matrices alone (kilobytes to a few
hundred megabytes, against the whole model): the learner gathers them under the names PEFT saves
them with (`gather_adapter`), the object store carries them like any state dict, and the worker
writes them as a PEFT folder and registers it with vLLM (`AdapterSlot`), whose generate calls then
carry the newest version's `LoRARequest`. The base stays the checkpoint the engine started from,
which is the learner's frozen base: the rollout policy is base + scaling * B @ A, as the learner's.

vLLM 0.32 loads a LoRA adapter only from a folder (`LoRARequest.lora_path`: adapter_config.json and
adapter_model.safetensors, read by `LoRAModel.from_local_checkpoint`), so each version is written to
a local temporary folder first, atomically, and read once when it is registered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from empathy_ray.config import LoraConfig
from empathy_ray.domain.files import atomic_dir

log = logging.getLogger(__name__)

# vLLM's allowed max_lora_rank values (vllm.config.lora.MaxLoRARanks)
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

# PEFT's live name ...q_proj.lora_A.<adapter name>.weight -> its saved name ...q_proj.lora_A.weight
_LIVE_NAME = re.compile(r"\.(lora_[AB])\.[^.]+\.weight$")


def vllm_lora_args(lora: LoraConfig) -> dict[str, Any]:
    """vLLM engine arguments for adapter sync: LoRA on, one adapter at a time, rank slots >= r."""
    rank = next((r for r in VLLM_LORA_RANKS if r >= lora.r), None)
    if rank is None:
        raise ValueError(f"rl.learner.lora.r={lora.r}: vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}")
    return {"enable_lora": True, "max_lora_rank": rank, "max_loras": 1, "max_cpu_loras": 1}


def peft_adapter_config(lora: LoraConfig) -> dict[str, Any]:
    """adapter_config.json of the learner's adapter (`train.engine.apply_lora` builds it from the
    same keys): what vLLM reads to scale B @ A by lora_alpha / r."""
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": list(lora.target_modules),
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
    }


def gather_adapter(engine: Any) -> dict[str, torch.Tensor] | None:
    """The LoRA tensors of a DeepSpeed-wrapped PEFT model under PEFT's saved names
    (base_model.model.<module>.lora_A.weight), on CPU, on rank 0; None elsewhere.

    Collective under ZeRO-3 (every rank must call it), where only the adapter's parameters are
    gathered, never the base; under ZeRO-2 every rank holds them whole."""
    named = [(n, p) for n, p in engine.module.named_parameters() if "lora_" in n]
    if not named:
        raise RuntimeError("gather_adapter: the learner has no LoRA parameters (rl.learner.lora.enabled?)")
    gathered: contextlib.AbstractContextManager = contextlib.nullcontext()
    if engine.zero_optimization_stage() == 3:
        import deepspeed

        gathered = deepspeed.zero.GatheredParameters([p for _, p in named], modifier_rank=None)
    with gathered:
        if engine.global_rank != 0:
            return None
        return {_LIVE_NAME.sub(r".\1.weight", n): p.detach().to("cpu").clone() for n, p in named}


class AdapterSlot:
    """A rollout engine's current adapter: each version is written as a PEFT folder and registered
    with vLLM under a fresh id (vLLM's LoRA and prefix caches key on it), the previous one removed.
    `request` is what generate calls pass (None until the first sync: the base, which a fresh LoRA
    with B = 0 equals)."""

    def __init__(self, lora: LoraConfig) -> None:
        self.config = peft_adapter_config(lora)
        self._root = tempfile.TemporaryDirectory(prefix="er-lora-")
        self._loads = 0
        self.request: Any = None  # vllm.lora.request.LoRARequest

    def load(self, llm: Any, named: list[tuple[str, torch.Tensor]], version: int) -> None:
        """Write the adapter, register it with the engine and retire the previous one."""
        from safetensors.torch import save_file
        from vllm.lora.request import LoRARequest

        bad = [n for n, _ in named if not n.endswith((".lora_A.weight", ".lora_B.weight"))]
        if bad:
            raise KeyError(f"adapter sync: not LoRA A/B tensors (rl.sync_lora=adapter): {bad[:5]}")
        self._loads += 1
        path = Path(self._root.name) / f"v{version}-{self._loads}"
        with atomic_dir(path) as tmp:
            (tmp / "adapter_config.json").write_text(json.dumps(self.config), encoding="utf-8")
            save_file({n: t.detach().contiguous() for n, t in named}, str(tmp / "adapter_model.safetensors"))
        request = LoRARequest(f"policy-v{version}-{self._loads}", self._loads, str(path))
        old, self.request = self.request, None
        if old is not None:
            llm.llm_engine.remove_lora(old.lora_int_id)
            shutil.rmtree(old.lora_path, ignore_errors=True)
        llm.llm_engine.add_lora(request)  # reads the folder now: a bad adapter fails the sync, not a rollout
        self.request = request
