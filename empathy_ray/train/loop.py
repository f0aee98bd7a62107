"""The training loop SFT and the reward model share, run on every Ray Train worker.

A trainer plugs in a step function (one micro-batch -> its loss and metrics) and a held-out
evaluation. The loop owns the rest: epochs, the rank's batches, DeepSpeed's backward and step, the
gradient-accumulation boundary, a history row every `log_every` optimizer steps (metrics averaged
over ranks), the held-out evaluation after each epoch, and a checkpoint every `checkpoint_every`
optimizer steps that a resubmitted job continues from (train/resume.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from empathy_ray.config import TrainerConfig
from empathy_ray.train import resume
from empathy_ray.train.batches import Shard

if TYPE_CHECKING:
    import torch

    from empathy_ray.train.job import WorkerContext


@dataclass
class StepResult:
    """What a step function returns for one micro-batch."""

    loss: torch.Tensor  # scalar: what DeepSpeed back-propagates, logged as train/loss
    means: dict[str, float] = field(default_factory=dict)  # logged as window means, e.g. train/accuracy
    counts: dict[str, float] = field(default_factory=dict)  # logged per second, e.g. train/tokens_per_s


class _Window:
    """The micro-batches since the last history row."""

    def __init__(self) -> None:
        self.means: dict[str, list[float]] = {}
        self.counts: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def add(self, result: StepResult) -> None:
        for name, value in {"train/loss": result.loss.item(), **result.means}.items():
            self.means.setdefault(name, []).append(value)
        for name, value in result.counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    def row(self, ctx: WorkerContext, lr: float) -> dict[str, float]:
        """Means over the window and the ranks, the learning rate, then the counts per second."""
        means = ctx.mean([sum(v) / len(v) for v in self.means.values()])
        counts = ctx.sum(list(self.counts.values())) if self.counts else []
        seconds = time.perf_counter() - self.t0
        return {
            **dict(zip(self.means, means, strict=True)),
            "train/lr": lr,
            **{name: c / seconds for name, c in zip(self.counts, counts, strict=True)},
        }


def total_steps(shard: Shard, tc: TrainerConfig, world: int) -> int:
    """Optimizer steps of the whole run (the learning-rate schedule's length)."""
    return max(1, shard.num_batches(world) // tc.grad_accum) * tc.epochs


def fit(
    ctx: WorkerContext,
    engine: Any,
    shard: Shard,
    tc: TrainerConfig,
    seed: int,
    step_fn: Callable[[list], StepResult],
    eval_fn: Callable[[], dict[str, float]],
    desc: str,
    generators: tuple[torch.Generator, ...] = (),
) -> list[dict[str, Any]]:
    """Train `engine` (DeepSpeed) for `tc.epochs` epochs; returns the history rows.

    Rows: {"step", "epoch", "train/loss", *step means, "train/lr", *step counts per second} every
    `tc.log_every` optimizer steps and at the last, then {"step", "epoch", *eval_fn()} per epoch.
    A job with a checkpoint of this stage continues from it (`ctx.resumed_from`): the rows up to it
    come from the checkpoint. `generators`: the step function's own RNGs, saved with the checkpoints.
    """
    import torch

    total = total_steps(shard, tc, ctx.world)
    meta = {"total_steps": total, "world": ctx.world, "seed": seed}
    at, history = resume.restore(ctx, engine, meta, generators, desc)
    ctx.resumed_from = step = at.step
    window = _Window()
    bar = ctx.progress(total, desc)
    bar.update(step)
    for epoch in range(at.epoch, tc.epochs):
        engine.train()
        for i, batch in resume.remaining(shard.batches(epoch, seed, ctx.rank, ctx.world), epoch, at):
            result = step_fn(batch)
            engine.backward(result.loss)
            boundary = engine.is_gradient_accumulation_boundary()
            engine.step()
            window.add(result)
            if not boundary:
                continue
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == total:
                row = window.row(ctx, engine.get_lr()[0])
                history.append({"step": step, "epoch": epoch, **row})
                bar.set_postfix({k.removeprefix("train/"): f"{row[k]:.3f}" for k in window.means})
                window = _Window()
            if resume.due(tc, step, total):
                resume.save(ctx, engine, resume.Position(step, epoch, i + 1), meta, history, generators)
        engine.eval()
        with torch.no_grad():
            history.append({"step": step, "epoch": epoch, **eval_fn()})
    bar.close()
    return history
