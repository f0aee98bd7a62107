"""Where everything of one run lives. Every module that reads or writes the run folder asks here.

runs/<name>/
  base_model/        the tiny random model (only when model.path is empty)
  sft/model/         SFT export (HF directory) + sft/metrics.jsonl, sft/tb/, sft/eval_samples.json
  rm/model/          reward model export + rm/metrics.jsonl, rm/tb/
  rl/model/          GRPO policy export + rl/metrics.jsonl, rl/tb/, rl/checkpoints/
  eval/              eval.json, eval.md, answers.jsonl, judgements.jsonl, clinicians' rankings
  ray_train/         Ray Train's own storage for the SFT and RM jobs
  logs/              driver.log and one log file per role or process kind (runtime/logs.py)
  wandb/, mlruns/    W&B offline runs and the MLflow file store, when tracking.backends names them
  report.html        one page about the run (empathy_ray/eval/report.py)
  summary.json       one key per stage: its status, fingerprint, headline numbers and paths

Pure paths: nothing here touches the disk, so the layers above (train, rl, eval, serve, pipeline)
can all share it. The pipeline's `Run` adds summary.json's contents and each stage's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from empathy_ray.config import Config


@dataclass(frozen=True)
class RunLayout:
    dir: Path  # runs/<name>
    model_path: str = ""  # model.path: the base model when given, else the tiny one built in base_model/

    @classmethod
    def of(cls, cfg: Config) -> RunLayout:
        return cls(cfg.run.dir.resolve(), cfg.model.path)

    @property
    def base_model(self) -> Path:
        return Path(self.model_path).resolve() if self.model_path else self.dir / "base_model"

    def stage_dir(self, stage: str) -> Path:
        """A stage's own folder: its metrics.jsonl, tb/ and whatever else it keeps."""
        return self.dir / stage

    def model(self, stage: str) -> Path:
        """The HF directory a training stage (sft, rm, rl) exports."""
        return self.stage_dir(stage) / "model"

    def metrics(self, stage: str) -> Path:
        return self.stage_dir(stage) / "metrics.jsonl"

    def tensorboard(self, stage: str) -> Path:
        return self.stage_dir(stage) / "tb"

    @property
    def sft_model(self) -> Path:
        return self.model("sft")

    @property
    def rm_model(self) -> Path:
        return self.model("rm")

    @property
    def rl_model(self) -> Path:
        return self.model("rl")

    @property
    def rl_checkpoints(self) -> Path:
        return self.stage_dir("rl") / "checkpoints"

    @property
    def sft_samples(self) -> Path:
        """The SFT model's greedy answers to held-out prompts (its CoE validity check)."""
        return self.stage_dir("sft") / "eval_samples.json"

    @property
    def eval_dir(self) -> Path:
        return self.dir / "eval"

    @property
    def eval_json(self) -> Path:
        return self.eval_dir / "eval.json"

    @property
    def ray_train(self) -> Path:
        return self.dir / "ray_train"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def log(self, role: str) -> Path:
        """The log file of the processes of one role (or driver.log for this process)."""
        return self.logs / f"{role}.log"

    @property
    def report(self) -> Path:
        return self.dir / "report.html"

    @property
    def summary(self) -> Path:
        return self.dir / "summary.json"
