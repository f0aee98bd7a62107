"""One run folder: its layout, summary.json, and the one owner of each stage's status.

A stage's record in summary.json goes running -> done (its results) or running -> failed (the error's
type and message); a process killed mid-stage leaves it running. Resubmission reads these records to
decide what to skip or resume, and the console prints them.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from empathy_ray.config import Config, to_dict
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.pipeline.stage import Decision, Stage, decide
from empathy_ray.runtime.logs import failed_role
from empathy_ray.runtime.run_dir import RunLayout
from empathy_ray.runtime.trackers import IDS_FILE

log = logging.getLogger(__name__)


def read_summary(layout: RunLayout) -> dict[str, Any]:
    path = layout.summary
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class Run:
    """Paths of one run (`layout`) and its summary.json (rewritten atomically on every change)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.layout = RunLayout.of(cfg)
        self.cluster_outlives_us = False  # joined a cluster: a Serve app stays up after we exit
        self.layout.dir.mkdir(parents=True, exist_ok=True)
        self.summary: dict[str, Any] = read_summary(self.layout)

    @property
    def dir(self) -> Path:
        return self.layout.dir

    def record(self, key: str, result: dict[str, Any]) -> None:
        self.summary[key] = result
        self.summary["config"] = to_dict(self.cfg)
        text = json.dumps(self.summary, ensure_ascii=False, indent=2, default=str)
        atomic_write_text(self.layout.summary, text)

    def decide(self, stage: Stage, fingerprint: str, wanted: dict[str, Any]) -> Decision:
        """What to do with `stage` given its last record and what the run folder holds."""
        output = stage.output(self.layout).exists() if stage.output else False
        return decide(stage, self.summary.get(stage.name, {}), fingerprint, wanted, output)

    def clear_progress(self, stage: Stage) -> None:
        """Before a run from scratch: drop the stage's checkpoints (a later resume must not pick one
        made under another config), its metrics, which would otherwise be appended to, and the ids of
        its tracker runs (a new run gets new ones)."""
        stage_dir = self.layout.stage_dir(stage.name)
        stale = [self.layout.metrics(stage.name), self.layout.tensorboard(stage.name), stage_dir / IDS_FILE]
        if stage.checkpoints:
            stale.append(stage.checkpoints(self.layout))
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def failure_log(self, role: str) -> Path:
        """The log file that shows a failure of `role`: its own, else the driver's."""
        path = self.layout.log(role)
        return path if path.exists() else self.layout.log("driver")

    def attempt(
        self,
        name: str,
        fingerprint: str,
        wanted: dict[str, Any],
        work: Callable[[], dict[str, Any]],
        role: str = "driver",
    ) -> dict[str, Any]:
        """Run `work` as stage `name`, recording running, then done with its result or failed with the error,
        the role it came from (else `role`) and that role's log file (re-raised). Ctrl-C or a kill leaves the record at
        running: interrupted, not failed."""
        stamp = {"fingerprint": fingerprint, "extent": wanted}
        self.record(name, {"status": "running", **stamp})
        try:
            result = work()
        except Exception as e:
            role = failed_role(e, role)
            error = {
                "type": type(e).__name__,
                "message": str(e),
                "role": role,
                "log": str(self.failure_log(role)),
            }
            self.record(name, {"status": "failed", **stamp, "error": error})
            log.error("stage %s failed in the %s role: %s: %s", name, role, error["type"], error["message"])
            raise
        self.record(name, {**result, "status": "done", **stamp})
        return self.summary[name]
