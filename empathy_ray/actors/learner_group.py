"""The learner group: M `LearnerRank` Ray actors in one placement group, every call fanned out to all.

Under ZeRO-3 every forward, weight gather and checkpoint is a collective, so no rank may sit one out.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup

from empathy_ray.actors.learner import LearnerRank, micro_batches_per_rank
from empathy_ray.config import RLConfig
from empathy_ray.runtime.placement import rendezvous, split_even, start_ranks, stop_ranks

log = logging.getLogger(__name__)


class LearnerGroup:
    """M `LearnerRank` actors in one placement group; each method runs on every rank and gathers."""

    def __init__(self, actors: list[Any], pg: PlacementGroup) -> None:
        self.actors, self.pg = actors, pg

    @classmethod
    def create(cls, model_dir: str, cfg: RLConfig, seed: int = 0, timeout_s: float = 300.0) -> LearnerGroup:
        lc = cfg.learner
        micro_batches_per_rank(cfg)  # a bad config fails here, before anything is reserved
        args = lambda r: (model_dir, cfg, r, lc.num_workers, seed)  # noqa: E731
        group = cls(*start_ranks(LearnerRank, "learner", lc.num_workers, lc, args, timeout_s))
        try:
            addr, port, local = rendezvous(group.actors)
            ray.get([a.setup.remote(addr, port, lr) for a, lr in zip(group.actors, local, strict=True)])
        except BaseException:
            group.shutdown()
            raise
        log.info("learner group: %d ranks, rendezvous %s:%d", lc.num_workers, addr, port)
        return group

    def _all(self, method: str, *args: Any) -> list[Any]:
        return ray.get([getattr(a, method).remote(*args) for a in self.actors])

    def _shares(self, method: str, items: list[Any]) -> list[Any]:
        shares = split_even(items, len(self.actors))
        return ray.get([getattr(a, method).remote(s) for a, s in zip(self.actors, shares, strict=True)])

    def train_step(self, items: list[dict[str, Any]]) -> dict[str, float]:
        """One GRPO update on the step's whole batch, split in order into equal shares per rank; the
        stats are already reduced over ranks, so rank 0's are returned."""
        if len(items) % len(self.actors):
            raise ValueError(
                f"LearnerGroup.train_step: {len(items)} samples do not split over {len(self.actors)} ranks"
            )
        return self._shares("train_step", items)[0]

    def logprobs(self, items: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Response-token log-probs; every rank scores a contiguous share (all must take part under ZeRO-3)."""
        return [row for part in self._shares("logprobs", items) for row in part]

    def weights_for_sync(self) -> ray.ObjectRef:
        """The ObjectRef of rank 0's full state dict, once every rank has finished its part of the gather.
        The driver passes the ref on, so the weights sit once in the object store and never visit it."""
        refs = [a.weights_for_sync.remote() for a in self.actors]
        ray.wait(refs, num_returns=len(refs), fetch_local=False)
        ray.get(refs[1:])  # None each; raises if a rank failed
        return refs[0]

    def weights_checksums(self) -> list[float]:
        return self._all("weights_checksum")

    def save(self, directory: str) -> None:
        self._all("save", directory)

    def load(self, directory: str) -> None:
        self._all("load", directory)

    def init_collective_sync(self, workers: list[Any], tensor_parallel_size: int, backend: str) -> None:
        ray.get([a.init_collective_sync.remote(workers, tensor_parallel_size, backend) for a in self.actors])

    def publish_collective(self, version: int) -> dict[str, float]:
        """Collective weight sync: every rank gathers, rank 0 broadcasts; rank 0's stats come back."""
        return self._all("publish_collective", version)[0]

    def export(self, directory: str) -> None:
        self._all("export", directory)

    def shutdown(self) -> None:
        stop_ranks(self.actors, self.pg)
        self.actors = []
