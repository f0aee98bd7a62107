"""Rollout workers: G sampled answers per prompt from a long-lived engine the learner updates in place.

`RolloutEngine` is a plain class (usable and testable without Ray); `make_rollout_workers` wraps it
in Ray actors. vLLM is the engine; transformers `generate` runs only when `rollout.engine` names it,
and "simulated" (no model, a fixed delay per decoding step) only in the orchestration benchmark.

Conventions every consumer relies on:
- `response_ids` are exactly the generated tokens, including the final EOS when the engine stopped
  on it: the learner must be taught to stop, so EOS is a token it gets credit for.
- `logprobs[t]` is the logprob of `response_ids[t]` under the distribution it was sampled from
  (after temperature and top-p), so at temperature 1 and top-p 1 it equals log_softmax(logits).
- Sampling is seeded per prompt from (run seed, step, prompt index), and vLLM seeds sample j of a
  prompt with that seed + j: the same weights give the same samples on any worker, before and after
  a resume. On GPUs this costs vLLM a per-request generator loop in sampling.
- A restarted actor comes back with the checkpoint's weights and `weight_version` 0: the driver
  must publish the current weights to it again before using its samples.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from empathy_ray.actors.vllm_ext import checksum
from empathy_ray.config import RolloutConfig
from empathy_ray.domain.rollouts import Sample

log = logging.getLogger(__name__)

VLLM_EXTENSION = "empathy_ray.actors.vllm_ext.WeightSyncExtension"
_HF_SCORES_BUDGET = 1 << 30  # bytes of fp32 scores transformers `generate` may hold per call

NamedTensors = dict[str, torch.Tensor] | list[tuple[str, torch.Tensor]]


def request_seed(seed: int, step: int, prompt_index: int) -> int:
    """A well-mixed 62-bit seed; vLLM seeds the G children of a request with seed + j."""
    digest = hashlib.blake2b(f"{seed}/{step}/{prompt_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 2


@dataclass
class _Draw:
    """One generated answer, before it gets its uid."""

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str


class _VllmBackend:
    def __init__(self, model_dir: str, cfg: RolloutConfig, seed: int):
        from empathy_ray.modeling.generation import vllm_engine

        self.cfg = cfg
        self.llm = vllm_engine(
            model_dir,
            seed=seed,
            max_model_len=cfg.max_model_len,
            tensor_parallel_size=cfg.tensor_parallel_size,
            worker_extension_cls=VLLM_EXTENSION,
            logprobs_mode="processed_logprobs",  # the distribution actually sampled from
        )

    def sample(self, prompts: list[list[int]], group_size: int, seeds: list[int]) -> list[list[_Draw]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [
            SamplingParams(
                n=group_size,
                temperature=self.cfg.temperature,
                top_p=self.cfg.top_p,
                max_tokens=self.cfg.max_new_tokens,
                logprobs=0,  # only the sampled token's logprob
                seed=s,
            )
            for s in seeds
        ]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        groups = []
        for out in outs:
            draws = []
            for c in sorted(out.outputs, key=lambda c: c.index):
                ids = list(c.token_ids)
                lps = [c.logprobs[t][tok].logprob for t, tok in enumerate(ids)]
                draws.append(_Draw(ids, lps, c.text, c.finish_reason or ""))
            groups.append(draws)
        return groups

    def load(self, named: list[tuple[str, torch.Tensor]]) -> None:
        self._load_rpc("er_load_weights", named)

    def receive_collective(self, buckets: list[list[tuple[str, str, list[int]]]]) -> None:
        self._load_rpc("er_receive_collective", buckets)

    def _load_rpc(self, method: str, payload: list) -> None:
        self.llm.collective_rpc(method, args=(payload,))
        self.llm.reset_prefix_cache()  # cached prompt KV was computed with the old weights

    def checksum(self) -> dict[str, float]:
        return self.llm.collective_rpc("er_checksum")[0]  # rank 0's shard: equals the model at TP=1


class _HfBackend:
    def __init__(self, model_dir: str, cfg: RolloutConfig, seed: int):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = "auto" if self.device.type == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        eos = self.model.generation_config.eos_token_id
        self.stop_ids = {self.tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}

    def sample(self, prompts: list[list[int]], group_size: int, seeds: list[int]) -> list[list[_Draw]]:
        row_bytes = self.model.config.vocab_size * self.cfg.max_new_tokens * 4 * group_size
        chunk = max(1, _HF_SCORES_BUDGET // row_bytes)
        groups: list[list[_Draw]] = []
        for start in range(0, len(prompts), chunk):
            groups += self._sample_chunk(prompts[start : start + chunk], group_size, seeds[start])
        return groups

    @torch.no_grad()
    def _sample_chunk(self, prompts: list[list[int]], group_size: int, seed: int) -> list[list[_Draw]]:
        from empathy_ray.modeling.batching import pad_batch

        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        ids = pad_batch(prompts, pad, pad_left=True).to(self.device)
        lengths = torch.tensor([len(p) for p in prompts], device=self.device)
        mask = (
            torch.arange(ids.shape[1], device=self.device)[None, :] >= ids.shape[1] - lengths[:, None]
        ).long()
        greedy = self.cfg.temperature <= 0
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=not greedy,
                temperature=None if greedy else self.cfg.temperature,
                top_p=None if greedy else self.cfg.top_p,
                top_k=0,  # transformers otherwise applies its default top-k of 50
                num_return_sequences=group_size,
                max_new_tokens=self.cfg.max_new_tokens,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=pad,
                output_scores=True,  # processed scores: after temperature and top-p, like vLLM's
                return_dict_in_generate=True,
            )
        new = out.sequences[:, ids.shape[1] :]
        logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in out.scores], dim=1)
        chosen = logprobs.gather(-1, new[..., None]).squeeze(-1)
        groups = []
        for i in range(len(prompts)):
            draws = []
            for row in range(
                i * group_size, (i + 1) * group_size
            ):  # generate repeats each prompt G times in a row
                toks = new[row].tolist()
                stop = next((t for t, tok in enumerate(toks) if tok in self.stop_ids), None)
                n = len(toks) if stop is None else stop + 1
                text = self.tok.decode(toks[:n], skip_special_tokens=True)
                draws.append(
                    _Draw(toks[:n], chosen[row, :n].tolist(), text, "length" if stop is None else "stop")
                )
            groups.append(draws)
        return groups

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

    def sample(self, prompts: list[list[int]], group_size: int, seeds: list[int]) -> list[list[_Draw]]:
        n = self.cfg.max_new_tokens
        time.sleep(n * self.cfg.simulated_step_delay_s)
        groups = []
        for seed in seeds:
            rng = random.Random(seed)
            groups.append(
                [
                    _Draw([rng.randrange(1, 1000) for _ in range(n)], [-1.0] * n, "", "length")
                    for _ in range(group_size)
                ]
            )
        return groups

    def load(self, named: list[tuple[str, torch.Tensor]]) -> None:
        self.loaded = checksum(named)

    def checksum(self) -> dict[str, float]:
        return self.loaded


class RolloutEngine:
    """One engine, G answers per prompt, weights replaced in place by `update_weights`."""

    def __init__(self, model_dir: str | Path, cfg: RolloutConfig, seed: int = 0):
        from empathy_ray.runtime.process import setup_process

        setup_process()  # inside a Ray actor: cache folders and INFO logging, as every entry point has
        self.cfg = cfg
        self.seed = seed
        self.weight_version = 0
        log.info("rollout engine: %s for %s (seed %d)", cfg.engine, model_dir, seed)
        if cfg.engine == "vllm":
            self._backend: _VllmBackend | _HfBackend | _SimulatedBackend = _VllmBackend(
                str(model_dir), cfg, seed
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
        """Load HF-named tensors (all of the model or a subset) into the running engine; returns bytes loaded."""
        named = list(named_tensors.items()) if isinstance(named_tensors, dict) else list(named_tensors)
        self._backend.load(named)
        self.weight_version = version
        log.info("rollout weights now version %d (%d tensors)", version, len(named))
        return sum(t.numel() * t.element_size() for _, t in named)

    def weights_checksum(self) -> dict[str, float]:
        """`vllm_ext.checksum` of the weights inside the engine; compare with `checksums_match`."""
        return self._backend.checksum()

    def get_weight_version(self) -> int:
        """For Ray callers, who cannot read attributes of an actor."""
        return self.weight_version

    def init_collective(self, host: str, port: int, rank_offset: int, world_size: int, backend: str) -> None:
        """Join `sync.CollectiveSync`'s group (vLLM engines only; nccl on GPUs, gloo on CPUs)."""
        args = (host, port, rank_offset, world_size, backend)
        self._vllm("init_collective").llm.collective_rpc("er_init_collective", args=args)

    def receive_collective(self, buckets: list[list[tuple[str, str, list[int]]]], version: int) -> None:
        """The receiving half of `CollectiveSync.publish`: names, dtypes and shapes per bucket come by Ray."""
        self._vllm("receive_collective").receive_collective(buckets)
        self.weight_version = version
        n = sum(len(b) for b in buckets)
        log.info("rollout weights now version %d (%d tensors by broadcast)", version, n)

    def _vllm(self, what: str) -> _VllmBackend:
        if not isinstance(self._backend, _VllmBackend):
            raise RuntimeError(
                f"{what}: the NCCL weight sync needs rollout.engine=vllm, not {self.cfg.engine!r}"
            )
        return self._backend


