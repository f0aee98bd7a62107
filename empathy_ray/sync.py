"""Weight sync from learner rank 0 to every rollout worker: one interface, two transports.

`ObjectStoreSync` works everywhere (CPU clusters, tests): the state dict goes into Ray's object
store once and every worker pulls it. On GPUs that path costs about 20x a train step (ENVIRONMENT.md:
1.26 GB took ~6 s), so `NcclSync` broadcasts GPU-resident buckets straight from the learner's GPU
into every vLLM worker's GPU; only names, dtypes and shapes travel through Ray.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

log = logging.getLogger(__name__)

# (name, dtype name such as "bfloat16", shape): plain types, so the list crosses Ray and vLLM's RPC as is
TensorMeta = tuple[str, str, list[int]]


@dataclass
class SyncStats:
    bytes: int  # sum of nbytes of the published tensors
    seconds: float  # from publish() entry until every worker has loaded the weights
    gbps: float  # gigaBYTES per second (1e9 B/s), not gigabits
    transport: str
    version: int

    @classmethod
    def measured(cls, nbytes: int, seconds: float, transport: str, version: int) -> SyncStats:
        return cls(nbytes, seconds, nbytes / max(seconds, 1e-12) / 1e9, transport, version)

    def as_metrics(self) -> dict[str, float]:
        return {"sync/bytes": float(self.bytes), "sync/seconds": self.seconds, "sync/gbps": self.gbps}


class WeightSync(Protocol):
    def publish(self, named_tensors: dict[str, torch.Tensor], version: int) -> SyncStats:
        """Load `named_tensors` into every rollout worker; return once all of them have."""
        ...


def _nbytes(named_tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in named_tensors.values())


def _log(stats: SyncStats, n_workers: int) -> SyncStats:
    log.info(
        "weight sync v%d via %s: %.1f MB to %d workers in %.3f s (%.3f GB/s)",
        stats.version,
        stats.transport,
        stats.bytes / 1e6,
        n_workers,
        stats.seconds,
        stats.gbps,
    )
    return stats


class ObjectStoreSync:
    """One `ray.put` of the CPU state dict; every worker resolves the same ObjectRef and loads it."""

    def __init__(self, workers: Sequence[Any], timeout_s: float = 600.0):
        self.workers = list(workers)
        self.timeout_s = timeout_s

    def publish(self, named_tensors: dict[str, torch.Tensor] | Any, version: int) -> SyncStats:
        """`named_tensors` may already be an ObjectRef (the learner's return value): then it is not
        put again, and the weights never pass through the driver."""
        import ray

        t0 = time.perf_counter()
        if isinstance(named_tensors, ray.ObjectRef):
            ref = named_tensors
        else:
            ref = ray.put({k: v.detach().cpu() for k, v in named_tensors.items()})
        loaded = ray.get(
            [w.update_weights.remote(ref, version) for w in self.workers], timeout=self.timeout_s
        )
        stats = SyncStats.measured(loaded[0], time.perf_counter() - t0, "object_store", version)
        return _log(stats, len(self.workers))


# ---------------------------------------------------------------------------------------------
# NCCL: bucketed broadcast. The wire format is shared with vllm_ext.WeightSyncExtension.er_receive_nccl.


def bucketize(
    named_tensors: dict[str, torch.Tensor], bucket_bytes: int
) -> list[list[tuple[str, torch.Tensor]]]:
    """Consecutive groups of at most `bucket_bytes` (a larger tensor gets a bucket of its own)."""
    buckets: list[list[tuple[str, torch.Tensor]]] = [[]]
    size = 0
    for name, t in named_tensors.items():
        n = t.numel() * t.element_size()
        if buckets[-1] and size + n > bucket_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append((name, t))
        size += n
    return [b for b in buckets if b]


def bucket_meta(bucket: list[tuple[str, torch.Tensor]]) -> list[TensorMeta]:
    return [(name, str(t.dtype).removeprefix("torch."), list(t.shape)) for name, t in bucket]


def flatten_bucket(bucket: list[tuple[str, torch.Tensor]], device: torch.device | str) -> torch.Tensor:
    """All tensors of a bucket as one uint8 buffer: any mix of dtypes, one broadcast."""
    return torch.cat([t.detach().to(device).contiguous().reshape(-1).view(torch.uint8) for _, t in bucket])


def _meta_nbytes(dtype_name: str, shape: list[int]) -> int:
    return math.prod(shape) * torch.empty((), dtype=getattr(torch, dtype_name)).element_size()


def bucket_nbytes(meta: list[TensorMeta]) -> int:
    """Size of the flat buffer a receiver allocates for one bucket."""
    return sum(_meta_nbytes(dtype_name, shape) for _, dtype_name, shape in meta)


def unflatten_bucket(flat: torch.Tensor, meta: list[TensorMeta]) -> list[tuple[str, torch.Tensor]]:
    """Inverse of `flatten_bucket`: views into `flat`, no copy."""
    if flat.numel() != bucket_nbytes(meta):
        raise ValueError(
            f"bucket of {flat.numel()} bytes does not match its metadata ({bucket_nbytes(meta)} bytes)"
        )
    out = []
    offset = 0
    for name, dtype_name, shape in meta:
        n = _meta_nbytes(dtype_name, shape)
        out.append((name, flat[offset : offset + n].view(getattr(torch, dtype_name)).view(shape)))
        offset += n
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class NcclSync:
    """Broadcast from this process (learner rank 0, rank 0 of the group) to every vLLM worker.

    Group ranks: 0 is this process; rollout worker w's tensor-parallel rank r is 1 + w * tp + r.
    Construction is collective: every worker must be idle enough to run `init_nccl`.
    """

    def __init__(
        self,
        workers: Sequence[Any],
        tensor_parallel_size: int = 1,
        bucket_bytes: int = 256 << 20,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float = 600.0,
    ):
        import ray

        if not torch.cuda.is_available():
            raise RuntimeError(
                "rl.sync=nccl needs CUDA in the learner process and on the vLLM rollout workers, but "
                "torch.cuda.is_available() is False here; use rl.sync=object_store on CPU clusters"
            )
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        self.workers = list(workers)
        self.bucket_bytes = bucket_bytes
        self.timeout_s = timeout_s
        self.device = torch.device("cuda", torch.cuda.current_device())
        host = host or ray.util.get_node_ip_address()
        port = port or _free_port()
        world = 1 + len(self.workers) * tensor_parallel_size
        refs = [
            w.init_nccl.remote(host, port, 1 + i * tensor_parallel_size, world)
            for i, w in enumerate(self.workers)
        ]
        group = StatelessProcessGroup.create(host=host, port=port, rank=0, world_size=world)
        self.comm = PyNcclCommunicator(group, device=self.device)
        if self.comm.disabled:
            raise RuntimeError(
                "NcclSync: vLLM's NCCL wrapper is disabled here (no NCCL library?); use rl.sync=object_store"
            )
        ray.get(refs, timeout=timeout_s)
        log.info("NCCL weight-sync group up: %s:%d, world size %d", host, port, world)

    def publish(self, named_tensors: dict[str, torch.Tensor], version: int) -> SyncStats:
        import ray

        t0 = time.perf_counter()
        buckets = bucketize(named_tensors, self.bucket_bytes)
        refs = [w.receive_nccl.remote([bucket_meta(b) for b in buckets], version) for w in self.workers]
        stream = torch.cuda.current_stream()
        for bucket in buckets:
            # the caching allocator reuses a freed buffer only after this stream's broadcast of it
            self.comm.broadcast(flatten_bucket(bucket, self.device), src=0, stream=stream)
        stream.synchronize()
        ray.get(refs, timeout=self.timeout_s)
        stats = SyncStats.measured(_nbytes(named_tensors), time.perf_counter() - t0, "nccl", version)
        return _log(stats, len(self.workers))
