"""One actor group for every RL role: placement, restarts, process set-up, readiness and fan-out.

An `ActorGroup` runs N actors of a plain class (the class itself knows nothing of Ray):
- placement: one bundle per actor in one placement group, so all N are scheduled at once or none,
  and a restarted actor comes back in its own bundle;
- restarts: Ray restarts a dead actor up to the role's `max_restarts`; the call it was running fails
  and is never re-run by Ray (max_task_retries=0): the caller decides, as `balanced` does;
- process set-up: `setup_process()` (cache folders, offline flags, logging) runs in every actor
  before the class's own `__init__`;
- readiness: `wait_ready` returns once every actor finished `__init__`, and fails with its error;
- fan-out: the same call to every actor (`call_all`), one argument tuple each (`call_each`), one
  share of a list each (`call_shares`), one actor (`call_one`), or a queue of calls balanced over
  the actors and re-sent when an actor dies (`balanced`);
- retries: a call to a role of one (reward, reference) bounded in time and re-sent after a timeout or
  a death (`call_with_retries`), once the restarted actor is back (`await_restart`).

Calls return at once; what they give back is waited for with `ray.get` or a `Pending`.
Reward and reference are groups of one, the rollout workers a group of N, the learner ranks a
group of M (`LearnerGroup` adds their rendezvous).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError
from ray.util.placement_group import PlacementGroup, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from empathy_ray.config import ActorResources
from empathy_ray.runtime.logs import role_log, tag_role
from empathy_ray.runtime.placement import reserve, split_even
from empathy_ray.runtime.process import setup_process

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pending(Generic[T]):
    """Work already submitted to actors. `result()` waits for it (and does what must follow, such as
    a retry) the first time and keeps the value; a failed wait raises and may be called again."""

    def __init__(self, wait: Callable[[], T]) -> None:
        self._wait: Callable[[], T] | None = wait
        self._value: Any = None

    def result(self) -> T:
        if self._wait is not None:
            self._value = self._wait()
            self._wait = None
        return self._value


def _with_process_setup(cls: type, log_file: str | None) -> type:
    """`cls` whose `__init__` first sets the process up the way every entry point does, its output
    going to `log_file` (the role's log in the run folder) when one is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        setup_process(log_file=log_file)
        try:
            cls.__init__(self, *args, **kwargs)
        except BaseException:
            traceback.print_exc()  # into the role's log: the tail the console shows for a failed start
            raise

    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": cls.__doc__})


class ActorGroup:
    """`actors[r]` is an actor of one plain class in bundle r of the group's placement group.

    A fan-out (`call_all`, `call_each`, `call_shares`) is submitted under the group's lock, so every
    actor receives the fan-outs in one order even when several threads send them (Ray runs one
    submitter's calls to an actor in submission order). Learner ranks need it: with the reference in the
    learner a scoring thread sends reference calls while the driver trains and syncs, and two ranks that
    ran two collective calls in opposite orders would wait for each other for ever."""

    def __init__(self, role: str, actors: list[ActorHandle], pg: PlacementGroup) -> None:
        self.role, self.actors, self.pg = role, actors, pg
        self._order = threading.Lock()

    @classmethod
    def start(
        cls,
        role: str,
        actor_cls: type,
        res: ActorResources,
        args: tuple | Callable[[int], tuple],
        count: int = 1,
        placement_timeout_s: float = 300.0,
    ) -> ActorGroup:
        """`count` actors of `actor_cls` built with `args` (or `args(rank)`); returns once they are
        placed, not once they are up (`wait_ready`), so several roles start side by side."""
        pg = reserve(role, count, res, placement_timeout_s)
        remote = ray.remote(_with_process_setup(actor_cls, role_log(role)))
        group = cls(role, [], pg)
        try:
            for r in range(count):
                opts = remote.options(
                    num_cpus=res.num_cpus,
                    num_gpus=res.num_gpus,
                    resources=dict(res.resources),
                    max_restarts=res.max_restarts,
                    max_task_retries=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=r),
                )
                group.actors.append(opts.remote(*(args(r) if callable(args) else args)))
        except BaseException:
            group.shutdown()
            raise
        return group

    def wait_ready(self, timeout_s: float) -> None:
        wait_ready([self], timeout_s)

    # -- fan-out: each returns without waiting --------------------------------------------------------

    def call_all(self, method: str, *args: Any) -> list[ray.ObjectRef]:
        return self.call_each(method, [args] * len(self.actors))

    def call_each(self, method: str, per_actor: Sequence[tuple]) -> list[ray.ObjectRef]:
        with self._order:
            return [getattr(a, method).remote(*args) for a, args in zip(self.actors, per_actor, strict=True)]

    def call_shares(self, method: str, items: list[Any], *args: Any) -> list[ray.ObjectRef]:
        """Contiguous shares of `items` in order, sizes differing by at most one, one per actor (`args`
        follow each share)."""
        return self.call_each(method, [(share, *args) for share in split_even(items, len(self.actors))])

    def call_one(self, index: int, method: str, *args: Any) -> ray.ObjectRef:
        return getattr(self.actors[index], method).remote(*args)

    def balanced(
        self,
        method: str,
        calls: list[tuple],
        on_death: Callable[[int, tuple, RayActorError], None],
        per_actor: int = 2,
    ) -> Pending[list[Any]]:
        """Every call (an argument tuple) to the least busy actor, at most `per_actor` in flight on
        each; the results in the order of `calls`. A call whose actor died (Ray restarts it) is
        queued again after `on_death(actor index, args, error)`: every call returns exactly once."""
        queue = deque(range(len(calls)))
        pending: dict[ray.ObjectRef, tuple[int, int]] = {}  # ref -> (actor index, call index)
        load = [0] * len(self.actors)
        done: dict[int, Any] = {}

        def submit() -> None:
            while queue:
                a = min(range(len(self.actors)), key=lambda i: load[i])
                if load[a] >= per_actor:
                    return
                c = queue.popleft()
                pending[self.call_one(a, method, *calls[c])] = (a, c)
                load[a] += 1

        def wait() -> list[Any]:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                a, c = pending.pop(ready[0])
                load[a] -= 1
                try:
                    done[c] = ray.get(ready[0])
                except RayActorError as e:
                    on_death(a, calls[c], e)
                    queue.append(c)
                submit()
            return [done[c] for c in range(len(calls))]

        submit()
        return Pending(wait)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        remove_placement_group(self.pg)
        self.actors = []


