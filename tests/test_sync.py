"""Weight sync: the bucket wire format, the stats, ObjectStoreSync into Ray rollout actors (two
transformers workers for the fan-out, one vLLM worker for the engine path), and the collective
transport's broadcast into vLLM workers over gloo (its NCCL channel needs GPUs and is not exercised
here; the learner-driven CollectiveSync runs in tests/test_rl.py)."""

from __future__ import annotations

import os
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.actors.group import ActorGroup, Pending
from empathy_ray.actors.rollout import RolloutEngine
from empathy_ray.actors.vllm_ext import checksum, checksums_match
from empathy_ray.actors.weight_sync import (
    Broadcaster,
    ObjectStoreSync,
    SyncStats,
    bucket_meta,
    bucket_nbytes,
    bucketize,
    flatten_bucket,
    unflatten_bucket,
)
from empathy_ray.config import RolloutConfig


def test_buckets_round_trip_mixed_dtypes():
    tensors = {
        "a": torch.randn(10, 4),  # 160 B
        "b": torch.arange(6, dtype=torch.int64).view(2, 3),  # 48 B
        "c": torch.randn(3, dtype=torch.float64),  # 24 B
        "d": torch.randn(100).to(torch.bfloat16),  # 200 B: over the limit, a bucket of its own
        "e": torch.randn(2, 2, 2),  # 32 B
    }
    buckets = bucketize(tensors, bucket_bytes=210)
    assert [[n for n, _ in b] for b in buckets] == [["a", "b"], ["c"], ["d"], ["e"]]
    out = {}
    for b in buckets:
        flat = flatten_bucket(b, "cpu")
        meta = bucket_meta(b)
        assert flat.dtype == torch.uint8 and flat.numel() == bucket_nbytes(meta)
        out.update(unflatten_bucket(flat, meta))
    assert list(out) == list(tensors)
    for name, t in tensors.items():
        assert out[name].dtype == t.dtype and torch.equal(out[name], t)
    with pytest.raises(ValueError, match="does not match its metadata"):
        unflatten_bucket(torch.zeros(7, dtype=torch.uint8), bucket_meta(buckets[0]))