def make_rollout_workers(
    model_dir: str | Path,
    cfg: RolloutConfig,
    seed: int = 0,
    placement_group: Any = None,
    first_bundle: int = 0,
    ready_timeout_s: float = 900.0,
) -> list[Any]:
    """cfg.num_workers `RolloutEngine` actors, returned once every engine is up (so a broken model
    folder fails here, and the first sync's timing is not engine start-up). Every worker gets the
    run's seed: a request's samples then depend only on (seed, step, prompt index), never on which
    worker the load balancing picked, so a run and its resume draw the same tokens. Inside a
    placement group worker i sits in bundle first_bundle + i. A dead worker restarts (twice at most);
    its failed call is not retried, so the driver sees the error and re-dispatches."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    actor_cls = ray.remote(RolloutEngine)
    workers = []
    for i in range(cfg.num_workers):
        opts: dict[str, Any] = {
            "num_cpus": cfg.num_cpus,
            "num_gpus": cfg.num_gpus,
            "resources": dict(cfg.resources),
            "max_restarts": 2,
        }
        if placement_group is not None:
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group, placement_group_bundle_index=first_bundle + i
            )
        workers.append(actor_cls.options(**opts).remote(str(model_dir), cfg, seed))
    ray.get([w.get_weight_version.remote() for w in workers], timeout=ready_timeout_s)
    log.info("%d rollout workers up (%s engine)", len(workers), cfg.engine)
    return workers
