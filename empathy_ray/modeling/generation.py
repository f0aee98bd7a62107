"""The one way to generate from a saved model: a generator built once, on vLLM or transformers.

vLLM is the engine; transformers `generate` runs only when named. Rollout workers, SFT validity and
the eval suite all get the same `Completion`, whatever the engine:
- `token_ids` are exactly the generated tokens, including the final stop token when generation
  stopped on one: the learner must be taught to stop, so EOS is a token it gets credit for.
- `text` is those tokens decoded without special tokens: what a reader sees.
- `logprobs[t]` (when asked for) is the logprob of `token_ids[t]` under the distribution it was
  sampled from (after temperature and top-p), so at temperature 1 and top-p 1 it is log_softmax.
- `finish_reason` is "stop" (a stop token: the tokenizer's EOS or any EOS of the checkpoint's
  config.json / generation_config.json) or "length" (`max_new_tokens` reached).
The checkpoint gives the stop tokens and nothing else: every sampling parameter (temperature, top-p,
no top-k, no repetition penalty) comes from `Sampling`, never from a `generation_config.json` default,
so what the rollout samples is the distribution the learner scores. Ids past the tokenizer (the
padded rows of a Qwen-style embedding) are never sampled. What an engine uses is logged once.
Sampling is seeded per prompt; the n samples of a prompt are drawn from that one seed (vLLM seeds
sample j with seed + j; transformers seeds a whole chunk of prompts with its first prompt's seed).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from empathy_ray.modeling.vllm_version import check_vllm_version

if TYPE_CHECKING:
    import torch
    from vllm.lora.request import LoRARequest

log = logging.getLogger(__name__)

Engine = Literal["vllm", "transformers"]
_HF_SCORES_BUDGET = 1 << 30  # bytes of fp32 scores transformers `generate` may hold per call


@dataclass
class Completion:
    """One generated answer (see the module docstring for what each field holds)."""

    token_ids: list[int]
    logprobs: list[float] | None
    text: str
    finish_reason: str


@dataclass(frozen=True)
class Sampling:
    """How to draw: greedy when `temperature` is 0; no top-k and no repetition penalty on either
    engine, whatever the checkpoint's generation_config.json says."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    logprobs: bool = False  # return each generated token's sampling logprob


@dataclass(frozen=True)
class Vocabulary:
    """What a checkpoint says about its tokens: the ids that end a reply, and how many ids the tokenizer
    has (embedding rows past it are padding, never sampled)."""

    stop_ids: tuple[int, ...]
    tokenizer_size: int
    model_rows: int

    @classmethod
    def of(cls, model_dir: str, tokenizer) -> Vocabulary:
        """Stop ids: the tokenizer's EOS and every eos_token_id of config.json and generation_config.json."""
        from transformers import AutoConfig, GenerationConfig

        config = AutoConfig.from_pretrained(model_dir)
        eos: list = [tokenizer.eos_token_id, config.eos_token_id]
        try:
            eos.append(GenerationConfig.from_pretrained(model_dir).eos_token_id)
        except OSError:  # no generation_config.json: config.json and the tokenizer decide
            pass
        flat = {i for e in eos for i in (e if isinstance(e, list) else [e]) if i is not None}
        text = config.get_text_config()
        return cls(tuple(sorted(flat)), len(tokenizer), text.vocab_size)

    def padded_ids(self) -> list[int]:
        """Embedding rows with no token behind them (Qwen pads 151,665 ids to 151,936 rows)."""
        return list(range(self.tokenizer_size, self.model_rows))

    def allowed_ids(self) -> list[int] | None:
        """vLLM's `allowed_token_ids` that keeps padded rows from being sampled; None when there are none."""
        return list(range(self.tokenizer_size)) if self.model_rows > self.tokenizer_size else None


def _log_once(seen: set, engine: str, sampling: Sampling, vocab: Vocabulary) -> None:
    """One INFO line per distinct sampling setting of an engine: what it samples with and stops on."""
    if sampling in seen:
        return
    seen.add(sampling)
    log.info(
        "%s sampling: temperature %s, top_p %s, top_k none, repetition_penalty 1.0, max_new_tokens %d "
        "(from the config; checkpoint sampling defaults ignored); stop ids %s; %d padded ids masked",
        engine,
        sampling.temperature,
        sampling.top_p,
        sampling.max_new_tokens,
        list(vocab.stop_ids),
        len(vocab.padded_ids()),
    )


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


