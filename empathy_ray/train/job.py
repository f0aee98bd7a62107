"""Running a training loop as a Ray Train job, and what a loop needs inside a worker.

Both trainers (SFT, reward model) are a `TorchTrainer` with N workers; rank 0 exports the trained
weights as an HF directory and reports it as the Ray Train checkpoint, which the driver copies into
the run folder. Per-step history travels back in the final report, so the driver writes the
metrics files even when rank 0 ran on another node. With `checkpoint_every` the workers also report
training-state checkpoints into the job's storage (`train_storage`), which a resubmitted job
continues from (train/resume.py).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empathy_ray.config import Config, TrainerConfig
from empathy_ray.domain.files import atomic_dir
from empathy_ray.runtime.logs import role_log, tag_role
from empathy_ray.runtime.progress import ProgressFeed
from empathy_ray.runtime.resources import Demand
from empathy_ray.runtime.run_dir import RunLayout
from empathy_ray.runtime.tracking import MetricsWriter

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    name: str  # "sft" or "rm": the run sub-folder and the Ray Train run name
    loop: Callable[[dict[str, Any]], None]
    trainer: TrainerConfig
    base_model: str


def _worker_main(config: dict[str, Any]) -> None:
    """Every Ray Train worker: its output into the stage's log file, progress to the driver's console
    (rank 0, through `WorkerContext.progress`), then the job's loop."""
    from empathy_ray.runtime.process import setup_process

    setup_process(log_file=config["log_file"])
    WorkerContext.feed = config["progress"]
    try:
        config["loop"](config)
    except BaseException:
        traceback.print_exc()  # into the stage's log: the tail the console shows when the stage fails
        raise


class WorkerContext:
    """Rank, world size and the collectives a training loop uses, inside a Ray Train worker."""

    feed: Any = None  # the driver's progress queue (runtime/progress.py), set by _worker_main
    resumed_from = 0  # the optimizer step of the checkpoint this job continued from (0: none)

    def __init__(self) -> None:
        import ray.train

        from empathy_ray.runtime.process import setup_process

        setup_process()
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()

    def mean(self, values: list[float]) -> list[float]:
        from empathy_ray.train.engine import all_reduce_mean

        return all_reduce_mean(values)

    def sum(self, values: list[float]) -> list[float]:
        from empathy_ray.train.engine import all_reduce_sum

        return all_reduce_sum(values)

    def progress(self, total: int, desc: str):
        """Rank 0's bar, drawn on the driver's console; the other ranks' bars are silent."""
        from tqdm import tqdm

        if self.rank == 0 and self.feed is not None:
            from empathy_ray.runtime.progress import QueueBar

            return QueueBar(self.feed, total)
        return tqdm(total=total, desc=desc, disable=self.rank != 0, mininterval=2.0)

    def finish(self, engine, make_skeleton: Callable[[], Any], tokenizer, history: list[dict]) -> None:
        """Gather the weights, export them on rank 0, report history + checkpoint to the driver."""
        import ray.train

        from empathy_ray.train.engine import export_hf, full_state_dict

        state = full_state_dict(engine)  # collective under ZeRO-3
        metrics = {"history": history, "resumed_from_step": self.resumed_from}
        if self.rank != 0:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="empathy-export-") as tmp:
            export_hf(state, make_skeleton(), tokenizer, Path(tmp))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def train_storage(layout: RunLayout, job_name: str) -> Path:
    """Ray Train's storage of one job (`ray_train/<run>-<job>/`): its checkpoints, the final export's
    among them. A pipeline stage that runs from scratch deletes it; one that resumes keeps it."""
    return layout.ray_train / f"{layout.dir.name}-{job_name}"


def run_train_job(cfg: Config, job: TrainJob, out_dir: Path) -> dict[str, Any]:
    """Fit the job on Ray Train; copy the exported model to `out_dir`; write metrics; return history."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    tc = job.trainer
    layout = RunLayout.of(cfg)
    storage = train_storage(layout, job.name)
    gpu = tc.num_gpus > 0
    feed = ProgressFeed(f"[{job.name}]")
    loop_config = {
        "cfg": cfg,
        "base_model": str(Path(job.base_model).resolve()),
        "loop": job.loop,
        "log_file": role_log(job.name),
        "progress": feed.queue,
    }
    trainer = TorchTrainer(
        _worker_main,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=tc.num_workers,
            use_gpu=gpu,
            resources_per_worker=Demand.of_trainer(tc).bundle(),
        ),
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        run_config=RunConfig(
            name=storage.name,
            storage_path=str(storage.parent),
            checkpoint_config=CheckpointConfig(num_to_keep=tc.keep_checkpoints),  # the export counts
        ),
    )
    log.info(
        "%s: Ray Train TorchTrainer, %d workers (%s), DeepSpeed ZeRO-%d%s",
        job.name,
        tc.num_workers,
        "GPU/nccl" if gpu else "CPU/gloo",
        tc.zero_stage,
        ", LoRA" if tc.lora.enabled else "",
    )
    t0 = time.perf_counter()
    try:
        result = trainer.fit()
    except Exception as e:
        tag_role(e, job.name)  # its workers' log is logs/<job>.log
        raise
    finally:
        feed.close()
    wall = time.perf_counter() - t0
    if result.checkpoint is None:
        raise RuntimeError(f"{job.name}: the Ray Train job finished without a checkpoint ({result.error})")
    out_dir = Path(out_dir)
    with result.checkpoint.as_directory() as ckpt, atomic_dir(out_dir) as tmp:
        shutil.copytree(ckpt, tmp, dirs_exist_ok=True)
    history = result.metrics.get("history", [])
    # the whole job's rows (a resumed job's include those its checkpoint carried): written afresh
    layout.metrics(job.name).unlink(missing_ok=True)
    shutil.rmtree(layout.tensorboard(job.name), ignore_errors=True)
    writer = MetricsWriter.for_stage(cfg, layout.stage_dir(job.name), job.name)
    for row in history:
        writer.log(row["step"], {k: v for k, v in row.items() if k != "step"})
    writer.close()
    resumed = result.metrics.get("resumed_from_step", 0)
    return {"history": history, "wall_s": wall, "resumed_from_step": resumed}