def wait_ready(groups: Sequence[ActorGroup], timeout_s: float) -> None:
    """Return once every actor of every group has finished `__init__`. One that failed (a broken
    model folder, a bad config) raises its error here; one still starting after `timeout_s` raises
    a TimeoutError naming its role."""
    waiting = {a.__ray_ready__.remote(): g.role for g in groups for a in g.actors}
    deadline = time.monotonic() + timeout_s
    while waiting:
        ready, _ = ray.wait(list(waiting), num_returns=1, timeout=max(deadline - time.monotonic(), 0.0))
        if not ready:
            roles = sorted(set(waiting.values()))
            raise TimeoutError(
                f"{len(waiting)} actors of the {', '.join(roles)} role(s) were not up within {timeout_s:g} s; "
                "look in their logs (a model still loading on a slow disk, or a node that never came up)"
            )
        role = waiting.pop(ready[0])
        try:
            ray.get(ready[0])
        except Exception as e:
            tag_role(e, role)  # the console names the role and shows its log
            raise


def await_restart(actor: ActorHandle, timeout_s: float) -> None:
    """Wait (at most `timeout_s`) until an actor that died is back. Ray restarts it in the background,
    and calls made meanwhile fail at once with ActorUnavailableError: without this wait a retry would
    fail within a second. `__ray_ready__` is the probe (it answers once `__init__` has run); any other
    error (an actor dead for good, a timeout) is left to the caller's next call, which raises it."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=left)
            return
        except ActorUnavailableError:
            time.sleep(min(0.5, max(left, 0.0)))
        except (GetTimeoutError, RayActorError):
            return


def call_with_retries(
    actor: ActorHandle,
    method: str,
    args: tuple,
    *,
    timeout_s: float,
    retries: int,
    what: str,
    section: str,
    error: type[Exception],
    counters: Counter | None = None,
    logger: logging.Logger = log,
) -> Pending[Any]:
    """`actor.<method>(*args)`, submitted now. The result waits at most `timeout_s` per attempt and
    makes up to `retries` more attempts after a timeout or an actor death (each logged, and counted in
    `counters["<role>_retries"]`, the role being `section`'s last part), then raises `error` naming
    the `section`'s timeout_s and retries keys. Errors raised by the method itself (a bad input) are
    not retried: they would fail again.

    A timed-out call is cancelled so it does not run later on top of the retry; one already running on
    a single-threaded actor cannot be interrupted, so a hung actor ends in the error, by design.
    """
    call = getattr(actor, method)
    first = call.remote(*args)
    counter = f"{section.rsplit('.', 1)[-1]}_retries"

    def wait() -> Any:
        ref, attempts = first, retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                ref = call.remote(*args)
            try:
                return ray.get(ref, timeout=timeout_s)
            except (GetTimeoutError, RayActorError) as e:
                last: Exception = e
                if isinstance(e, GetTimeoutError):
                    ray.cancel(ref)
                if attempt == attempts:
                    break
                if counters is not None:
                    counters[counter] += 1
                died = isinstance(e, RayActorError)
                reason = f"actor died: {type(e).__name__}" if died else "timed out"
                logger.warning("%s failed on attempt %d/%d (%s); retrying", what, attempt, attempts, reason)
                if died:
                    await_restart(actor, timeout_s)
        detail = " ".join(str(last).split())[:200]
        raise error(
            f"no answer to the {what} after {attempts} attempts of at most {timeout_s:g} s each (last error: "
            f"{type(last).__name__}: {detail}); raise {section}.timeout_s or {section}.retries, or look for "
            "the cause in the actor's log"
        ) from last

    return Pending(wait)
