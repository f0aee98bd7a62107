"""Metrics of one run stage: JSON lines, TensorBoard scalars and the trackers of `tracking.backends`.

metrics.jsonl is the record every other view follows. On a GRPO resume the rows after the
checkpoint are dropped (runtime/checkpoint.py) and TensorBoard's events are rolled back with them
(`rollback_tensorboard`); W&B and MLflow cannot delete a point, so when the stage checkpoints their
rows wait until the step's checkpoint exists (`commit`) and a step run again never reached them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from empathy_ray.config import Config
    from empathy_ray.runtime.trackers import Tracker

log = logging.getLogger(__name__)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


class MetricsWriter:
    """Appends `{"step": ..., "time": ..., **metrics}` to metrics.jsonl and mirrors the scalars to
    TensorBoard and to `trackers`; with `defer`, trackers get a row only once `commit` covers its step."""

    def __init__(
        self,
        out_dir: str | Path,
        tensorboard: bool = True,
        trackers: Sequence[Tracker] = (),
        defer: bool = False,
    ) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._f = open(self.dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = None
        self._trackers = list(trackers)
        self._defer = defer
        self._pending: list[tuple[int, dict[str, float]]] = []
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # a GPU image without the tensorboard package: JSONL only
                log.warning("tensorboard is not installed: metrics go to metrics.jsonl only")
            else:
                self._tb = SummaryWriter(str(self.dir / "tb"))

    @classmethod
    def for_stage(cls, cfg: Config, out_dir: Path, stage: str, defer: bool = False) -> MetricsWriter:
        """The writer `tracking.backends` asks for, its tracker runs resumed when `out_dir` has them."""
        from empathy_ray.runtime.trackers import open_trackers

        backends = cfg.tracking.backends
        trackers = open_trackers(cfg, Path(out_dir), stage)
        return cls(out_dir, tensorboard="tensorboard" in backends, trackers=trackers, defer=defer)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, "time": round(time.time(), 3), **metrics}
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()
        scalars = _scalars(metrics)
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()
        self._pending.append((step, scalars))
        if not self._defer:
            self.commit(step)

    def commit(self, step: int) -> None:
        """Send the held rows up to `step` (its checkpoint exists) to the trackers."""
        ready = [(s, m) for s, m in self._pending if s <= step]
        self._pending = [(s, m) for s, m in self._pending if s > step]
        for tracker in self._trackers:
            for s, m in ready:
                tracker.log(s, m)

    def close(self) -> None:
        """Rows still held were never checkpointed: a resume runs their steps again, so they are dropped."""
        self._f.close()
        if self._tb is not None:
            self._tb.close()
        for tracker in self._trackers:
            tracker.close()
        self._trackers = []


def rollback_tensorboard(tb_dir: Path, last_step: int) -> int:
    """Rewrite the event files under `tb_dir` without the events after `last_step` (the steps a resume
    runs again); returns how many were dropped."""
    if not tb_dir.is_dir():
        return 0
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    files = sorted(tb_dir.glob("events.out.tfevents.*"))
    if not files:
        return 0
    kept, dropped = [], 0
    for path in files:
        for event in EventFileLoader(str(path)).Load():
            if event.HasField("file_version"):
                continue  # the new file writes its own
            if event.step > last_step:
                dropped += 1
            else:
                kept.append(event)
    # the kept events under the first file's name: it still sorts before the files written next
    with tempfile.TemporaryDirectory(dir=tb_dir) as tmp:
        writer = EventFileWriter(tmp)
        for event in kept:
            writer.add_event(event)
        writer.close()
        (written,) = Path(tmp).glob("events.out.tfevents.*")
        for path in files[1:]:
            path.unlink()
        os.replace(written, files[0])
    return dropped


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
