"""The GRPO driver: owns the algorithm and the data cursor; the roles own the models.

One step, as `run_step` reads:
  sample B prompts -> the rollout workers return B*G answers -> the reward actor and the reference
  actor score them side by side -> group-normalised advantages (after the KL penalty when
  rl.algo.kl_in=reward) -> learner update -> weight sync to the rollout workers -> metrics.
With rl.max_staleness = k >= 1 the rollouts and scoring of the next k steps run while the learner trains
(empathy_ray/rl/inflight.py); k = 0 is the loop above.
Every role is reached through `Roles` (empathy_ray/actors/roles.py): this module makes no Ray call.
A learner rank that dies mid-run is replaced with its whole group, restored from the last checkpoint
(empathy_ray/rl/recovery.py).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from empathy_ray.actors.roles import Roles
from empathy_ray.algo import compute_advantages, kl_penalised_rewards
from empathy_ray.config import AlgoConfig, Config, ConfigError
from empathy_ray.domain import coe
from empathy_ray.domain.files import atomic_dir
from empathy_ray.domain.rollouts import Sample, Scored
from empathy_ray.rl.inflight import AsyncRollouts
from empathy_ray.rl.recovery import LearnerRecovery
from empathy_ray.rl.timing import StepTimer
from empathy_ray.runtime import checkpoint, console
from empathy_ray.runtime.tracking import MetricsWriter, rollback_tensorboard

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


def kl_penalised(rewards: torch.Tensor, scored: list[Scored], algo: AlgoConfig) -> torch.Tensor:
    """rl.algo.kl_in=reward: each reward minus kl_coef x its answer's summed KL to the reference
    (an answer without reference log-probs has none)."""
    lengths = [len(s.ref_logprobs) for s in scored]
    logp = torch.zeros(len(scored), max(lengths, default=0))  # [N, T], zero past each answer's end
    ref = torch.zeros_like(logp)
    for i, s in enumerate(scored):
        logp[i, : lengths[i]] = torch.tensor(s.sample.logprobs[: lengths[i]])
        ref[i, : lengths[i]] = torch.tensor(s.ref_logprobs)
    mask = torch.arange(logp.shape[1])[None, :] < torch.tensor(lengths)[:, None]
    return kl_penalised_rewards(rewards, logp, ref, mask, algo.kl_coef, algo.kl_kind)


def train_item(s: Scored) -> dict[str, Any]:
    """What the learner trains on; the engine's log-probs are its truncated importance weights' base."""
    return {
        "prompt_ids": s.sample.prompt_ids,
        "response_ids": s.sample.response_ids,
        "advantage": s.advantage,
        "ref_logprobs": s.ref_logprobs,
        "rollout_logprobs": s.sample.logprobs,
    }


def _bar_figures(m: dict[str, Any]) -> dict[str, str]:
    """What the console's GRPO bar shows of a step: reward, KL and where the seconds went."""
    phases = " ".join(
        f"{p[:3]} {m.get(f'time/{p}_s', 0.0):.1f}" for p in ("rollout", "reward", "train", "sync")
    )
    return {"reward": f"{m['reward/total_mean']:.3f}", "kl": f"{m.get('train/kl', 0.0):.4f}", "s": phases}


