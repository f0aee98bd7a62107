"""Methods grafted onto every vLLM worker, so the rollout engine can swap its weights in place.

vLLM mixes this class into its worker class when `LLM(worker_extension_cls=...)` names it, and
`llm.collective_rpc("<method>", args=...)` then runs the method on every worker (one per tensor
parallel rank) next to the model. Names carry an `er_` prefix because vLLM refuses an extension
whose attribute already exists on the worker, and recent workers define `update_weights`.

`checksum` lives here too: it is computed inside the engine and on the learner's side with the
same code, so the two numbers can only differ because the weights differ.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator

import torch


def checksum(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> dict[str, float]:
    """Sum, sum of |x| and sum of x^2 over all values, accumulated in float64.

    Invariant to what vLLM does to a checkpoint: q/k/v and gate/up are fused into one tensor
    (same values, other layout), the vocabulary is padded with zero rows, and a tied LM head is
    the embedding itself. Tensors sharing storage (tied weights in an HF state dict) count once.
    """
    seen: dict[tuple[int, int], torch.Tensor] = {}  # holding the tensor keeps its address from being reused
    total = {"sum": 0.0, "abs_sum": 0.0, "sumsq": 0.0}
    for _, t in named_tensors:
        key = (t.data_ptr(), t.numel())
        if key in seen:
            continue
        seen[key] = t
        x = t.detach().to(torch.float64)
        total["sum"] += x.sum().item()
        total["abs_sum"] += x.abs().sum().item()
        total["sumsq"] += x.square().sum().item()
    return total


def checksums_match(a: dict[str, float], b: dict[str, float], rtol: float = 1e-9) -> bool:
    """Equal up to float64 summation order. The signed sum of random weights is near zero, so its
    tolerance is taken relative to the sum of absolute values rather than to itself."""
    scale = max(a["abs_sum"], b["abs_sum"])
    return all(
        math.isclose(a[k], b[k], rel_tol=rtol, abs_tol=rtol * scale) for k in ("sum", "abs_sum", "sumsq")
    )


def _engine_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every parameter as the engine computes with it.

    vLLM's CPU backend repacks linear weights into oneDNN/AMX kernel buffers and leaves an empty
    parameter behind; such a weight is read back through the layer's own kernel, W^T = linear(I).
    Multiplying by the identity is exact, so this sees precisely what generation uses.
    """
    for mod_name, mod in model.named_modules():
        for name, p in mod.named_parameters(recurse=False):
            if p.numel() == 0 and name == "weight" and hasattr(mod, "cpu_linear"):
                k = getattr(mod, "input_size_per_partition", None) or mod.input_size
                p = mod.cpu_linear(torch.eye(k, dtype=p.dtype), p, None).T
            yield f"{mod_name}.{name}", p


# vLLM's in-place reload warns "RotaryEmbedding: Failed to load weights" on every sync: the rotary
# cos/sin cache is a buffer computed from the config, never in a checkpoint, so the reload finds
# nothing to load for it and keeps the one it has (which is right). Logprob agreement after a sync
# is tested (test_rl); dropping this one line keeps a real load failure visible in the logs.
_RELOAD_LOGGER = "vllm.model_executor.model_loader.reload.layerwise"


class _RotaryReloadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith("RotaryEmbedding: Failed to load weights")


logging.getLogger(_RELOAD_LOGGER).addFilter(_RotaryReloadFilter())  # once, where vLLM imports us


class WeightSyncExtension:
    """Mixed into vLLM's worker: `self.model_runner`, `self.device` and `self.rank` are the worker's."""

    def _er_load(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """vLLM's in-place reload: unfuses kernel-format layers, runs the model's `load_weights`
        (which fuses q/k/v and gate/up and shards for TP), then redoes the per-layer processing.
        A bare `model.load_weights` would write into the empty parameters the CPU backend leaves
        behind. vLLM releases without `reload_weights` (before 0.12) keep GPU weights as loaded."""
        reload = getattr(self.model_runner, "reload_weights", None)
        if reload is not None:
            reload(weights_iterator=weights, is_checkpoint_format=True)
        else:
            self.model_runner.model.load_weights(weights=weights)

    def er_load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> int:
        self._er_load(named_tensors)
        return len(named_tensors)

    def er_checksum(self) -> dict[str, float]:
        with torch.no_grad():
            return checksum(_engine_tensors(self.model_runner.model))

    def er_init_collective(
        self, host: str, port: int, rank_offset: int, world_size: int, backend: str
    ) -> None:
        """Join the learner's broadcast group as rank `rank_offset + this worker's TP rank`, leaving
        the group of an earlier generation first (a restarted worker was re-admitted)."""
        from empathy_ray.actors.weight_sync import open_broadcast_group

        old = getattr(self, "_er_channel", None)
        if old is not None:
            old.close()
        rank = rank_offset + self.rank
        self._er_channel = open_broadcast_group(host, port, rank, world_size, backend, self.device)
        self._er_device = self.device if backend == "nccl" else torch.device("cpu")

    def er_receive_collective(self, buckets: list[list[tuple[str, str, list[int]]]]) -> int:
        """Receive the learner's bucketed broadcast (weight_sync.Broadcaster), loading as buckets arrive."""
        channel = getattr(self, "_er_channel", None)
        if channel is None:
            raise RuntimeError(
                "er_receive_collective before er_init_collective: create the Broadcaster first"
            )
        self._er_load(self._er_received(channel, buckets))
        channel.synchronize()
        return sum(len(meta) for meta in buckets)

    def _er_received(
        self, channel, buckets: list[list[tuple[str, str, list[int]]]]
    ) -> Iterator[tuple[str, torch.Tensor]]:
        from empathy_ray.actors.weight_sync import bucket_nbytes, unflatten_bucket

        for meta in buckets:
            flat = torch.empty(bucket_nbytes(meta), dtype=torch.uint8, device=self._er_device)
            channel.broadcast(flat)
            yield from unflatten_bucket(flat, meta)
