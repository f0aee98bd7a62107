"""Weight sync from learner rank 0 to every rollout worker: one interface, two transports.

`ObjectStoreSync` works everywhere (CPU clusters, tests): the state dict goes into Ray's object
store once and every worker pulls it. On GPUs that path costs about 20x a train step (ENVIRONMENT.md:
1.26 GB took ~6 s), so `CollectiveSync` broadcasts GPU-resident buckets straight from the learner's GPU
into every vLLM worker's GPU over NCCL; only names, dtypes and shapes travel through Ray. The same
broadcast runs over gloo on CPUs (`rl.sync=gloo`), which is how its protocol is tested here.
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
# NCCL: bucketed broadcast. The wire format is shared with vllm_ext.WeightSyncExtension.er_receive_collective.


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


def open_broadcast_group(host: str, port: int, rank: int, world_size: int, backend: str, device):
    """A broadcast channel between the learner (rank 0) and the vLLM workers, outside every other
    process group (DeepSpeed's and vLLM's own stay untouched).

    nccl: vLLM's NCCL wrapper on a stateless group (GPU to GPU, on the current CUDA stream).
    gloo: a stateless torch gloo group (CPU tensors): the same protocol on CPU clusters and in tests.
    """
    if backend == "nccl":
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        group = StatelessProcessGroup.create(host=host, port=port, rank=rank, world_size=world_size)
        comm = PyNcclCommunicator(group, device=device)
        if comm.disabled:
            raise RuntimeError(
                f"rank {rank}: vLLM's NCCL wrapper is disabled (no NCCL library?); use rl.sync=object_store"
            )
        return _NcclChannel(comm)
    if backend == "gloo":
        from vllm.distributed.utils import stateless_init_torch_distributed_process_group

        return _GlooChannel(
            stateless_init_torch_distributed_process_group(host, port, rank, world_size, "gloo")
        )
    raise ValueError(f"unknown broadcast backend {backend!r}: use 'nccl' or 'gloo'")


class _NcclChannel:
    def __init__(self, comm) -> None:
        self.comm = comm

    def broadcast(self, tensor: torch.Tensor) -> None:
        # the caching allocator reuses a freed buffer only after this stream's broadcast of it
        self.comm.broadcast(tensor, src=0, stream=torch.cuda.current_stream())

    def synchronize(self) -> None:
        torch.cuda.current_stream().synchronize()


class _GlooChannel:
    def __init__(self, group) -> None:
        self.group = group

    def broadcast(self, tensor: torch.Tensor) -> None:
        import torch.distributed as dist

        opts = dist.BroadcastOptions()
        opts.rootRank, opts.rootTensor = 0, 0
        self.group.broadcast([tensor], opts).wait()

    def synchronize(self) -> None:
        pass


class CollectiveSync:
    """Broadcast from this process (learner rank 0, rank 0 of the group) to every vLLM worker.

    Group ranks: 0 is this process; rollout worker w's tensor-parallel rank r is 1 + w * tp + r.
    Weights go in buckets of `bucket_bytes` (one flat uint8 tensor each); names, dtypes and shapes
    travel by Ray. Construction is collective: every worker must be idle enough to run `init_collective`.
    """

    def __init__(
        self,
        workers: Sequence[Any],
        tensor_parallel_size: int = 1,
        backend: str = "nccl",
        bucket_bytes: int = 256 << 20,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float = 600.0,
    ):
        import ray

        if backend == "nccl" and not torch.cuda.is_available():
            raise RuntimeError(
                "rl.sync=nccl needs CUDA in the learner process and on the vLLM rollout workers, but "
                "torch.cuda.is_available() is False here; use rl.sync=gloo or object_store on CPU clusters"
            )
        self.workers = list(workers)
        self.backend = backend
        self.bucket_bytes = bucket_bytes
        self.timeout_s = timeout_s
        self.device = (
            torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        )
        host = host or ray.util.get_node_ip_address()
        port = port or _free_port()
        world = 1 + len(self.workers) * tensor_parallel_size
        refs = [
            w.init_collective.remote(host, port, 1 + i * tensor_parallel_size, world, backend)
            for i, w in enumerate(self.workers)
        ]
        self.channel = open_broadcast_group(host, port, 0, world, backend, self.device)
        ray.get(refs, timeout=timeout_s)
        log.info("%s weight-sync group up: %s:%d, world size %d", backend, host, port, world)

    def publish(self, named_tensors: dict[str, torch.Tensor], version: int) -> SyncStats:
        import ray

        t0 = time.perf_counter()
        buckets = bucketize(named_tensors, self.bucket_bytes)
        refs = [w.receive_collective.remote([bucket_meta(b) for b in buckets], version) for w in self.workers]
        for bucket in buckets:
            self.channel.broadcast(flatten_bucket(bucket, self.device))
        self.channel.synchronize()
        ray.get(refs, timeout=self.timeout_s)
        stats = SyncStats.measured(_nbytes(named_tensors), time.perf_counter() - t0, self.backend, version)
        return _log(stats, len(self.workers))
