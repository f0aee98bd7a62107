"""Experiment trackers beyond metrics.jsonl: W&B and MLflow, through their own clients.

One tracker run per stage (named `<run>-<stage>`, grouped by the run's name) receives the rows of
the stage's metrics.jsonl with the same step numbers, and the config as its parameters. The ids of a
stage's tracker runs are kept in `<stage>/trackers.json`, so a resumed GRPO stage writes on into the
same runs; neither service can delete a point, so `MetricsWriter` holds GRPO rows back until the
step's checkpoint exists (a step that a resume runs again never reached them). A stage run from
scratch drops trackers.json first (pipeline/run.py) and gets new runs.

W&B honours its own environment (WANDB_MODE=offline keeps runs in `<run>/wandb/`); MLflow writes to
`tracking.mlflow_uri`, by default a file store in `<run>/mlruns`. MLflow's client writes each call
through; W&B's service process buffers, and a driver killed outright (SIGKILL, OOM) takes the rows it
had not yet written with it: W&B can then miss steps before the checkpoint (metrics.jsonl has them),
but still never shows one twice.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from empathy_ray.config import Config, ConfigError, to_dict

IDS_FILE = "trackers.json"


class Tracker(Protocol):
    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...
    def artifact(self, path: Path) -> None: ...
    def close(self) -> None: ...


def flat_params(cfg: Config) -> dict[str, str]:
    """The config as dotted keys -> text: what a tracker shows as the run's parameters."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = json.dumps(value, ensure_ascii=False, default=str)

    walk("", to_dict(cfg))
    return out


class WandbTracker:
    """A W&B run; resumed by id when the stage resumes."""

    def __init__(self, cfg: Config, run_dir: Path, stage: str, run_id: str | None) -> None:
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")  # its banners would crowd the console
        self.run = wandb.init(
            project=cfg.tracking.project,
            dir=str(run_dir),
            id=run_id or uuid.uuid4().hex[:12],
            resume="allow",
            name=f"{cfg.run.name}-{stage}",
            group=cfg.run.name,
            job_type=stage,
            config=flat_params(cfg),
            settings=wandb.Settings(console="off", quiet=True),
        )
        self.id = self.run.id

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        # commit now: W&B otherwise keeps a step's row open until a later step arrives, and a process
        # killed before that loses a row whose checkpoint exists
        self.run.log(dict(metrics), step=step, commit=True)

    def artifact(self, path: Path) -> None:
        import wandb

        art = wandb.Artifact(f"{self.run.group or 'run'}-{path.stem}", type="report")
        art.add_file(str(path))
        self.run.log_artifact(art)

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    """An MLflow run in experiment `tracking.project`; resumed by run id when the stage resumes."""

    def __init__(self, cfg: Config, run_dir: Path, stage: str, run_id: str | None) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = cfg.tracking.mlflow_uri or (run_dir / "mlruns").resolve().as_uri()
        if uri.startswith("file:"):  # MLflow 3 keeps its file store behind this switch; it is what we want
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        if run_id is None:
            exp = self.client.get_experiment_by_name(cfg.tracking.project)
            exp_id = exp.experiment_id if exp else self.client.create_experiment(cfg.tracking.project)
            tags = {"empathy_ray.run": cfg.run.name, "empathy_ray.stage": stage}
            run_id = self.client.create_run(exp_id, run_name=f"{cfg.run.name}-{stage}", tags=tags).info.run_id
            params = [Param(k, v[:6000]) for k, v in flat_params(cfg).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a call
                self.client.log_batch(run_id, params=params[i : i + 100])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.id = run_id

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # MLflow metric names allow letters, digits and _ - . / and space: the names are already so
        self.client.log_batch(self.id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def artifact(self, path: Path) -> None:
        self.client.log_artifact(self.id, str(path))

    def close(self) -> None:
        self.client.set_terminated(self.id)


_KINDS: dict[str, type] = {"wandb": WandbTracker, "mlflow": MlflowTracker}
_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow"}


def _check_installed(kinds: list[str]) -> None:
    import importlib.util

    missing = [k for k in kinds if importlib.util.find_spec(_PACKAGES[k]) is None]
    if missing:
        raise ConfigError(
            f"tracking.backends={missing}: not installed; pip install 'empathy-ray[trackers]' "
            "(wandb and mlflow-skinny), or leave them out of tracking.backends"
        )


def open_trackers(cfg: Config, stage_dir: Path, stage: str) -> list[Tracker]:
    """The stage's tracker runs for `tracking.backends` (TensorBoard is MetricsWriter's own), resumed
    when `stage_dir` names earlier ones."""
    kinds = [b for b in cfg.tracking.backends if b in _KINDS]
    if not kinds:
        return []
    _check_installed(kinds)
    ids_path = stage_dir / IDS_FILE
    ids = json.loads(ids_path.read_text(encoding="utf-8")) if ids_path.exists() else {}
    trackers = {k: _KINDS[k](cfg, stage_dir.parent, stage, ids.get(k)) for k in kinds}
    stage_dir.mkdir(parents=True, exist_ok=True)
    ids_path.write_text(json.dumps({k: t.id for k, t in trackers.items()}), encoding="utf-8")
    return list(trackers.values())


def publish_report(cfg: Config, run_dir: Path, files: list[Path]) -> None:
    """The run's report (and summary) as artifacts of a `<run>-report` tracker run per backend."""
    for tracker in open_trackers(cfg, run_dir / "report", "report"):
        try:
            for path in files:
                if path.exists():
                    tracker.artifact(path)
        finally:
            tracker.close()