class GRPODriver:
    """Runs GRPO steps over `prompts` with the actors of `roles`; metrics go to `run_dir`."""

    def __init__(self, cfg: Config, run_dir: Path, prompts: list[Prompt], roles: Roles) -> None:
        self.cfg, self.rl = cfg, cfg.rl
        self.dir = run_dir
        self.prompts = prompts
        self.roles = roles
        self.cursor = Cursor(seed=cfg.run.seed)
        self.step = 0
        self.nonfinite_in_row = 0  # steps skipped in a row for non-finite values (rl.max_nonfinite_steps)
        self.writer = self._metrics_writer()
        self.bar: Any = None  # the console's progress bar while `train` runs
        self.ahead = AsyncRollouts(self) if self.rl.max_staleness > 0 else None  # rollouts in flight
        self.trained: list[Scored] = []  # what the last step trained on (its samples' weight versions)
        self.recovery = LearnerRecovery(self)

    def _metrics_writer(self) -> MetricsWriter:
        """With checkpoints, trackers that cannot delete a point get a step once its checkpoint exists."""
        return MetricsWriter.for_stage(self.cfg, self.dir, "rl", defer=self.rl.checkpoint_every > 0)

    # -- one step ---------------------------------------------------------------------------

    def run_step(self) -> dict[str, Any]:
        timer = StepTimer()
        t_step = time.perf_counter()
        if self.ahead is None:
            batch = [self.prompts[i] for i in self.cursor.take(self.rl.prompts_per_step, len(self.prompts))]
            with timer("rollout"):
                samples = self.rollout(batch)
            scored, reward_terms = self.score(batch, samples, timer)
            stats = self.update(scored, timer)
        else:
            scored, reward_terms, stats = self.ahead.step(timer)
        self.trained = scored
        self.step += 1
        metrics = self._metrics(scored, reward_terms, stats, timer, time.perf_counter() - t_step)
        self.writer.log(self.step, metrics)
        if self.nonfinite_in_row > self.rl.max_nonfinite_steps:
            raise FloatingPointError(
                f"{self.nonfinite_in_row} steps in a row (up to step {self.step}) had non-finite values and "
                f"were skipped (rl.max_nonfinite_steps={self.rl.max_nonfinite_steps}); check the reward "
                "model and the reward weights, or lower rl.learner.lr if the policy diverged"
            )
        self._log_step(metrics, timer)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(_bar_figures(metrics), refresh=False)
        return metrics

    def rollout(self, batch: list[Prompt], step: int | None = None) -> list[Sample]:
        """G answers per prompt of `batch`, drawn with the sampling seeds of `step` (default: this one).
        A rollout worker that dies mid-step is replaced and its prompts sampled again (Roles.generate)."""
        G = self.rl.algo.group_size
        step = self.step if step is None else step
        return self.checked(self.roles.generate([p.ids for p in batch], G, step).result(), len(batch))

    def checked(self, samples: list[Sample], prompts: int) -> list[Sample]:
        uids = [s.uid for s in samples]
        n = prompts * self.rl.algo.group_size
        assert len(samples) == n and len(set(uids)) == len(uids), "lost or duplicated samples"
        return samples

    def score(
        self, batch: list[Prompt], samples: list[Sample], timer: StepTimer
    ) -> tuple[list[Scored], dict[str, list[float]]]:
        """Reward and reference scoring, submitted together so they run side by side; each phase's time
        runs from the submission to its result. The reward is retried on timeout (never silently zero)."""
        t0 = time.perf_counter()
        ref = None
        if self.rl.algo.kl_coef > 0 or self.roles.always_reference:
            ref = self.roles.ref_logprobs([(s.prompt_ids, s.response_ids) for s in samples])
        posts = [batch[s.prompt_index].text for s in samples]
        terms = self.roles.score(posts, [s.text for s in samples]).result()
        timer.phases["reward"] = time.perf_counter() - t0
        ref_lp = ref.result() if ref is not None else [[] for _ in samples]
        timer.phases["reference"] = time.perf_counter() - t0
        scored = [
            Scored(s, terms["total"][i], {k: v[i] for k, v in terms.items()}, ref_logprobs=ref_lp[i])
            for i, s in enumerate(samples)
        ]
        return scored, terms

    def update(self, scored: list[Scored], timer: StepTimer) -> dict[str, float]:
        """Advantages, one learner update and the weight sync. A step whose rewards or advantages are
        not finite is skipped (warned, counted) and leaves every weight alone."""
        if not self.set_advantages(scored):
            return {"train/skipped": 1.0}
        stats = {"train/skipped": 0.0}
        with timer("train"):
            stats |= self.learned(self.learn(scored))
        with timer("sync"):
            stats |= self.roles.sync(version=self.step + 1).result()
        return stats

    def learn(self, scored: list[Scored]) -> Any:
        """Submit one learner update on `scored` (advantages set); `learned` waits for its stats."""
        return self.roles.train([train_item(s) for s in scored])

    def learned(self, pending: Any) -> dict[str, float]:
        stats = pending.result()
        # the learner skips micro-batches whose loss is not finite (all ranks together) and says so
        self.roles.counters["skipped_nonfinite_loss"] += int(stats.get("train/skipped_microbatches", 0))
        return stats

    def set_advantages(self, scored: list[Scored]) -> bool:
        """Each sample's advantage; False (warned, counted) when the rewards or advantages are not finite
        and the step must be skipped."""
        algo = self.rl.algo
        rewards = torch.tensor([s.reward for s in scored], dtype=torch.float64)
        if algo.kl_in == "reward" and algo.kl_coef > 0:
            rewards = kl_penalised(rewards, scored, algo)
        adv, bad = checked_advantages(rewards, algo.estimator, algo.group_size)
        if bad:
            self.roles.counters["skipped_nonfinite"] += 1
            self.nonfinite_in_row += 1
            log.warning("step %d: non-finite %s; update skipped", self.step + 1, bad)
            console.warn_once(
                "rl",
                "nonfinite-step",
                f"step {self.step + 1} had non-finite rewards or advantages and was skipped (later ones are "
                "in logs/driver.log); check the reward model and rl.reward weights",
            )
            return False
        self.nonfinite_in_row = 0
        for s, a in zip(scored, adv.tolist(), strict=True):
            s.advantage = a
        return True

    def _metrics(self, scored, terms, stats, timer: StepTimer, wall: float) -> dict[str, Any]:
        m: dict[str, Any] = {}
        for k, v in terms.items():
            t = torch.tensor(v, dtype=torch.float64)
            m[f"reward/{k}_mean"] = float(t.mean())
            m[f"reward/{k}_std"] = float(t.std()) if len(v) > 1 else 0.0
        lengths = [len(s.sample.response_ids) for s in scored]
        m["rollout/response_len_mean"] = sum(lengths) / len(lengths)
        answers = [coe.parse(s.sample.text).answer for s in scored]
        m["rollout/answer_chars_mean"] = sum(len(a) for a in answers) / len(scored)
        # the reward's unweighted format term is 1.0 exactly when the completion is valid CoE
        m["rollout/format_valid"] = sum(v == 1.0 for v in terms["format"]) / len(scored)
        m["rollout/tokens_per_s"] = sum(lengths) / max(timer.phases.get("rollout", 1e-9), 1e-9)
        m["rollout/samples"] = len(scored)
        m["rollout/weight_version"] = min(s.sample.weight_version for s in scored)
        m |= {k: v for k, v in stats.items() if isinstance(v, int | float)}
        for name, secs in timer.phases.items():
            m[f"time/{name}_s"] = secs
        m["time/step_s"] = wall
        m |= {f"counters/{k}": v for k, v in self.roles.counters.items()}
        return m

    def _log_step(self, metrics: dict[str, Any], timer: StepTimer) -> None:
        log.info(
            "step %d: reward %.3f (format %.2f), kl %.4f, loss %.4f | rollout %.1fs reward %.1fs ref %.1fs "
            "train %.1fs sync %.2fs",
            self.step,
            metrics["reward/total_mean"],
            metrics.get("reward/format_mean", float("nan")),
            metrics.get("train/kl", 0.0),
            metrics.get("train/policy_loss", float("nan")),
            *(timer.phases.get(p, 0) for p in ("rollout", "reward", "reference", "train", "sync")),
        )

    # -- checkpoints (empathy_ray.runtime.checkpoint says what they hold) -------------------------------

    def save_checkpoint(self) -> Path:
        state = {"cursor": vars(self.cursor), "counters": dict(self.roles.counters)}
        state["nonfinite_in_row"] = self.nonfinite_in_row
        if self.ahead is not None:  # the rollouts in flight, finished first: a resume trains on them
            state |= self.ahead.state()
        path = checkpoint.save(
            self.dir / "checkpoints", self.step, self.roles.learners, state, self.rl.keep_checkpoints
        )
        self.writer.commit(self.step)  # no resume runs these steps again: the trackers may have them
        return path

    def resume(self) -> bool:
        """Continue from the newest checkpoint: the next step is the one the interrupted run would have
        taken, with the same prompts, sampling seeds, weights, optimizer, LR and RNG states."""
        latest = checkpoint.latest(self.dir / "checkpoints")
        if latest is None:
            return False
        self.restore(latest)
        return True

    def restore(self, latest: Path | None) -> None:
        """The learners, the driver's state and the metrics as checkpoint `latest` left them; None: as
        at the start of the run (the learners must hold the starting policy: a rebuilt group does)."""
        state = {"step": 0, "cursor": {"seed": self.cfg.run.seed}, "nonfinite_in_row": 0, "counters": {}}
        if latest is not None:
            state = checkpoint.load_driver_state(latest, self.cfg.run.seed)
        if state.get("inflight") and self.ahead is None:
            raise ConfigError(
                f"checkpoint {latest} holds rollouts in flight (written with rl.max_staleness="
                f"{state['max_staleness']}); resume with rl.max_staleness >= 1"
            )
        if latest is not None:
            self.roles.learners.load(str(latest))
        self.step = state["step"]
        self.cursor = Cursor(**state["cursor"])
        self.nonfinite_in_row = state["nonfinite_in_row"]
        self.roles.counters.clear()
        self.roles.counters.update(state["counters"])
        self.roles.sync(version=self.step).result()
        if self.ahead is not None:
            self.ahead.restore(state)
        self.writer.close()  # steps logged after the checkpoint are about to run again
        dropped = checkpoint.drop_metrics_after(self.dir / "metrics.jsonl", self.step)
        rollback_tensorboard(self.dir / "tb", self.step)
        self.writer = self._metrics_writer()
        log.info("restored %s: step %d (%d later metric rows dropped)", latest or "start", self.step, dropped)

    def export_policy(self, out_dir: Path) -> Path:
        """The trained policy as a plain HF directory (what eval and serve load)."""
        with atomic_dir(out_dir) as tmp:
            self.roles.learners.export(str(tmp))
        return out_dir

    def train(self, steps: int) -> list[dict[str, Any]]:
        """Steps up to `steps`, with a checkpoint every rl.checkpoint_every and after the last one (a
        longer run resumes from there, and every step reaches the trackers). A step that fails because a
        learner rank died is run again, from the last checkpoint, by a rebuilt learner group."""
        history, start = [], self.step
        self.bar = console.progress(steps, "[rl]", initial=self.step)
        try:
            while self.step < steps:
                try:
                    history.append(self.run_step())
                    every = self.rl.checkpoint_every
                    if every and (self.step % every == 0 or self.step == steps):
                        self.save_checkpoint()
                except Exception as e:
                    rank = self.recovery.lost_rank()
                    if rank is None:
                        raise
                    self.recovery.rebuild(rank, e)  # back to the last checkpoint's step
                    del history[max(self.step - start, 0) :]
                    self.bar.n = self.step
            if self.ahead is not None:
                self.ahead.drain()  # nothing generates behind what comes next (held-out evaluation)
        finally:
            self.bar.close()
            self.bar = None
        return history
