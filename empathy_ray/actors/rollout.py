"""Rollout workers: G sampled answers per prompt from a long-lived engine the learner updates in place.

`RolloutEngine` is a plain class (usable and testable without Ray); the RL roles run N of them as
Ray actors (`actors.group.ActorGroup`). vLLM is the engine; transformers `generate` runs only when `rollout.engine` names it,
and "simulated" (no model, a fixed delay per decoding step) only in the orchestration benchmark.

Conventions every consumer relies on:
- `response_ids`, `logprobs`, `text` and `finish_reason` are the engine's `Completion`
  (`modeling/generation.py`): the final EOS is kept, with the logprob it was sampled with.
- Sampling is seeded per prompt from (run seed, step, prompt index), and vLLM seeds sample j of a
  prompt with that seed + j: the same weights give the same samples on any worker, before and after
  a resume. On GPUs this costs vLLM a per-request generator loop in sampling.
- A restarted actor comes back with the checkpoint's weights and `weight_version` 0: the driver
  must publish the current weights to it again before using its samples.
- Given the learner's LoRA config (rl.sync_lora resolved to adapter), a vLLM engine keeps its base
  weights and takes each sync as an adapter (actors/adapter_sync.py), applied to every generate call.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from pathlib import Path

import torch

from empathy_ray.actors.adapter_sync import AdapterSlot, vllm_lora_args
from empathy_ray.actors.vllm_ext import checksum
from empathy_ray.config import LoraConfig, RolloutConfig
from empathy_ray.domain.rollouts import Sample
from empathy_ray.modeling.generation import Completion, HfGenerator, Sampling, VllmGenerator

log = logging.getLogger(__name__)

VLLM_EXTENSION = "empathy_ray.actors.vllm_ext.WeightSyncExtension"

NamedTensors = dict[str, torch.Tensor] | list[tuple[str, torch.Tensor]]


def request_seed(seed: int, step: int, prompt_index: int) -> int:
    """A well-mixed 62-bit seed; vLLM seeds the G children of a request with seed + j."""
    digest = hashlib.blake2b(f"{seed}/{step}/{prompt_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


def _sampling(cfg: RolloutConfig) -> Sampling:
    """Rollout sampling: the learner's importance ratios need every token's sampling logprob."""
    return Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p, logprobs=True)


class _VllmBackend:
    def __init__(self, model_dir: str, cfg: RolloutConfig, seed: int, lora: LoraConfig | None = None):
        self.sampling = _sampling(cfg)
        extra: dict = {}
        self.adapter: AdapterSlot | None = None
        if lora is not None:
            extra = vllm_lora_args(lora)
            self.adapter = AdapterSlot(lora)
            if cfg.compile and not torch.cuda.is_available():
                log.warning("rl.rollout.compile=true: vLLM's CPU backend runs LoRA engines eager only")
            log.info("rollout engine: base weights loaded once, LoRA adapters synced (%s)", extra)
        self.gen = VllmGenerator(model_dir, seed=seed, **self.engine_args(cfg), **extra)
        self.llm = self.gen.llm

    @staticmethod
    def engine_args(cfg: RolloutConfig) -> dict:
        """What a rollout engine asks of vLLM beyond the model and seed."""
        return {
            "max_model_len": cfg.max_model_len,
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "worker_extension_cls": VLLM_EXTENSION,
            "logprobs_mode": "processed_logprobs",  # the distribution actually sampled from
            "enforce_eager": not cfg.compile,  # rl.rollout.compile
        }

    def sample(self, prompts: list[list[int]], group_size: int, seeds: list[int]) -> list[list[Completion]]:
        lora = self.adapter.request if self.adapter is not None else None
        return self.gen.sample(prompts, self.sampling, group_size, seeds, lora=lora)

    def load(self, named: list[tuple[str, torch.Tensor]]) -> None:
        self._load_rpc("er_load_weights", named)

    def load_adapter(self, named: list[tuple[str, torch.Tensor]], version: int) -> None:
        self.adapter.load(self.llm, named, version)
        self.llm.reset_prefix_cache()

    def receive_collective(self, buckets: list[list[tuple[str, str, list[int]]]]) -> None:
        self._load_rpc("er_receive_collective", buckets)

    def _load_rpc(self, method: str, payload: list) -> None:
        self.llm.collective_rpc(method, args=(payload,))
        self.llm.reset_prefix_cache()  # cached prompt KV was computed with the old weights

    def checksum(self) -> dict[str, float]:
        return self.llm.collective_rpc("er_checksum")[0]  # rank 0's shard: equals the model at TP=1


class _HfBackend:
    def __init__(self, model_dir: str, cfg: RolloutConfig, seed: int):
        self.sampling = _sampling(cfg)
        self.gen = HfGenerator(model_dir)
        self.model = self.gen.model

    def sample(self, prompts: list[list[int]], group_size: int, seeds: list[int]) -> list[list[Completion]]:
        return self.gen.sample(prompts, self.sampling, group_size, seeds)

    def load(self, named: list[tuple[str, torch.Tensor]]) -> None:
        result = self.model.load_state_dict(dict(named), strict=False)
        if result.unexpected_keys:
            raise KeyError(f"update_weights: names unknown to the model: {result.unexpected_keys[:5]}")

    def checksum(self) -> dict[str, float]:
        return checksum(self.model.named_parameters())


class _SimulatedBackend:
    """No model: every call decodes max_new_tokens steps at a fixed delay per step, whatever the batch
    (like a memory-bound engine at small batch). Measures the dispatch and Ray around an engine."""

    def __init__(self, cfg: RolloutConfig):
        self.cfg = cfg
        self.loaded: dict[str, float] = checksum([])

    def sample(self, prompts: list[list[int]], group_size: int, seeds: list[int]) -> list[list[Completion]]:
        n = self.cfg.max_new_tokens
        time.sleep(n * self.cfg.simulated_step_delay_s)
        groups = []
        for seed in seeds:
            rng = random.Random(seed)
            groups.append(
                [
                    Completion([rng.randrange(1, 1000) for _ in range(n)], [-1.0] * n, "", "length")
                    for _ in range(group_size)
                ]
            )
        return groups

    def load(self, named: list[tuple[str, torch.Tensor]]) -> None:
        self.loaded = checksum(named)

    def checksum(self) -> dict[str, float]:
        return self.loaded


class RolloutEngine:
    """One engine, G answers per prompt, weights replaced in place by `update_weights`; `lora`, the
    learner's LoRA config, when syncs ship only its adapter (rl.sync_lora; vLLM engines only)."""

    def __init__(
        self, model_dir: str | Path, cfg: RolloutConfig, seed: int = 0, lora: LoraConfig | None = None
    ):
        self.cfg = cfg
        self.seed = seed
        self.weight_version = 0
        self.adapter_sync = lora is not None
        log.info("rollout engine: %s for %s (seed %d)", cfg.engine, model_dir, seed)
        if self.adapter_sync and cfg.engine != "vllm":
            raise ValueError(f"adapter sync (rl.sync_lora) needs rollout.engine=vllm, not {cfg.engine!r}")
        if cfg.engine == "vllm":
            self._backend: _VllmBackend | _HfBackend | _SimulatedBackend = _VllmBackend(
                str(model_dir), cfg, seed, lora
            )
        elif cfg.engine == "transformers":
            self._backend = _HfBackend(str(model_dir), cfg, seed)
        elif cfg.engine == "simulated":
            self._backend = _SimulatedBackend(cfg)
        else:
            raise ValueError(f"rollout.engine={cfg.engine!r}: must be 'vllm', 'transformers' or 'simulated'")

    def generate(
        self, prompts: list[list[int]], group_size: int, step: int, prompt_offset: int = 0
    ) -> list[Sample]:
        """`group_size` samples for each prompt; prompt i of this call is prompt_offset + i of the step."""
        empty = [prompt_offset + i for i, p in enumerate(prompts) if not p]
        if empty:
            raise ValueError(f"generate step {step}: prompts {empty} have no tokens; every prompt needs one")
        if not prompts:  # more workers than prompts: this one has nothing to do
            return []
        seeds = [request_seed(self.seed, step, prompt_offset + i) for i in range(len(prompts))]
        groups = self._backend.sample(prompts, group_size, seeds)
        samples = []
        for i, (prompt, draws) in enumerate(zip(prompts, groups, strict=True)):
            for j, d in enumerate(draws):
                samples.append(
                    Sample(
                        uid=f"{step}-{prompt_offset + i}-{j}",
                        prompt_index=prompt_offset + i,
                        sample_index=j,
                        prompt_ids=list(prompt),
                        response_ids=d.token_ids,
                        logprobs=d.logprobs,
                        text=d.text,
                        finish_reason=d.finish_reason,
                        weight_version=self.weight_version,
                    )
                )
        return samples

    def update_weights(self, named_tensors: NamedTensors, version: int) -> int:
        """Load HF-named tensors (all of the model or a subset) into the running engine, or with adapter
        sync the learner's LoRA tensors (PEFT names) as the adapter of `version`; returns bytes loaded."""
        named = list(named_tensors.items()) if isinstance(named_tensors, dict) else list(named_tensors)
        if self.adapter_sync:
            self._vllm("adapter sync").load_adapter(named, version)
        else:
            self._backend.load(named)
        self.weight_version = version
        kind = "adapter tensors" if self.adapter_sync else "tensors"
        log.info("rollout weights now version %d (%d %s)", version, len(named), kind)
        return sum(t.numel() * t.element_size() for _, t in named)

    def weights_checksum(self) -> dict[str, float]:
        """`vllm_ext.checksum` of the weights inside the engine (with adapter sync: the base alone);
        compare with `checksums_match`."""
        return self._backend.checksum()

    def get_weight_version(self) -> int:
        """For Ray callers, who cannot read attributes of an actor."""
        return self.weight_version

    def init_collective(self, host: str, port: int, rank_offset: int, world_size: int, backend: str) -> None:
        """Join the learner's `weight_sync.Broadcaster` group (vLLM engines only; nccl on GPUs, gloo on CPUs)."""
        args = (host, port, rank_offset, world_size, backend)
        self._vllm("init_collective").llm.collective_rpc("er_init_collective", args=args)

    def receive_collective(self, buckets: list[list[tuple[str, str, list[int]]]], version: int) -> None:
        """The receiving half of `weight_sync.Broadcaster.broadcast`: names, dtypes and shapes per bucket come by Ray."""
        self._vllm("receive_collective").receive_collective(buckets)
        self.weight_version = version
        n = sum(len(b) for b in buckets)
        log.info("rollout weights now version %d (%d tensors by broadcast)", version, n)

    def _vllm(self, what: str) -> _VllmBackend:
        if not isinstance(self._backend, _VllmBackend):
            raise RuntimeError(f"{what} needs rollout.engine=vllm, not {self.cfg.engine!r}")
        return self._backend
