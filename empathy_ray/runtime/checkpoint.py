"""GRPO checkpoints: everything a run needs to continue exactly where it stopped.

`<run>/rl/checkpoints/step_<k>/` holds
  - the policy as a plain HF folder and `learner_state/` (DeepSpeed: weights, AdamW moments, the LR
    schedule and its step), written by the learner ranks, plus each rank's RNG states (`rng_rank<r>.pt`);
  - `driver_state.json` (step counter, data cursor, counters, run seed) and `driver_rng.pt`;
  - with rl.max_staleness >= 1, in `driver_state.json` too: the batches in flight ("inflight": step,
    prompt indices and samples, each with the weight version it was generated with). They were drawn
    with older weights than the checkpoint's, so they cannot be drawn again: the driver lets them finish
    before saving, and a resumed run trains on exactly these (empathy_ray/rl/inflight.py).
Rollout sampling needs no other saved state: each request is seeded from (run seed, step, prompt index)
and vLLM seeds its sample j with that seed + j, so the same weights draw the same tokens after a resume.

A checkpoint is filled in a temporary folder and renamed into place (domain.files.atomic_dir): a crash
mid-write leaves the previous checkpoint, and only complete `step_<k>` folders are ever resumed from.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empathy_ray.domain.files import atomic_dir, atomic_write_text

log = logging.getLogger(__name__)

DRIVER_STATE = "driver_state.json"
DRIVER_RNG = "driver_rng.pt"


# -- RNG states ------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch (and CUDA) generator states, in a form torch.save keeps."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_rng(path: str | Path) -> None:
    torch.save(rng_state(), path)


def load_rng(path: str | Path) -> None:
    """Restore what `save_rng` wrote; a checkpoint without the file cannot resume exactly, so it fails."""
    if not Path(path).exists():
        raise FileNotFoundError(
            f"{path}: no RNG state in this checkpoint (written by an older version?); it cannot resume "
            "exactly - start the run again or resume from a newer checkpoint"
        )
    set_rng_state(torch.load(path, weights_only=True))


# -- checkpoint folders ----------------------------------------------------------------------------


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"step_{step:06d}"


def save(root: Path, step: int, learners: Any, driver_state: dict[str, Any], keep: int) -> Path:
    """Write step `step`'s checkpoint atomically, then delete all but the newest `keep`."""
    final = checkpoint_dir(root, step)
    with atomic_dir(final) as tmp:
        learners.save(str(tmp))  # HF policy, learner_state/ and the ranks' RNG files
        atomic_write_text(tmp / DRIVER_STATE, json.dumps({"step": step, **driver_state}))
        save_rng(tmp / DRIVER_RNG)
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    # what a save killed midway left behind (a whole model, on a real checkpoint): no resume reads it
    for stale in [*root.glob(".step_*.tmp"), *root.glob(".step_*.old")]:
        shutil.rmtree(stale, ignore_errors=True)
    log.info("checkpoint %s", final)
    return final


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint (temporary folders start with '.', so they never match)."""
    done = sorted(p for p in root.glob("step_*") if (p / DRIVER_STATE).exists())
    return done[-1] if done else None


def load_driver_state(path: Path, seed: int) -> dict[str, Any]:
    """The driver's saved state, after restoring its RNGs. `seed` is this run's run.seed: sampling seeds
    derive from it, so a different one would silently turn the resume into another run."""
    state = json.loads((path / DRIVER_STATE).read_text(encoding="utf-8"))
    saved = state["cursor"]["seed"]
    if saved != seed:
        from empathy_ray.config import ConfigError

        raise ConfigError(
            f"run.seed={seed}, but checkpoint {path} was written with run.seed={saved}; resume with "
            f"run.seed={saved} (or start a new run without --resume)"
        )
    load_rng(path / DRIVER_RNG)
    return state


def drop_metrics_after(metrics_file: Path, step: int) -> int:
    """Rows of steps after `step` were logged by the run that died before their checkpoint: the resumed
    run logs those steps again, so they go (atomically). Returns how many were dropped."""
    if not metrics_file.exists():
        return 0
    lines = metrics_file.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
    if len(keep) != len(lines):
        atomic_write_text(metrics_file, "".join(keep))
    return len(lines) - len(keep)
