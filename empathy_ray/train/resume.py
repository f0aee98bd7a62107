"""Mid-stage checkpoints of SFT and reward-model training, and where a resumed job continues.

Every `checkpoint_every` optimizer steps each Ray Train worker saves its DeepSpeed state (weights,
its ZeRO shard of the optimizer, the LR schedule) and its RNG states into a local folder and reports
it with `ray.train.report(checkpoint=...)`; Ray Train merges the ranks' folders into one
`state_<step>` directory in the job's storage (Ray Train's documented pattern for DeepSpeed) and keeps
the newest `keep_checkpoints`. Rank 0 adds `train_state.json` (step, epoch, micro-batch position,
history), and once every rank's upload is done it points `resume.json` at the directory (atomically).

A resubmitted job is a new Ray Train run: it continues from `ray.train.get_checkpoint()` or from
`resume.json`, whichever is further on, skipping the micro-batches its epoch had done. Not bit-exact
as GRPO's resume is (tests/test_resume.py); it continues the same schedule from the saved step.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empathy_ray.config import TrainerConfig
from empathy_ray.domain.files import atomic_write_text

if TYPE_CHECKING:
    import torch

    from empathy_ray.train.job import WorkerContext

log = logging.getLogger(__name__)

STATE_FILE = "train_state.json"  # rank 0's: position and history; marks a training-state checkpoint
POINTER = "resume.json"  # in the job's storage: the newest complete training-state checkpoint
ENGINE_TAG = "engine"  # DeepSpeed's sub-folder inside a checkpoint


@dataclass(frozen=True)
class Position:
    """Where training continues: after `step` optimizer steps, at micro-batch `batch` of `epoch`."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


def remaining(batches: Iterable[list], epoch: int, start: Position) -> Iterator[tuple[int, list]]:
    """(index, micro-batch) of an epoch's batches still to train: those before `start.batch` of the
    epoch `start` stopped in were trained before the checkpoint."""
    skip = start.batch if epoch == start.epoch else 0
    for i, batch in enumerate(batches):
        if i >= skip:
            yield i, batch


def save_engine_state(engine, folder: Path, rank: int, generators: tuple[torch.Generator, ...]) -> None:
    """This rank's part of a checkpoint: its DeepSpeed files and RNG states (global and `generators`).
    Collective: every rank calls it. Frozen weights (a LoRA base) are left out: they reload from the
    base model."""
    import torch

    from empathy_ray.runtime.checkpoint import rng_state

    lora = any(not p.requires_grad for p in engine.module.parameters())
    engine.save_checkpoint(str(folder), tag=ENGINE_TAG, save_latest=False, exclude_frozen_parameters=lora)
    rng = {"process": rng_state(), "generators": [g.get_state() for g in generators]}
    torch.save(rng, folder / f"rng_rank{rank}.pt")


def load_engine_state(engine, folder: Path, rank: int, generators: tuple[torch.Generator, ...]) -> None:
    """Restore what `save_engine_state` wrote (same world size and ZeRO stage: the fingerprint's)."""
    import torch

    from empathy_ray.runtime.checkpoint import set_rng_state

    lora = any(not p.requires_grad for p in engine.module.parameters())
    path, _ = engine.load_checkpoint(str(folder), tag=ENGINE_TAG, load_module_strict=not lora)
    if path is None:
        raise FileNotFoundError(f"{folder}: no DeepSpeed state under '{ENGINE_TAG}/' to resume from")
    rng = torch.load(folder / f"rng_rank{rank}.pt", weights_only=False)
    set_rng_state(rng["process"])
    for gen, state in zip(generators, rng["generators"], strict=True):
        gen.set_state(state)


def _storage() -> Path:
    """This Ray Train run's storage folder (shared by every node, as Ray Train requires)."""
    import ray.train

    return Path(ray.train.get_context().get_storage().experiment_fs_path)


def save(
    ctx: WorkerContext,
    engine,
    at: Position,
    meta: dict[str, Any],
    history: list[dict[str, Any]],
    generators: tuple[torch.Generator, ...],
) -> None:
    """One checkpoint through Ray Train (every rank calls it), then `resume.json` on rank 0."""
    import ray.train

    name = f"state_{at.step:06d}"
    with tempfile.TemporaryDirectory(prefix="empathy-state-") as tmp:
        save_engine_state(engine, Path(tmp), ctx.rank, generators)
        if ctx.rank == 0:
            state = {**asdict(at), **meta, "history": history}
            (Path(tmp) / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({"step": at.step}, checkpoint=checkpoint, checkpoint_dir_name=name)
    ctx.sum([0.0])  # a barrier: every rank's upload is complete before the pointer names it
    if ctx.rank == 0:
        storage = _storage()
        atomic_write_text(storage / POINTER, json.dumps({"step": at.step, "dir": name}))
        log.info("checkpoint at step %d: %s", at.step, storage / name)


def _step_of(folder: Path) -> int:
    """The step of a training-state checkpoint; -1 when `folder` is none (an export, or gone)."""
    state = folder / STATE_FILE
    return json.loads(state.read_text(encoding="utf-8"))["step"] if state.exists() else -1


def find(reported: Path | None, storage: Path) -> Path | None:
    """The further on of Ray Train's latest checkpoint (`reported`) and the one `resume.json` names;
    None when neither is a training-state checkpoint (a fresh start, or only the final export)."""
    candidates = [reported] if reported is not None else []
    pointer = storage / POINTER
    if pointer.exists():
        candidates.append(storage / json.loads(pointer.read_text(encoding="utf-8"))["dir"])
    best = max(candidates, key=_step_of, default=None)
    return best if best is not None and _step_of(best) >= 0 else None


def restore(
    ctx: WorkerContext, engine, meta: dict[str, Any], generators: tuple[torch.Generator, ...], desc: str
) -> tuple[Position, list[dict[str, Any]]]:
    """Load the newest training-state checkpoint of this job, if any: (where to continue, the history
    rows logged up to it). A fresh start is (Position(), [])."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else nullcontext() as reported:
        folder = find(Path(reported) if reported else None, _storage())
        if folder is None:
            return Position(), []
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        saved = {k: state.get(k) for k in meta}
        if saved != meta:
            raise RuntimeError(
                f"{desc}: checkpoint {folder} was written for {saved}, this run has {meta}; a resumed "
                "stage must train the same schedule on as many workers - run it from scratch instead "
                f"(without --resume, or delete {folder.parent})"
            )
        load_engine_state(engine, folder, ctx.rank, generators)
    at = Position(state["step"], state["epoch"], state["batch"])
    if ctx.rank == 0:
        log.info(
            "resuming %s from checkpoint at step %d (epoch %d, micro-batch %d): %s",
            desc,
            at.step,
            at.epoch,
            at.batch,
            folder,
        )
    return at, state["history"]


def due(tc: TrainerConfig, step: int, total: int) -> bool:
    """A checkpoint after this optimizer step: every `checkpoint_every`, never at the last (the final
    export follows)."""
    return tc.checkpoint_every > 0 and step % tc.checkpoint_every == 0 and step < total
