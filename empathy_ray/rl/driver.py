"""The GRPO driver: owns the algorithm and the data cursor, no model.

One step reads like the algorithm box of DESIGN.md:
  sample B prompts -> rollout workers return B*G answers (load-balanced, streamed with ray.wait)
  -> reward actor and reference actor score them concurrently -> group-normalised advantages
  -> learner update -> weight sync to the rollout workers -> metrics and checkpoint.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from empathy_ray.algo import approx_kl, compute_advantages
from empathy_ray.config import Config
from empathy_ray.domain.files import atomic_dir
from empathy_ray.domain.rollouts import Sample, Scored
from empathy_ray.runtime import checkpoint
from empathy_ray.runtime.tracking import MetricsWriter

log = logging.getLogger(__name__)


@dataclass
class Prompt:
    post_id: str
    text: str  # the post as the model sees it
    ids: list[int]  # chat prompt token ids


@dataclass
class Cursor:
    """Where the driver is in the prompt stream: an epoch-seeded permutation and a position in it."""

    epoch: int = 0
    position: int = 0
    seed: int = 0

    def take(self, n: int, pool_size: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            order = list(range(pool_size))
            random.Random(self.seed * 7919 + self.epoch).shuffle(order)
            take = order[self.position : self.position + n - len(out)]
            out += take
            self.position += len(take)
            if self.position >= pool_size:
                self.epoch, self.position = self.epoch + 1, 0
        return out


def checked_advantages(
    rewards: torch.Tensor, estimator: str, group_size: int
) -> tuple[torch.Tensor, str | None]:
    """Float32 advantages of the step's rewards, or what was not finite ("rewards ..." or "advantages ...",
    with the values) when the update must be skipped. Rewards are checked after the cast to float32:
    a float64 reward beyond 3.4e38 becomes inf there."""
    r32 = rewards.float()
    if not torch.isfinite(r32).all():
        return r32, f"rewards {rewards.tolist()}"
    adv = compute_advantages(estimator, r32, group_size)  # a group sum can still overflow
    return adv, None if torch.isfinite(adv).all() else f"advantages {adv.tolist()}"


@dataclass
class StepTimer:
    """Wall seconds per phase of one step."""

    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0


class GRPODriver:
    """Creates the role actors and runs GRPO steps. `roles` is a `Roles` (see empathy_ray.actors.roles)."""

    def __init__(self, cfg: Config, run_dir: Path, prompts: list[Prompt], roles) -> None:
        self.cfg, self.rl = cfg, cfg.rl
        self.dir = run_dir
        self.prompts = prompts
        self.roles = roles
        self.cursor = Cursor(seed=cfg.run.seed)
        self.step = 0
        self.nonfinite_in_row = 0  # steps skipped in a row for non-finite values (rl.max_nonfinite_steps)
        self.writer = MetricsWriter(run_dir)

    # -- one step ---------------------------------------------------------------------------

    def run_step(self) -> dict[str, Any]:
        timer = StepTimer()
        t_step = time.perf_counter()
        batch = [self.prompts[i] for i in self.cursor.take(self.rl.prompts_per_step, len(self.prompts))]
        with timer("rollout"):
            samples = self.rollout(batch)
        # reward and reference run concurrently: each phase's time is from submission to its result
        scored, reward_terms, timer.phases["reward"], timer.phases["reference"] = self.score(batch, samples)
        rewards = torch.tensor([s.reward for s in scored], dtype=torch.float64)
        if self.rl.algo.kl_in == "reward" and self.rl.algo.kl_coef > 0:
            rewards = rewards - self.rl.algo.kl_coef * torch.tensor([self._seq_kl(s) for s in scored])
        adv, bad = checked_advantages(rewards, self.rl.algo.estimator, self.rl.algo.group_size)
        stats: dict[str, float] = {"train/skipped": float(bad is not None)}
        if bad:
            self.roles.counters["skipped_nonfinite"] += 1
            self.nonfinite_in_row += 1
            log.warning("step %d: non-finite %s; update skipped", self.step + 1, bad)
        else:
            self.nonfinite_in_row = 0
            for s, a in zip(scored, adv.tolist(), strict=True):
                s.advantage = a
            with timer("train"):
                stats |= self.roles.learners.train_step([self._train_item(s) for s in scored])
            # the learner skips micro-batches whose loss is not finite (all ranks together) and says so
            self.roles.counters["skipped_nonfinite_loss"] += int(stats.get("train/skipped_microbatches", 0))
            with timer("sync"):
                stats |= self.roles.sync_weights(version=self.step + 1)
        self.step += 1
        metrics = self._metrics(scored, reward_terms, stats, timer, time.perf_counter() - t_step)
        self.writer.log(self.step, metrics)
        if self.nonfinite_in_row > self.rl.max_nonfinite_steps:
            raise FloatingPointError(
                f"{self.nonfinite_in_row} steps in a row (up to step {self.step}) had non-finite values and "
                f"were skipped (rl.max_nonfinite_steps={self.rl.max_nonfinite_steps}); check the reward "
                "model and the reward weights, or lower rl.learner.lr if the policy diverged"
            )
        log.info(
            "step %d: reward %.3f (format %.2f), kl %.4f, loss %.4f | rollout %.1fs reward %.1fs ref %.1fs "
            "train %.1fs sync %.2fs",
            self.step,
            metrics["reward/total_mean"],
            metrics.get("reward/format_mean", float("nan")),
            metrics.get("train/kl", 0.0),
            metrics.get("train/policy_loss", float("nan")),
            timer.phases.get("rollout", 0),
            timer.phases.get("reward", 0),
            timer.phases.get("reference", 0),
            timer.phases.get("train", 0),
            timer.phases.get("sync", 0),
        )
        return metrics

    def rollout(self, batch: list[Prompt], step: int | None = None) -> list[Sample]:
        """Dispatch one chunk of prompts per rollout worker; stream results back with `ray.wait`.

        One chunk each keeps every vLLM call as large as it can be (chunk x G sequences decoded
        together): an actor runs its calls one after another, so two half-size chunks cost two full
        decode loops (demo recipe: rollout 3.2-4.5 s per step with two chunks, 1.5-1.9 s with one).
        A worker that dies mid-step is restarted by Ray (max_restarts) with its original weights,
        so the current weights are published again and its chunk re-queued: the step still ends
        with exactly B*G samples, none duplicated.
        """
        import ray
        from ray.exceptions import RayActorError

        G = self.rl.algo.group_size
        step = self.step if step is None else step
        workers = self.roles.rollout_workers
        size = max(1, math.ceil(len(batch) / len(workers)))
        queue = deque(range(0, len(batch), size))  # chunk start offsets
        pending: dict[Any, tuple[int, int]] = {}  # ref -> (worker index, chunk start)
        load = [0] * len(workers)
        done: dict[int, list[Sample]] = {}

        def submit() -> None:
            while queue:
                w = min(range(len(workers)), key=lambda i: load[i])
                if load[w] >= 2:
                    return
                start = queue.popleft()
                prompts = [p.ids for p in batch[start : start + size]]
                pending[workers[w].generate.remote(prompts, G, step, start)] = (w, start)
                load[w] += 1

        submit()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            w, start = pending.pop(ready[0])
            load[w] -= 1
            try:
                done[start] = ray.get(ready[0])
            except RayActorError as e:
                self.roles.counters["rollout_redispatched"] += 1
                log.warning(
                    "rollout worker %d died on prompts %d+ (%s); re-syncing and re-dispatching", w, start, e
                )
                self.roles.resync_weights()
                queue.append(start)
            submit()
        samples = [s for start in sorted(done) for s in done[start]]
        uids = [s.uid for s in samples]
        assert len(samples) == len(batch) * G and len(set(uids)) == len(uids), "lost or duplicated samples"
        return samples

    def score(self, batch: list[Prompt], samples: list[Sample]):
        """Reward and reference scoring, submitted together so they run concurrently."""
        import ray

        posts = [batch[s.prompt_index].text for s in samples]
        texts = [s.text for s in samples]
        t0 = time.perf_counter()
        ref_ref = None
        if self.rl.algo.kl_coef > 0 or self.roles.always_reference:
            ref_ref = self.roles.reference.logprobs.remote([(s.prompt_ids, s.response_ids) for s in samples])
        # The reward is retried on timeout (never silently zero) while the reference runs alongside.
        terms = self.roles.score_rewards(posts, texts)
        t_reward = time.perf_counter() - t0
        ref_lp = ray.get(ref_ref) if ref_ref is not None else [[] for _ in samples]
        t_ref = time.perf_counter() - t0
        scored = [
            Scored(
                sample=s,
                reward=terms["total"][i],
                terms={k: v[i] for k, v in terms.items()},
                ref_logprobs=ref_lp[i],
            )
            for i, s in enumerate(samples)
        ]
        return scored, terms, t_reward, t_ref

    def _seq_kl(self, s: Scored) -> float:
        if not s.ref_logprobs:
            return 0.0
        lp, ref = torch.tensor(s.sample.logprobs), torch.tensor(s.ref_logprobs)
        return float(approx_kl(lp, ref, kind=self.rl.algo.kl_kind).sum())

    @staticmethod
    def _train_item(s: Scored) -> dict[str, Any]:
        return {
            "prompt_ids": s.sample.prompt_ids,
            "response_ids": s.sample.response_ids,
            "advantage": s.advantage,
            "ref_logprobs": s.ref_logprobs,
        }

    def _metrics(self, scored, terms, stats, timer: StepTimer, wall: float) -> dict[str, Any]:
        from empathy_ray.domain import coe

        m: dict[str, Any] = {}
        for k, v in terms.items():
            t = torch.tensor(v, dtype=torch.float64)
            m[f"reward/{k}_mean"] = float(t.mean())
            m[f"reward/{k}_std"] = float(t.std()) if len(v) > 1 else 0.0
        lengths = [len(s.sample.response_ids) for s in scored]
        m["rollout/response_len_mean"] = sum(lengths) / len(lengths)
        m["rollout/answer_chars_mean"] = sum(len(coe.parse(s.sample.text).answer) for s in scored) / len(
            scored
        )
        m["rollout/format_valid"] = sum(1 for s in scored if coe.format_reward(s.sample.text) == 1.0) / len(
            scored
        )
        m["rollout/tokens_per_s"] = sum(lengths) / max(timer.phases.get("rollout", 1e-9), 1e-9)
        m["rollout/samples"] = len(scored)
        m["rollout/weight_version"] = min(s.sample.weight_version for s in scored)
        m |= {k: v for k, v in stats.items() if isinstance(v, int | float)}
        for name, secs in timer.phases.items():
            m[f"time/{name}_s"] = secs
        m["time/step_s"] = wall
        m |= {f"counters/{k}": v for k, v in self.roles.counters.items()}
        return m

    # -- checkpoints (empathy_ray.runtime.checkpoint says what they hold) -------------------------------

    def save_checkpoint(self) -> Path:
        state = {"cursor": vars(self.cursor), "counters": dict(self.roles.counters)}
        state["nonfinite_in_row"] = self.nonfinite_in_row
        return checkpoint.save(
            self.dir / "checkpoints", self.step, self.roles.learners, state, self.rl.keep_checkpoints
        )

    def resume(self) -> bool:
        """Continue from the newest checkpoint: the next step is the one the interrupted run would have
        taken, with the same prompts, sampling seeds, weights, optimizer, LR and RNG states."""
        latest = checkpoint.latest(self.dir / "checkpoints")
        if latest is None:
            return False
        state = checkpoint.load_driver_state(latest, self.cfg.run.seed)
        self.roles.learners.load(str(latest))
        self.step = state["step"]
        self.cursor = Cursor(**state["cursor"])
        self.nonfinite_in_row = state["nonfinite_in_row"]
        self.roles.counters.clear()
        self.roles.counters.update(state["counters"])
        self.roles.sync_weights(version=self.step)
        self.writer.close()  # steps logged after the checkpoint are about to run again
        dropped = checkpoint.drop_metrics_after(self.dir / "metrics.jsonl", self.step)
        self.writer = MetricsWriter(self.dir)
        log.info("resumed from %s at step %d (%d later metric rows dropped)", latest, self.step, dropped)
        return True

    def export_policy(self, out_dir: Path) -> Path:
        """The trained policy as a plain HF directory (what eval and serve load)."""
        with atomic_dir(out_dir) as tmp:
            self.roles.learners.export(str(tmp))
        return out_dir

    def train(self, steps: int) -> list[dict[str, Any]]:
        history = []
        while self.step < steps:
            history.append(self.run_step())
            if self.rl.checkpoint_every and self.step % self.rl.checkpoint_every == 0:
                self.save_checkpoint()
        return history
