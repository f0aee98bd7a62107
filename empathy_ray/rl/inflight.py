"""Asynchronous GRPO (rl.max_staleness = k >= 1): the rollouts of the next k steps run while the learner trains.

The schedule is fixed, so a run is reproducible and resumes exactly:
- the batch of step t (the cursor's next prompts and step t's sampling seeds, as in the synchronous loop)
  is sent to the rollout workers right after the weights of version max(0, t - k) were published: the
  batches of steps 0..k at the start, the batch of step s + 1 + k once step s has trained;
- object-store sync: each worker's weight load is queued behind the generate calls already sent to it
  (an actor runs one caller's calls in order), so a call in flight finishes on the weights it started
  with and its samples say so. A collective broadcast needs every worker to join it, and its loads are
  sent by the learner (not ordered with the driver's calls), so the driver first waits for the generate
  calls in flight: the same versions, less overlap at k >= 2;
- a batch's reward and reference scoring starts as soon as its samples are back (one thread per batch),
  overlapping the learner's update;
- a step trains only on samples at most k versions behind the learner. A batch with an older sample (a
  chunk re-dispatched to a restarted worker before it was re-synced) is generated again on the current
  weights, each stale sample counted in counters/stale_regenerated;
- a step whose rewards are not finite is skipped as in the synchronous loop; its unchanged weights are
  still published under the next version, so every later batch keeps its place in the schedule.
A checkpoint first lets the batches in flight finish and stores their samples with the driver state; a
resumed run scores and trains on exactly those.

Per step: rollout/staleness_<j> (samples j versions behind the learner, j = 0..k), rollout/staleness_max,
time/learner_wait_s (the learner waiting for its batch), time/rollout_wait_s (rollout workers idle before
the next batch could be sent: waiting for the weights it must be generated with).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from empathy_ray.actors.group import Pending
from empathy_ray.domain.rollouts import Sample, Scored
from empathy_ray.rl.timing import StepTimer

if TYPE_CHECKING:
    from empathy_ray.rl.driver import GRPODriver

log = logging.getLogger(__name__)

Batch = tuple[list[Scored], dict[str, list[float]], dict[str, float]]  # scored, reward terms, phase seconds


@dataclass
class InFlight:
    """One step's batch between its submission and its training."""

    step: int
    prompts: list[int]  # indices into the driver's prompts
    submitted: float  # perf_counter() when its generate calls were sent
    done_at: float | None = None  # perf_counter() when its samples were all back
    rolled: Future = field(default_factory=Future)  # list[Sample]
    scored: Future = field(default_factory=Future)  # Batch


def _in_thread(work: Callable[[], Any], out: Future) -> None:
    """`work()` in a daemon thread, its value or error into `out` (a stuck Ray call never blocks exit)."""

    def run() -> None:
        try:
            out.set_result(work())
        except BaseException as e:  # the step that takes the batch raises it
            out.set_exception(e)

    threading.Thread(target=run, daemon=True, name="er-inflight").start()


