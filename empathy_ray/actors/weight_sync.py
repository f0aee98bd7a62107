"""Weight sync from the learner to every rollout worker: one interface, two transports.

The driver sees only `WeightSync`: `publish(version)` loads the learner's current weights into every
rollout worker, and `resync()` sends them again to a worker that restarted. `start_weight_sync` picks
the transport from `rl.sync`:

- `ObjectStoreSync` (object_store) works everywhere (CPU clusters, tests): learner rank 0's state
  dict goes into Ray's object store once and every worker pulls it. On GPUs this costs about 20x
  a train step (1.26 GB took ~6 s), hence:
- `CollectiveSync` (nccl, gloo): learner rank 0 broadcasts GPU-resident buckets straight into every
  vLLM worker's GPU over NCCL (its `Broadcaster`); only names, dtypes and shapes travel through Ray.
  The same broadcast runs over gloo on CPUs, which is how its protocol is tested here. A rollout
  worker that restarted is re-admitted by a new group generation: every member leaves the old group
  and joins a new one on a fresh port, and rank 0 broadcasts the last published weights again.

The receiving ends live in the roles: `RolloutEngine.update_weights` / `receive_collective` (and
vllm_ext's worker extension), the sending end in `LearnerRank.tensors_for_sync` (with rl.sync_lora=adapter
a LoRA learner's adapter alone: actors/adapter_sync.py) / `publish_collective`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import ray
import torch
from ray.exceptions import ActorUnavailableError, RayActorError

from empathy_ray.actors.group import ActorGroup, Pending, await_restart
from empathy_ray.runtime.placement import free_port

if TYPE_CHECKING:
    from empathy_ray.actors.learner_group import LearnerGroup

log = logging.getLogger(__name__)

# (name, dtype name such as "bfloat16", shape): plain types, so the list crosses Ray and vLLM's RPC as is
TensorMeta = tuple[str, str, list[int]]


@dataclass
class SyncStats:
    bytes: int  # sum of nbytes of the published tensors
    seconds: float  # from the weights being ready on the learner until every worker has loaded them
    gbps: float  # gigaBYTES per second (1e9 B/s), not gigabits
    transport: str
    version: int

    @classmethod
    def measured(cls, nbytes: int, seconds: float, transport: str, version: int) -> SyncStats:
        return cls(nbytes, seconds, nbytes / max(seconds, 1e-12) / 1e9, transport, version)

    def as_metrics(self) -> dict[str, float]:
        return {"sync/bytes": float(self.bytes), "sync/seconds": self.seconds, "sync/gbps": self.gbps}


class WeightSync(Protocol):
    """What the driver may do with the rollout workers' weights, whatever the transport."""

    transport: str
    version: int  # the last version every rollout worker loaded (0: the starting weights)

    def publish(self, version: int) -> Pending[SyncStats]:
        """Start loading the learner's current weights into every rollout worker as `version`;
        the result is there once all of them have."""
        ...

    def resync(self, worker: int | None = None) -> None:
        """Load the last published weights into `worker` again (one restarted with its starting
        weights; None: every worker), re-admitting it to the transport's group if it has one."""
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
    """One `ray.put` of the CPU state dict; every worker resolves the same ObjectRef and loads it.

    `gather` starts collecting the weights and returns them as a `Pending` of an ObjectRef (the
    learner's return value: then they are never put again and never visit the driver) or of a dict.
    """

    transport = "object_store"

    def __init__(
        self, workers: Sequence[Any], gather: Callable[[], Pending[Any]], timeout_s: float = 600.0
    ) -> None:
        self.workers, self.gather, self.timeout_s = list(workers), gather, timeout_s
        self.version = 0
        self._last: Any = None  # (weights, version) last published, re-sent by `resync`

    def publish(self, version: int) -> Pending[SyncStats]:
        """Gathers the weights now and queues their load on every worker behind the calls already sent
        to it: a generate call in flight finishes on the weights it started with (asynchronous GRPO)."""
        weights = self.gather().result()
        t0 = time.perf_counter()
        if not isinstance(weights, ray.ObjectRef):
            weights = ray.put({k: v.detach().cpu() for k, v in weights.items()})
        self._last = (weights, version)
        refs = [w.update_weights.remote(weights, version) for w in self.workers]

        def wait() -> SyncStats:
            nbytes = self._wait_loaded(refs)
            self.version = version
            stats = SyncStats.measured(nbytes, time.perf_counter() - t0, self.transport, version)
            return _log(stats, len(self.workers))

        return Pending(wait)

    def resync(self, worker: int | None = None) -> None:
        """The newest published weights to `worker` (one that restarted), or to every worker."""
        if self._last is not None:
            for w in self.workers if worker is None else [self.workers[worker]]:
                self._send_latest(w)

    def _wait_loaded(self, refs: list[ray.ObjectRef]) -> int:
        """Bytes loaded per worker; one that died meanwhile (Ray restarts it) gets the newest weights again."""
        loaded = []
        for w, ref in zip(self.workers, refs, strict=True):
            try:
                loaded.append(ray.get(ref, timeout=self.timeout_s))
            except RayActorError:
                loaded.append(self._send_latest(w))
        return loaded[0]

    def _send_latest(self, worker: Any) -> int:
        """The newest published weights into `worker`, waiting out a restart (calls fail while it lasts)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return ray.get(worker.update_weights.remote(*self._last), timeout=self.timeout_s)
            except ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


class CollectiveSync:
    """rl.sync=nccl/gloo: learner rank 0 joins a broadcast group with every rollout worker (each
    rank's `init_collective_sync`), then every publish is a gather on all ranks and a broadcast from
    rank 0 (`publish_collective`); the driver only starts it and waits. A restarted worker is
    re-admitted by rank 0 (`readmit_collective`: a new group generation, the last weights again)."""

    def __init__(
        self,
        learners: ActorGroup,
        workers: Sequence[Any],
        tensor_parallel_size: int,
        backend: str,
        timeout_s: float = 600.0,
    ) -> None:
        self.learners, self.workers = learners, list(workers)
        self.transport, self.timeout_s = backend, timeout_s
        self.version = 0
        self._lock = threading.Lock()  # one re-admission at a time (batch threads may each see a death)
        ray.get(learners.call_all("init_collective_sync", list(workers), tensor_parallel_size, backend))

    def publish(self, version: int) -> Pending[SyncStats]:
        refs = self.learners.call_all("publish_collective", version)

        def wait() -> SyncStats:
            stats = ray.get(refs, timeout=self.timeout_s)[0]  # rank 0's; the others return None
            self.version = version
            return stats

        return Pending(wait)

    def resync(self, worker: int | None = None) -> None:
        """Once the restarted `worker` (None: every worker) is up, learner rank 0 opens a new group
        generation with all workers and broadcasts the last published weights into it. The other
        workers join between their calls: this waits for the generate calls they are running."""
        with self._lock:
            for w in self.workers if worker is None else [self.workers[worker]]:
                await_restart(w, self.timeout_s)
                ray.get(w.get_weight_version.remote(), timeout=self.timeout_s)  # raises if dead for good
            stats = ray.get(self.learners.call_one(0, "readmit_collective"), timeout=self.timeout_s)
        who = "every rollout worker" if worker is None else f"rollout worker {worker}"
        log.info("%s re-admitted to the %s group (then reloaded: %s)", who, self.transport, stats)


def start_weight_sync(
    transport: str, learners: LearnerGroup, workers: ActorGroup, tensor_parallel_size: int
) -> WeightSync:
    """The `rl.sync` transport between this learner group and these rollout workers."""
    if transport == "object_store":
        return ObjectStoreSync(workers.actors, learners.gather_weights)
    return CollectiveSync(learners.group, workers.actors, tensor_parallel_size, transport)


# ---------------------------------------------------------------------------------------------
# The collective transport: bucketed broadcast. The wire format is shared with
# vllm_ext.WeightSyncExtension.er_receive_collective.


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

    def close(self) -> None:
        # vLLM's destroy() is ncclCommAbort: a member of the old group may be dead, nothing waits for it
        self.comm.destroy()

    def broadcast(self, tensor: torch.Tensor) -> None:
        # the caching allocator reuses a freed buffer only after this stream's broadcast of it
        self.comm.broadcast(tensor, src=0, stream=torch.cuda.current_stream())

    def synchronize(self) -> None:
        torch.cuda.current_stream().synchronize()


class _GlooChannel:
    def __init__(self, group) -> None:
        self.group = group

    def close(self) -> None:
        self.group.shutdown()

    def broadcast(self, tensor: torch.Tensor) -> None:
        import torch.distributed as dist

        opts = dist.BroadcastOptions()
        opts.rootRank, opts.rootTensor = 0, 0
        self.group.broadcast([tensor], opts).wait()

    def synchronize(self) -> None:
        pass


class Broadcaster:
    """Broadcast from this process (learner rank 0, rank 0 of the group) to every vLLM worker.

    Group ranks: 0 is this process; rollout worker w's tensor-parallel rank r is 1 + w * tp + r.
    Weights go in buckets of `bucket_bytes` (one flat uint8 tensor each); names, dtypes and shapes
    travel by Ray. Construction is collective: every worker must be idle enough to run `init_collective`.

    A collective group cannot take a new member in place of a dead one, so `readmit` forms a new
    generation of it (every worker's `init_collective` leaves its old group first) and sends the last
    broadcast weights again. To have them, the last broadcast's (CPU) tensors stay referenced here
    until the next one: one copy of the synced weights in host memory on rank 0's node.
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
        if backend == "nccl" and not torch.cuda.is_available():
            raise RuntimeError(
                "rl.sync=nccl needs CUDA in the learner process and on the vLLM rollout workers, but "
                "torch.cuda.is_available() is False here; use rl.sync=gloo or object_store on CPU clusters"
            )
        self.workers = list(workers)
        self.backend, self.tp = backend, tensor_parallel_size
        self.bucket_bytes = bucket_bytes
        self.timeout_s = timeout_s
        self.device = (
            torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        )
        self.host = host or ray.util.get_node_ip_address()
        self.generation = 0  # how many times the group was formed again (`readmit`)
        self._last: tuple[dict[str, torch.Tensor], int] | None = None  # (weights, version) last broadcast
        self.channel = self._join(port or free_port())

    def _join(self, port: int):
        """Form the group on `port`: every worker joins as its ranks, this process as rank 0."""
        world = 1 + len(self.workers) * self.tp
        refs = [
            w.init_collective.remote(self.host, port, 1 + i * self.tp, world, self.backend)
            for i, w in enumerate(self.workers)
        ]
        channel = open_broadcast_group(self.host, port, 0, world, self.backend, self.device)
        ray.get(refs, timeout=self.timeout_s)
        log.info(
            "%s sync group %d up: %s:%d, world %d", self.backend, self.generation, self.host, port, world
        )
        return channel

    def readmit(self) -> SyncStats | None:
        """A new generation of the group on a fresh port, with every worker (one restarted), and the
        last broadcast weights again; None when there were none (the starting weights are current)."""
        self.channel.close()
        self.generation += 1
        self.channel = self._join(free_port())
        return None if self._last is None else self.broadcast(*self._last)

    def broadcast(self, named_tensors: dict[str, torch.Tensor], version: int) -> SyncStats:
        """Send `named_tensors` to every worker, which loads them as `version`; returns once all have."""
        t0 = time.perf_counter()
        self._last = (named_tensors, version)
        buckets = bucketize(named_tensors, self.bucket_bytes)
        refs = [w.receive_collective.remote([bucket_meta(b) for b in buckets], version) for w in self.workers]
        for bucket in buckets:
            self.channel.broadcast(flatten_bucket(bucket, self.device))
        self.channel.synchronize()
        ray.get(refs, timeout=self.timeout_s)
        stats = SyncStats.measured(_nbytes(named_tensors), time.perf_counter() - t0, self.backend, version)
        return _log(stats, len(self.workers))
