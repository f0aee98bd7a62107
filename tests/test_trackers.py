"""Experiment trackers: the rows of metrics.jsonl reach TensorBoard, W&B (offline) and MLflow (file store)
with their step numbers, and a resume never shows a step twice in any of them.

The writer-level test plays a GRPO run killed after step 3 whose last checkpoint is step 2, then the
resumed run (steps 3 and 4), with the real clients and no Ray. The GRPO runs through real actors are
in tests/test_console.py (steps) and tests/test_resume.py (a driver killed with SIGKILL).
"""

from __future__ import annotations

import json
import re

import pytest

from empathy_ray.config import load_config
from empathy_ray.runtime import checkpoint
from empathy_ray.runtime.trackers import flat_params
from empathy_ray.runtime.tracking import MetricsWriter, read_metrics, rollback_tensorboard
from tests.tracker_reads import TRACKERS, mlflow_steps, tensorboard_steps, wandb_steps


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    return load_config(None, [f"run.output_root={tmp_path}", "run.name=r", TRACKERS])


def _row(step: int) -> dict[str, float]:
    return {"reward/total_mean": 0.1 * step, "train/kl": 0.001 * step, "counters/restarts": 0}


def test_a_resumed_stage_shows_each_step_once_in_every_tracker(cfg):
    rl_dir = cfg.run.dir / "rl"
    first = MetricsWriter.for_stage(cfg, rl_dir, "rl", defer=True)
    for step in (1, 2, 3):
        first.log(step, _row(step))
        if step == 2:
            first.commit(2)  # step 2's checkpoint now exists
    first.close()  # the process dies in step 4: step 3 was never checkpointed

    # the resume: rows after the checkpoint go from metrics.jsonl and TensorBoard, then steps 3 and 4
    assert checkpoint.drop_metrics_after(rl_dir / "metrics.jsonl", 2) == 1
    assert rollback_tensorboard(rl_dir / "tb", 2) == 3  # step 3: its three scalars
    second = MetricsWriter.for_stage(cfg, rl_dir, "rl", defer=True)
    for step in (3, 4):
        second.log(step, _row(step))
    second.commit(4)
    second.close()

    assert [r["step"] for r in read_metrics(rl_dir / "metrics.jsonl")] == [1, 2, 3, 4]
    assert tensorboard_steps(rl_dir / "tb", "reward/total_mean") == [1, 2, 3, 4]
    assert wandb_steps(cfg.run.dir, "reward/total_mean") == [1, 2, 3, 4]
    assert mlflow_steps(cfg.run.dir, "rl", "train/kl") == [1, 2, 3, 4]
    ids = json.loads((rl_dir / "trackers.json").read_text())
    # one W&B run id, resumed: each writer's offline folder is named by its start second and the id, and a
    # resume within the same second gets W&B's numeric suffix ("-1")
    folders = sorted(f.name for f in cfg.run.dir.glob("wandb/offline-run-*"))
    pattern = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{ids['wandb']}(-\d+)?")
    assert len(folders) == 2 and all(pattern.fullmatch(name) for name in folders), folders


def test_rows_go_out_at_once_without_checkpoints_and_the_config_is_the_runs_parameters(cfg):
    from mlflow.tracking import MlflowClient

    writer = MetricsWriter.for_stage(cfg, cfg.run.dir / "sft", "sft")
    writer.log(2, {"train/loss": 3.25, "epoch": 0})
    writer.log(4, {"train/loss": 2.5, "note": "text is not a metric"})
    writer.close()
    assert mlflow_steps(cfg.run.dir, "sft", "train/loss") == [2, 4]
    assert wandb_steps(cfg.run.dir, "train/loss") == [2, 4]
    run_id = json.loads((cfg.run.dir / "sft" / "trackers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=(cfg.run.dir / "mlruns").resolve().as_uri())
    params = client.get_run(run_id).data.params
    assert params["run.name"] == '"r"' and params["tracking.backends"] == json.dumps(cfg.tracking.backends)
    assert len(params) == len(flat_params(cfg)) > 100


def test_rollback_keeps_the_earlier_steps_in_the_first_files_place(tmp_path):
    writer = MetricsWriter(tmp_path)
    for step in range(1, 6):
        writer.log(step, {"loss": float(step)})
    writer.close()
    before = sorted((tmp_path / "tb").glob("events.*"))
    assert rollback_tensorboard(tmp_path / "tb", 3) == 2
    assert sorted((tmp_path / "tb").glob("events.*")) == before[:1]
    assert tensorboard_steps(tmp_path / "tb", "loss") == [1, 2, 3]
    assert rollback_tensorboard(tmp_path / "missing", 3) == 0