def engine_worker_in_engine_process(tensor_parallel_size: int) -> None:
    """On CPU, an `AsyncLLM` (serve) runs its model worker inside its engine process.

    AsyncLLM always starts an engine process; with multiprocessing on (vLLM's default), vLLM on CPU also
    starts the worker in a third process. Measured here, tiny model: the engine was up in 13 s instead of
    28 s, with a third less CPU, and shut down at once instead of in 14 s; the same seeded tokens. A
    tensor-parallel engine keeps its worker processes. Call before the engine's config is built."""
    if _cpu_only() and tensor_parallel_size == 1:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def tp_executor() -> str:
    """vLLM's executor for a tensor-parallel engine, chosen here rather than left to vLLM.

    The engine runs inside a Ray actor whose one placement-group bundle holds all its devices
    (`rl.rollout.num_gpus` = `tensor_parallel_size`, config/tree.py checks it). Left alone, vLLM picks its
    Ray executor whenever it finds a current placement group, and that executor wants one bundle per
    device of its own; `mp` starts the TP workers as child processes of the actor, on the devices Ray
    already gave it, so the engine starts wherever the actor was placed (one node, as TP needs)."""
    return "mp"


def vllm_engine_args(
    model_dir: str, seed: int = 0, max_model_len: int = 2048, tensor_parallel_size: int = 1, **kw
) -> dict:
    """The arguments `vllm_engine` gives vLLM's `LLM` (and `EngineArgs`): the caller's `kw` over the
    CPU defaults (an explicit enforce_eager wins over the CPU's eager default)."""
    if _cpu_only():
        kw = {**cpu_engine_kwargs(), **kw}
    if tensor_parallel_size > 1:
        kw = {"distributed_executor_backend": tp_executor(), **kw}
        if _cpu_only():
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_thread_binding(tensor_parallel_size))
    return {
        "model": model_dir,
        "seed": seed,
        "generation_config": "vllm",  # vLLM's neutral defaults, not the checkpoint's sampling settings
        "max_model_len": max_model_len,
        "tensor_parallel_size": tensor_parallel_size,
        **kw,
    }


