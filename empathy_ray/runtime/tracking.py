"""Metrics as JSON lines and TensorBoard scalars, one writer per run stage."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any


class MetricsWriter:
    """Appends `{"step": ..., "time": ..., **metrics}` to metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(self, out_dir: str | Path, tensorboard: bool = True) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._f = open(self.dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # a GPU image without the tensorboard package: JSONL only
                logging.getLogger(__name__).warning(
                    "tensorboard is not installed: metrics go to metrics.jsonl only"
                )
            else:
                self._tb = SummaryWriter(str(self.dir / "tb"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, "time": round(time.time(), 3), **metrics}
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._f.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
