"""The learner group: M `LearnerRank` actors in one `ActorGroup`, every call fanned out to all ranks.

Under ZeRO-3 every forward, weight gather and checkpoint is a collective, so no rank may sit one out.
The ranks find each other once they are up (`setup`: rank 0's address is the rendezvous).
A rank that dies cannot rejoin its torch.distributed group: its call fails at once (`_settled`), and
`lost_rank` tells the driver, which replaces the whole group (empathy_ray/rl/recovery.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray
from ray.exceptions import RayActorError

from empathy_ray.actors.group import ActorGroup, Pending, wait_ready
from empathy_ray.actors.learner import LearnerRank
from empathy_ray.config import RLConfig
from empathy_ray.runtime.placement import rendezvous

log = logging.getLogger(__name__)


def _settled(refs: list[ray.ObjectRef], fetch_local: bool = True) -> None:
    """Return once every ref is ready; raise a failed one's error as soon as it is ready, without waiting
    for the others (the peers of a dead rank may wait for it in a collective until their timeout).
    Without `fetch_local` only readiness is waited for: a failure then shows when the ref is read."""
    waiting = list(refs)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1, fetch_local=fetch_local)
        if fetch_local:
            ray.get(ready)


class LearnerGroup:
    """M `LearnerRank` actors; each method runs on every rank (in one order: `ActorGroup`'s fan-outs)."""

    def __init__(self, group: ActorGroup) -> None:
        self.group = group

    @classmethod
    def start(cls, model_dir: str, cfg: RLConfig, seed: int = 0) -> LearnerGroup:
        """The ranks placed and starting; `setup` joins them once they are up (`wait_ready`)."""
        lc = cfg.learner
        args = lambda r: (model_dir, cfg, r, lc.num_workers, seed)  # noqa: E731
        return cls(ActorGroup.start("learner", LearnerRank, lc, args, lc.num_workers))

    @classmethod
    def create(cls, model_dir: str, cfg: RLConfig, seed: int = 0, timeout_s: float = 300.0) -> LearnerGroup:
        """Started, up and joined: ready to train."""
        group = cls.start(model_dir, cfg, seed)
        try:
            wait_ready([group.group], timeout_s)
            group.setup()
        except BaseException:
            group.shutdown()
            raise
        return group

    def setup(self) -> None:
        """Join the ranks' torch.distributed group and build every rank's DeepSpeed engine."""
        addr, port, local = rendezvous(self.group.actors)
        ray.get(self.group.call_each("setup", [(addr, port, lr) for lr in local]))
        log.info("learner group: %d ranks, rendezvous %s:%d", len(self.group.actors), addr, port)

    def _all(self, method: str, *args: Any) -> list[Any]:
        refs = self.group.call_all(method, *args)
        _settled(refs)
        return ray.get(refs)

    def train(self, items: list[dict[str, Any]]) -> Pending[dict[str, float]]:
        """One GRPO update on the step's whole batch, split in order into equal shares per rank; the
        stats are already reduced over ranks, so rank 0's are the result."""
        if len(items) % len(self.group.actors):
            raise ValueError(
                f"LearnerGroup.train: {len(items)} samples do not split over {len(self.group.actors)} ranks"
            )
        refs = self.group.call_shares("train_step", items)

        def wait() -> dict[str, float]:
            _settled(refs)
            return ray.get(refs[0])

        return Pending(wait)

    def logprobs(
        self, items: list[tuple[list[int], list[int]]], reference: bool = False
    ) -> Pending[list[list[float]]]:
        """Response-token log-probs under the current policy (with `reference`, the starting one: LoRA
        learners only); every rank scores a contiguous share (all must take part under ZeRO-3)."""
        refs = self.group.call_shares("logprobs", items, reference)

        def wait() -> list[list[float]]:
            _settled(refs)
            return [row for part in ray.get(refs) for row in part]

        return Pending(wait)

    def gather_weights(self) -> Pending[ray.ObjectRef]:
        """The ObjectRef of rank 0's full state dict (with adapter sync: its LoRA adapter alone), once
        every rank has finished its part of the gather. The ref is passed on, so the weights sit once
        in the object store and never visit the caller."""
        refs = self.group.call_all("tensors_for_sync")

        def wait() -> ray.ObjectRef:
            _settled(refs[1:])  # None each; raises if a rank failed
            _settled(refs[:1], fetch_local=False)
            return refs[0]

        return Pending(wait)

    def weights_checksums(self) -> list[float]:
        return self._all("weights_checksum")

    def save(self, directory: str) -> None:
        self._all("save", directory)

    def load(self, directory: str) -> None:
        self._all("load", directory)

    def export(self, directory: str) -> None:
        self._all("export", directory)

    def lost_rank(self, timeout_s: float = 10.0) -> int | None:
        """A rank whose process is gone (Ray says so within `timeout_s`), or None when every rank answers
        or is still busy: a call failed for another reason then."""
        pings = {a.__ray_ready__.remote(): r for r, a in enumerate(self.group.actors)}
        waiting, deadline = list(pings), time.monotonic() + timeout_s
        while waiting:
            left = max(deadline - time.monotonic(), 0.0)
            ready, waiting = ray.wait(waiting, num_returns=1, timeout=left)
            if not ready:
                return None
            try:
                ray.get(ready)
            except RayActorError:
                return pings[ready[0]]
        return None

    def shutdown(self) -> None:
        self.group.shutdown()