def cpu_thread_binding(ranks: int) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for `ranks` CPU workers: this process's CPUs split in contiguous parts.

    vLLM's automatic binding gives each TP rank a NUMA node of its own and refuses to start when the
    machine has fewer nodes than ranks (a laptop, a one-socket VM): the ranks share the node instead."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < ranks:
        raise ValueError(
            f"tensor_parallel_size={ranks} (rl.rollout or serve) needs at least {ranks} CPUs on CPU-only vLLM; "
            f"this process may use {len(cpus)}: lower it or set VLLM_CPU_OMP_THREADS_BIND yourself"
        )
    parts = [cpus[i * len(cpus) // ranks : (i + 1) * len(cpus) // ranks] for i in range(ranks)]
    return "|".join(",".join(map(str, part)) for part in parts)


def vllm_engine(model_dir: str, seed: int = 0, **kw):
    """Start a vLLM `LLM` in this process. On CPU: in-process engine, eager mode, small KV cache."""
    check_vllm_version()  # the weight-sync hooks follow vLLM internals: refuse another release up front
    if _cpu_only():
        # In-process: ~3 s to start instead of 25-60 s with a separate engine process.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    llm = LLM(**vllm_engine_args(model_dir, seed, **kw))
    log.info("vLLM engine up for %s (%s)", model_dir, "cpu" if _cpu_only() else "cuda")
    return llm


class VllmGenerator:
    """A long-lived vLLM engine; `llm` stays reachable for weight updates (rollout workers)."""

    def __init__(self, model_dir: str, seed: int = 0, max_model_len: int = 2048, **engine_kw):
        self.llm = vllm_engine(model_dir, seed=seed, max_model_len=max_model_len, **engine_kw)
        self.vocab = Vocabulary.of(model_dir, self.llm.get_tokenizer())
        self._allowed = self.vocab.allowed_ids()
        self._logged: set[Sampling] = set()

    def sample(
        self,
        prompts: list[list[int]],
        sampling: Sampling,
        n: int,
        seeds: list[int],
        lora: LoRARequest | None = None,
    ) -> list[list[Completion]]:
        """`n` completions for each prompt, in sample order; prompt i is seeded with seeds[i]; `lora`:
        a vLLM `LoRARequest` applied to every prompt (an engine started with enable_lora)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        _log_once(self._logged, "vLLM", sampling, self.vocab)
        params = [
            SamplingParams(
                n=n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=0,  # 0: none
                min_p=0.0,
                repetition_penalty=1.0,
                presence_penalty=0.0,
                frequency_penalty=0.0,
                stop_token_ids=list(self.vocab.stop_ids),  # with generation_config="vllm", the only EOS list
                allowed_token_ids=self._allowed,  # None when the embedding has no padded rows
                max_tokens=sampling.max_new_tokens,
                logprobs=0 if sampling.logprobs else None,  # 0: only the sampled token's logprob
                seed=s,
            )
            for s in seeds
        ]
        outs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False, lora_request=lora
        )
        return [
            [_from_vllm(c, sampling.logprobs) for c in sorted(o.outputs, key=lambda c: c.index)] for o in outs
        ]


def _from_vllm(c, with_logprobs: bool) -> Completion:
    ids = list(c.token_ids)
    lps = [c.logprobs[t][tok].logprob for t, tok in enumerate(ids)] if with_logprobs else None
    return Completion(ids, lps, c.text, c.finish_reason or "")


class HfGenerator:
    """transformers `generate` with vLLM's conventions: every EOS of the tokenizer and the checkpoint
    stops a row, and the stop token is kept.

    The checkpoint's generation config is replaced by one holding only its stop and pad ids:
    `generate` fills every argument left unset from the model's generation config, so a checkpoint's
    `repetition_penalty` or `top_k` would otherwise apply silently."""

    def __init__(self, model_dir: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessorList

        from empathy_ray.modeling.tokenizer import pad_id

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = "auto" if self.device.type == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.vocab = Vocabulary.of(model_dir, self.tok)
        self.stop_ids = set(self.vocab.stop_ids)
        self.pad_id = pad_id(self.tok)
        self.model.generation_config = GenerationConfig(
            eos_token_id=list(self.vocab.stop_ids), pad_token_id=self.pad_id
        )
        self._logged: set[Sampling] = set()
        self._processors = LogitsProcessorList([_mask_from(self.vocab.tokenizer_size)])

    def sample(
        self, prompts: list[list[int]], sampling: Sampling, n: int, seeds: list[int]
    ) -> list[list[Completion]]:
        """`n` completions for each prompt; prompts go in chunks whose scores fit `_HF_SCORES_BUDGET`."""
        row_bytes = self.model.config.vocab_size * sampling.max_new_tokens * 4 * n
        chunk = max(1, _HF_SCORES_BUDGET // row_bytes)
        groups: list[list[Completion]] = []
        for start in range(0, len(prompts), chunk):
            groups += self._sample_chunk(prompts[start : start + chunk], sampling, n, seeds[start])
        return groups

    def _sample_chunk(
        self, prompts: list[list[int]], sampling: Sampling, n: int, seed: int
    ) -> list[list[Completion]]:
        import torch

        from empathy_ray.modeling.batching import pad_with_mask

        _log_once(self._logged, "transformers", sampling, self.vocab)
        ids, mask = pad_with_mask(prompts, self.pad_id, left=True)
        greedy = sampling.temperature <= 0
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                do_sample=not greedy,
                # greedy: no warpers to set (the fresh generation config above holds no defaults)
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None if greedy else 0,  # not transformers' default top-k of 50: vLLM has none
                repetition_penalty=1.0,  # applies to greedy too
                logits_processor=self._processors,
                num_return_sequences=n,
                max_new_tokens=sampling.max_new_tokens,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=self.pad_id,
                output_scores=sampling.logprobs,  # processed scores: after temperature and top-p, like vLLM's
                return_dict_in_generate=True,
            )
        new = out.sequences[:, ids.shape[1] :]  # [len(prompts) * n, T]: each prompt's n rows in a row
        chosen = None
        if sampling.logprobs:
            logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1)
            chosen = logprobs.gather(-1, new[..., None]).squeeze(-1)  # [len(prompts) * n, T]
        rows = [
            self._completion(new[r].tolist(), None if chosen is None else chosen[r]) for r in range(len(new))
        ]
        return [rows[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _completion(self, toks: list[int], logprobs: torch.Tensor | None) -> Completion:
        """Cut a row after its first stop token (the rest is padding)."""
        stop = next((t for t, tok in enumerate(toks) if tok in self.stop_ids), None)
        n = len(toks) if stop is None else stop + 1
        return Completion(
            toks[:n],
            None if logprobs is None else logprobs[:n].tolist(),
            self.tok.decode(toks[:n], skip_special_tokens=True),
            "length" if stop is None else "stop",
        )


def _mask_from(first_padded: int):
    """A logits processor: ids from `first_padded` on (padded embedding rows) get -inf, so they are never
    sampled. A slice, not transformers' `suppress_tokens`, which tests every id of the vocabulary at
    every step (4x the cost of a 100k-vocabulary step here)."""

    def mask(input_ids, scores):
        scores[:, first_padded:] = float("-inf")
        return scores

    return mask


Generator = VllmGenerator | HfGenerator


def make_generator(model_dir: str, engine: Engine = "vllm", seed: int = 0, **vllm_kw) -> Generator:
    """The generator for `engine`; `seed` and `vllm_kw` are vLLM engine arguments."""
    log.info("generation engine: %s, model %s", engine, model_dir)
    if engine == "vllm":
        return VllmGenerator(model_dir, seed=seed, **vllm_kw)
    if engine == "transformers":
        return HfGenerator(model_dir)
    raise ValueError(f"unknown generation engine {engine!r}: use 'vllm' or 'transformers'")
