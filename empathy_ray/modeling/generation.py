"""Batch generation from a saved model: vLLM by default, transformers `generate` only when named.

Used for held-out evaluation (SFT validity, the eval suite). The RL rollout workers hold their own
long-lived vLLM engine; `vllm_engine` is the one place that knows how to start one on CPU or GPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Engine = Literal["vllm", "transformers"]


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    logprobs: list[float] | None = None  # sampling logprob of each generated token


def _cpu_only() -> bool:
    import torch

    return not torch.cuda.is_available()


def cpu_engine_kwargs() -> dict:
    """vLLM engine arguments for a CPU-only machine; {} when CUDA is there.

    Eager mode skips minutes of compilation, fp32 avoids the AMX permission dance bf16 needs on
    this CPU, and a 1 GiB KV cache leaves memory for the other roles on a laptop.
    """
    if not _cpu_only():
        return {}
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # No chunked prefill: a prompt split over steps makes vLLM rewind a seeded request's generator,
    # which CPU generators cannot do ("CPU Generator does not use offset": 64 prompts of ~100 tokens).
    return {
        "enforce_eager": True,
        "dtype": "float32",
        "gpu_memory_utilization": 0.3,
        "enable_chunked_prefill": False,
    }


def vllm_engine(
    model_dir: str, seed: int = 0, max_model_len: int = 2048, tensor_parallel_size: int = 1, **kw
):
    """Start a vLLM `LLM` in this process. On CPU: in-process engine, eager mode, small KV cache."""
    if _cpu_only():
        # In-process: ~3 s to start instead of 25-60 s (ENVIRONMENT.md).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        kw = {**cpu_engine_kwargs(), **kw}
    from vllm import LLM

    llm = LLM(
        model=model_dir,
        seed=seed,
        max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        **kw,
    )
    log.info("vLLM engine up for %s (%s)", model_dir, "cpu" if _cpu_only() else "cuda")
    return llm


def generate(
    model_dir: str,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    engine: Engine = "vllm",
) -> list[Completion]:
    """One completion per prompt (greedy when temperature is 0)."""
    log.info("generation engine: %s, %d prompts, model %s", engine, len(prompts), model_dir)
    if engine == "vllm":
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        llm = vllm_engine(model_dir, seed=seed)
        params = SamplingParams(temperature=temperature, max_tokens=max_new_tokens, seed=seed)
        outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        return [Completion(text=o.outputs[0].text, token_ids=list(o.outputs[0].token_ids)) for o in outs]
    if engine == "transformers":
        return _hf_generate(model_dir, prompts, max_new_tokens, temperature, seed)
    raise ValueError(f"unknown generation engine {engine!r}: use 'vllm' or 'transformers'")


def _hf_generate(model_dir, prompts, max_new_tokens, temperature, seed) -> list[Completion]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from empathy_ray.modeling.batching import pad_batch

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    out: list[Completion] = []
    for i in range(0, len(prompts), 16):
        chunk = prompts[i : i + 16]
        ids = pad_batch(chunk, tok.pad_token_id, pad_left=True)
        mask = (
            torch.arange(ids.shape[1])[None, :]
            >= (ids.shape[1] - torch.tensor([len(p) for p in chunk]))[:, None]
        ).long()
        with torch.no_grad():
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=None,
                top_k=0 if temperature > 0 else None,  # transformers would apply top-k 50 otherwise
                pad_token_id=tok.pad_token_id,
            )
        for row in gen[:, ids.shape[1] :].tolist():
            if tok.eos_token_id in row:
                row = row[: row.index(tok.eos_token_id)]
            out.append(Completion(text=tok.decode(row, skip_special_tokens=True), token_ids=row))
    return out
