"""Surviving a lost learner rank inside the job: a new learner group, rolled back to the last checkpoint.

A learner rank cannot rejoin its torch.distributed group (nor DeepSpeed's engine state), so Ray never
restarts one. When a step (or a checkpoint save) fails and a rank's process is gone, the driver
  1. stops the learner group and its weight sync (learner rank 0 is the broadcast's source) and starts
     both anew from the starting policy (`Roles.restart_learners`);
  2. restores the newest checkpoint into them exactly as `--resume` does (`GRPODriver.restore`):
     weights, optimizer, LR schedule, RNG states, data cursor, counters and, in asynchronous mode, the
     batches in flight; the restored weights are published to every rollout worker; metric rows of the
     steps after the checkpoint are dropped (the writer holds tracker rows until their checkpoint, so
     W&B and MLflow never saw them), and those steps run again;
  3. counts it in counters/learner_rebuilt; after rl.learner.max_rebuilds rebuilds in one job the next
     lost rank stops the run (the checkpoints stay for --resume).
Before the first checkpoint the group restarts from the starting policy at step 0. Without checkpoints
(rl.checkpoint_every=0) the trackers already hold every step, so the run stops instead of repeating them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from empathy_ray.runtime import checkpoint, console

if TYPE_CHECKING:
    from empathy_ray.rl.driver import GRPODriver

log = logging.getLogger(__name__)


class LearnerLostError(RuntimeError):
    """A learner rank died and the learner group could not (or may no longer) be rebuilt."""


class LearnerRecovery:
    """Rebuilds the learner group of `driver` after a rank died, at most rl.learner.max_rebuilds times."""

    def __init__(self, driver: GRPODriver) -> None:
        self.d = driver
        self.rebuilds = 0  # in this job

    def lost_rank(self) -> int | None:
        """The learner rank whose process is gone, if any (called after a step failed)."""
        learners = self.d.roles.learners
        return None if learners is None else learners.lost_rank()

    def rebuild(self, rank: int, error: BaseException) -> None:
        """A new learner group restored from the newest checkpoint (or the starting policy at step 0);
        the driver continues from that checkpoint's step."""
        d, rl = self.d, self.d.rl
        why = f"{type(error).__name__}: {console.first_line(str(error))}"
        where = f"learner rank {rank} died in step {d.step + 1} ({why})"
        if rl.checkpoint_every == 0:
            raise LearnerLostError(
                f"{where}; with rl.checkpoint_every=0 there is no checkpoint to rebuild the learner group "
                "from (and the trackers already hold every step): set rl.checkpoint_every > 0"
            ) from error
        if self.rebuilds >= rl.learner.max_rebuilds:
            raise LearnerLostError(
                f"{where}; the learner group was already rebuilt {self.rebuilds} times in this job "
                f"(rl.learner.max_rebuilds={rl.learner.max_rebuilds}): look in the run's logs/learner.log for "
                "why ranks die, then rerun with --resume to continue from the last checkpoint"
            ) from error
        self.rebuilds += 1
        rebuilt = d.roles.counters["learner_rebuilt"] + 1  # the restored counters predate this rebuild
        latest = checkpoint.latest(d.dir / "checkpoints")
        log.warning(
            "%s; rebuilding the learner group (%d of at most %d) from %s",
            where,
            self.rebuilds,
            rl.learner.max_rebuilds,
            latest or "the starting policy",
        )
        source = latest.name if latest else "the starting policy"
        console.stage_line("rl", f"warning: {where}: rebuilding the learner group from {source}")
        d.roles.restart_learners()
        d.restore(latest)
        d.roles.counters["learner_rebuilt"] = rebuilt