class AsyncRollouts:
    """The batches in flight of a `GRPODriver` with rl.max_staleness >= 1, and its asynchronous step."""

    def __init__(self, driver: GRPODriver) -> None:
        self.d = driver
        self.k = driver.rl.max_staleness
        self.queue: dict[int, InFlight] = {}  # step -> its batch
        self.next_step = driver.step  # the next batch to submit
        self.published: Pending[dict[str, float]] | None = None  # the last sync, waited for next step
        self.rollout_wait = 0.0  # seconds the rollout workers sat idle since the last step's metrics

    # -- submitting ---------------------------------------------------------------------------------

    def fill(self) -> None:
        """Batches up to step + k in flight (at the start of a run, or after a resume)."""
        while self.next_step <= self.d.step + self.k:
            self.submit()

    def submit(self) -> None:
        """Send the batch of step `next_step` to the rollout workers, on whatever weights they hold next."""
        d, t = self.d, self.next_step
        fl = InFlight(t, d.cursor.take(d.rl.prompts_per_step, len(d.prompts)), time.perf_counter())
        prev = self.queue.get(t - 1)
        if prev is not None and prev.done_at is not None:
            self.rollout_wait += fl.submitted - prev.done_at
        pending = d.roles.generate([d.prompts[i].ids for i in fl.prompts], d.rl.algo.group_size, t)
        self._start(fl, pending)
        self.queue[t] = fl
        self.next_step = t + 1

    def _start(self, fl: InFlight, pending: Pending[list[Sample]] | None) -> None:
        """A thread waits for the samples (re-dispatching a dead worker's chunk), then scores them;
        `pending` None: the samples are already in `fl.rolled` (restored from a checkpoint)."""
        batch = [self.d.prompts[i] for i in fl.prompts]

        def work() -> Batch:
            if pending is not None:
                try:
                    samples = self.d.checked(pending.result(), len(batch))
                except BaseException as e:
                    fl.rolled.set_exception(e)
                    raise
                fl.done_at = time.perf_counter()
                fl.rolled.set_result(samples)
            timer = StepTimer({"rollout": (fl.done_at or fl.submitted) - fl.submitted})
            scored, terms = self.d.score(batch, fl.rolled.result(), timer)
            return scored, terms, timer.phases

        _in_thread(work, fl.scored)

    # -- one step -------------------------------------------------------------------------------------

    def step(self, timer: StepTimer) -> tuple[list[Scored], dict[str, list[float]], dict[str, Any]]:
        """Train on step s's batch (waiting for it if needed), publish version s + 1, send the batch of
        step s + 1 + k. Returns (scored samples, reward terms, stats for the step's metrics)."""
        d, s = self.d, self.d.step
        self.fill()
        fl = self.queue.pop(s)
        t0 = time.perf_counter()
        scored, terms, phases = fl.scored.result()
        stats: dict[str, Any] = {"time/learner_wait_s": time.perf_counter() - t0}
        timer.phases |= phases
        scored, terms = self._fresh(fl, scored, terms, timer)
        stats |= self._staleness(scored)
        if d.set_advantages(scored):
            with timer("train"):
                learning = d.learn(scored)  # the learner trains while the last sync's loads finish
                stats |= self._wait_published()
                stats |= {"train/skipped": 0.0} | d.learned(learning)
        else:
            stats |= {"train/skipped": 1.0} | self._wait_published()
        with timer("sync"):
            self._publish(s + 1)
        self.submit()
        stats["time/rollout_wait_s"], self.rollout_wait = self.rollout_wait, 0.0
        return scored, terms, stats

    def _fresh(
        self, fl: InFlight, scored: list[Scored], terms: dict[str, list[float]], timer: StepTimer
    ) -> tuple[list[Scored], dict[str, list[float]]]:
        """The batch as is when no sample is more than k versions behind the learner; else generated
        again on the current weights (and scored again), the stale samples counted."""
        s = self.d.step
        stale = sum(s - x.sample.weight_version > self.k for x in scored)
        if not stale:
            return scored, terms
        self.d.roles.counters["stale_regenerated"] += stale
        log.warning(
            "step %d: %d samples more than %d versions old; generating the batch again", s + 1, stale, self.k
        )
        batch = [self.d.prompts[i] for i in fl.prompts]
        with timer("rollout"):
            samples = self.d.rollout(batch, s)
        scored, terms = self.d.score(batch, samples, timer)
        worst = max(s - x.sample.weight_version for x in scored)
        if worst > self.k:
            raise RuntimeError(
                f"step {s + 1}: regenerated samples are still {worst} versions old (k={self.k})"
            )
        return scored, terms

    def _staleness(self, scored: list[Scored]) -> dict[str, Any]:
        ages = [self.d.step - x.sample.weight_version for x in scored]
        hist: dict[str, Any] = {
            f"rollout/staleness_{j}": sum(a == j for a in ages) for j in range(self.k + 1)
        }
        hist["rollout/staleness_max"] = max(ages)
        return hist

    def _publish(self, version: int) -> None:
        roles = self.d.roles
        if roles.sync_needs_idle_workers:
            for fl in self.queue.values():
                fl.rolled.exception()  # waits; an error comes out with its batch
        self.published = roles.sync(version)
        if roles.sync_needs_idle_workers:
            self.published.result()  # before the next generate call is sent

    def _wait_published(self) -> dict[str, float]:
        """The last sync's metrics, once every worker has loaded it."""
        published, self.published = self.published, None
        return published.result() if published is not None else {}

    # -- checkpoints ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Wait until every batch in flight is generated and scored (raising a failed one's error)."""
        for fl in self.queue.values():
            fl.scored.result()
        self._wait_published()

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the batches in flight (finished first): their prompts and samples."""
        self.drain()
        batches = [
            {"step": t, "prompts": fl.prompts, "samples": [dataclasses.asdict(x) for x in fl.rolled.result()]}
            for t, fl in sorted(self.queue.items())
        ]
        return {"max_staleness": self.k, "inflight": batches}

    def restore(self, state: dict[str, Any]) -> None:
        """The batches a checkpoint kept, scored again (reward and reference are deterministic)."""
        self.queue.clear()
        self.published, self.rollout_wait = None, 0.0
        saved_k = state.get("max_staleness", 0)
        if saved_k != self.k:
            log.warning(
                "the checkpoint was written with rl.max_staleness=%d, this run has %d: not an exact continuation",
                saved_k,
                self.k,
            )
        for b in state.get("inflight", []):
            fl = InFlight(b["step"], b["prompts"], time.perf_counter())
            fl.rolled.set_result([Sample(**x) for x in b["samples"]])
            self._start(fl, None)
            self.queue[fl.step] = fl
        self.next_step = max(self.queue, default=self.d.step - 1) + 1