def test_sync_stats_metrics():
    stats = SyncStats.measured(3_000_000_000, 1.5, "object_store", 4)
    assert stats.gbps == pytest.approx(2.0)
    assert stats.as_metrics() == {"sync/bytes": 3e9, "sync/seconds": 1.5, "sync/gbps": pytest.approx(2.0)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_nccl_sync_refuses_without_cuda():
    with pytest.raises(RuntimeError, match="rl.sync=nccl needs CUDA"):
        Broadcaster(workers=[], backend="nccl")


@pytest.fixture(scope="module")
def new_weights(tmp_path_factory) -> dict[str, torch.Tensor]:
    """A second tiny model's state dict (tied LM head included, as the learner would send it)."""
    from empathy_ray.modeling.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-test-b", preset="test", seed=1)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).state_dict()


@pytest.fixture(scope="module")
def prompts(tiny_model_dir) -> list[list[int]]:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return [tok.encode("我最近总是失眠，很焦虑"), tok.encode("和父母的关系越来越差")]


def start_workers(model_dir, cfg: RolloutConfig, seed: int) -> ActorGroup:
    """cfg.num_workers rollout actors, up."""
    group = ActorGroup.start("rollout", RolloutEngine, cfg, (str(model_dir), cfg, seed), cfg.num_workers)
    group.wait_ready(timeout_s=600)
    return group


def publish(workers: list, weights: dict[str, torch.Tensor], version: int) -> SyncStats:
    """These weights into every worker through the object store, as the learner's would go."""
    return ObjectStoreSync(workers, lambda: Pending(lambda: weights)).publish(version).result()


@pytest.fixture(scope="module")
def hf_workers(ray_cluster, tiny_model_dir):
    cfg = RolloutConfig(engine="transformers", num_workers=2, num_cpus=1, max_new_tokens=8, max_model_len=128)
    group = start_workers(tiny_model_dir, cfg, seed=10)
    yield group.actors
    group.shutdown()


def test_object_store_sync_reaches_every_worker(ray_cluster, hf_workers, new_weights, prompts):
    ray = ray_cluster
    stats = publish(hf_workers, new_weights, version=3)
    assert stats.bytes == sum(t.numel() * t.element_size() for t in new_weights.values())
    assert (stats.transport, stats.version) == ("object_store", 3)
    assert stats.gbps == pytest.approx(
        stats.bytes / stats.seconds / 1e9
    )  # GB/s is derived, not asserted fast
    expected = checksum(new_weights.items())
    for got in ray.get([w.weights_checksum.remote() for w in hf_workers]):
        assert checksums_match(got, expected)  # float64 sums: rtol 1e-9
    assert ray.get([w.get_weight_version.remote() for w in hf_workers]) == [3, 3]
    first, second = ray.get([w.generate.remote(prompts, 2, 0) for w in hf_workers])
    assert {s.weight_version for s in first + second} == {3}
    # sampling is seeded by (run seed, step, prompt, sample), not by worker: a chunk re-sent to
    # another worker after a crash draws the same answers
    assert [s.response_ids for s in first] == [s.response_ids for s in second]


def test_restarted_worker_comes_back_with_version_zero(ray_cluster, hf_workers, new_weights):
    """A crash restarts the actor from the checkpoint; the driver sees version 0 and publishes again."""
    ray = ray_cluster
    publish(hf_workers, new_weights, version=5)

    def pid_and_version():
        return ray.get(
            hf_workers[0].__ray_call__.remote(lambda self: (os.getpid(), self.weight_version)), timeout=30
        )

    pid_before, _ = pid_and_version()
    ray.kill(hf_workers[0], no_restart=False)  # asynchronous: wait until a new process answers
    deadline = time.monotonic() + 60
    while True:
        try:
            pid, version = pid_and_version()
            if pid != pid_before:
                break
        except ray.exceptions.RayActorError:
            pass
        assert time.monotonic() < deadline, "the rollout worker did not restart within 60 s"
        time.sleep(0.5)
    assert version == 0
    assert ray.get(hf_workers[1].get_weight_version.remote()) == 5
    publish(hf_workers, new_weights, version=6)
    assert ray.get([w.get_weight_version.remote() for w in hf_workers]) == [6, 6]


def test_resync_reloads_the_last_weights_into_a_restarted_worker(ray_cluster, hf_workers, new_weights):
    """What the driver does after a rollout worker died: the last published version, to everyone."""
    ray = ray_cluster
    sync = ObjectStoreSync(hf_workers, lambda: Pending(lambda: new_weights))
    sync.resync()  # nothing published yet: nothing to send
    assert sync.publish(version=7).result().version == 7 and sync.version == 7
    ray.get(hf_workers[0].__ray_call__.remote(lambda self: setattr(self, "weight_version", 0)))
    sync.resync()
    assert ray.get([w.get_weight_version.remote() for w in hf_workers]) == [7, 7]
    expected = checksum(new_weights.items())
    assert all(
        checksums_match(g, expected) for g in ray.get([w.weights_checksum.remote() for w in hf_workers])
    )


def test_object_store_sync_into_a_vllm_actor(ray_cluster, tiny_model_dir, new_weights, prompts):
    ray = ray_cluster
    cfg = RolloutConfig(engine="vllm", num_workers=1, num_cpus=1, max_new_tokens=8, max_model_len=128)
    group = start_workers(tiny_model_dir, cfg, seed=0)
    workers = group.actors
    try:
        before = ray.get(workers[0].generate.remote(prompts, 2, 0))
        stats = publish(workers, new_weights, version=1)
        assert stats.version == 1
        assert checksums_match(ray.get(workers[0].weights_checksum.remote()), checksum(new_weights.items()))
        after = ray.get(workers[0].generate.remote(prompts, 2, 0))
        assert {s.weight_version for s in before} == {0} and {s.weight_version for s in after} == {1}
        assert all(a.logprobs != b.logprobs for a, b in zip(before, after, strict=True))
    finally:
        group.shutdown()


def test_collective_sync_broadcasts_into_vllm_workers_over_gloo(
    ray_cluster, tiny_model_dir, new_weights, prompts
):
    """Group ranks, buckets (small, so several), the workers' receive-and-load path and versions:
    everything NCCL sync does except the NCCL channel itself."""
    ray = ray_cluster
    cfg = RolloutConfig(engine="vllm", num_workers=2, num_cpus=0.5, max_new_tokens=8, max_model_len=128)
    group = start_workers(tiny_model_dir, cfg, seed=0)
    workers = group.actors
    try:
        sender = Broadcaster(workers, backend="gloo", bucket_bytes=256 << 10)
        n_buckets = len(bucketize(new_weights, 256 << 10))
        for version in (1, 2):
            stats = sender.broadcast(new_weights, version=version)
            assert (stats.transport, stats.version) == ("gloo", version)
            assert stats.bytes == sum(t.numel() * t.element_size() for t in new_weights.values())
        print(f"gloo broadcast: {stats.bytes} bytes in {n_buckets} buckets, {stats.seconds:.3f} s")
        assert n_buckets > 1
        want = checksum(new_weights.items())
        assert all(
            checksums_match(got, want) for got in ray.get([w.weights_checksum.remote() for w in workers])
        )
        assert ray.get([w.get_weight_version.remote() for w in workers]) == [2, 2]
        outs = ray.get([w.generate.remote(prompts, 2, 0) for w in workers])
        assert {s.weight_version for out in outs for s in out} == {2}
    finally:
        group.shutdown()
