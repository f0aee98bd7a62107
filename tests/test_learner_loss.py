"""How the learner group reports a lost rank (empathy_ray/rl/recovery.py rebuilds it; the end-to-end run
is in tests/test_resume.py): a dead rank's call fails at once even while its peer still waits, as a
peer waits for it in an all-reduce, and `lost_rank` tells a dead rank from one that merely raised; and
when the driver refuses to rebuild (no checkpoints, or rl.learner.max_rebuilds spent)."""

from __future__ import annotations

import os
import time

import pytest
import ray

from empathy_ray.actors.group import ActorGroup
from empathy_ray.actors.learner_group import LearnerGroup
from empathy_ray.config import ActorResources

PEER_WAIT_S = 120.0  # how long rank 0 waits in its "collective" for a peer that never comes


class StandInRank:
    """A rank whose train_step does what its share of the batch says: "bad" raises an ordinary error (the
    process lives on), "die" ends the process mid-call, "wait" waits as for a peer in an all-reduce."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def train_step(self, items: list[str]) -> dict[str, float]:
        if "bad" in items:
            raise ValueError(f"rank {self.rank} cannot train on {items}")
        if "die" in items:
            os._exit(1)
        time.sleep(PEER_WAIT_S if "wait" in items else 0.0)
        return {"train/items": float(len(items))}


def test_a_dead_rank_fails_the_call_at_once_and_is_told_from_a_failed_call(ray_cluster):
    res = ActorResources(num_cpus=0.25, max_restarts=0)
    learners = LearnerGroup(ActorGroup.start("standin-learner", StandInRank, res, lambda r: (r,), 2))
    try:
        learners.group.wait_ready(timeout_s=120)
        assert learners.train(["ok", "ok", "ok", "ok"]).result() == {"train/items": 2.0}
        with pytest.raises(ray.exceptions.RayTaskError, match=r"rank 1 cannot train on \['bad', 'ok'\]"):
            learners.train(["ok", "ok", "bad", "ok"]).result()
        assert learners.lost_rank() is None, "both ranks live: the error is the step's, not a lost rank"

        t0 = time.monotonic()
        with pytest.raises(ray.exceptions.RayActorError):
            learners.train(["wait", "ok", "die", "ok"]).result()
        waited = time.monotonic() - t0
        assert waited < PEER_WAIT_S / 2, (
            f"the call waited {waited:.0f} s for rank 0, which waits for a dead peer"
        )
        assert learners.lost_rank() == 1  # while rank 0 is still busy in its call
    finally:
        learners.shutdown()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rl.checkpoint_every=0"], r"rl.checkpoint_every=0 there is no checkpoint to rebuild"),
        (["rl.learner.max_rebuilds=0"], r"already rebuilt 0 times in this job \(rl.learner.max_rebuilds=0\)"),
    ],
)
def test_a_lost_rank_stops_the_run_when_it_may_not_be_rebuilt(tmp_path, overrides, message):
    """No Ray here: the refusals come before any actor is touched, and name the key to change."""
    from empathy_ray.actors.roles import Roles
    from empathy_ray.config import load_config
    from empathy_ray.rl.driver import GRPODriver
    from empathy_ray.rl.recovery import LearnerLostError

    cfg = load_config(None, [f"run.output_root={tmp_path}", "run.name=t", *overrides])
    driver = GRPODriver(cfg, tmp_path / "rl", [], Roles(cfg))
    driver.step = 4
    try:
        assert driver.recovery.lost_rank() is None  # no learner group at all
        with pytest.raises(LearnerLostError, match=r"learner rank 1 died in step 5 \(RuntimeError: gone\)"):
            driver.recovery.rebuild(1, RuntimeError("gone\nmore detail"))
        with pytest.raises(LearnerLostError, match=message):
            driver.recovery.rebuild(1, RuntimeError("gone"))
    finally:
        driver.writer.close()
    assert driver.roles.counters["learner_rebuilt"] == 0
