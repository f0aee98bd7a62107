"""The whole configuration tree and its cross-field checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from empathy_ray.config.sections import (
    ConfigError,
    DataConfig,
    ModelConfig,
    RayConfig,
    RLConfig,
    RMConfig,
    RunConfig,
    SFTConfig,
    TrainerConfig,
)
from empathy_ray.config.stages import EvalConfig, PipelineConfig, ServeConfig


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rm: RMConfig = field(default_factory=RMConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def validate(self) -> None:
        """Cross-field checks that types alone cannot express."""
        fr = self.data.split_fractions
        if abs(sum(fr) - 1.0) > 1e-6 or min(fr) < 0:
            raise ConfigError(f"data.split_fractions={list(fr)}: three non-negative numbers summing to 1")
        for name in ("sft", "rm"):
            t: TrainerConfig = getattr(self, name)
            for key in ("num_workers", "cpus_per_worker", "micro_batch_size", "grad_accum", "epochs"):
                if getattr(t, key) < 1:
                    raise ConfigError(f"{name}.{key}={getattr(t, key)}: must be at least 1")
            if t.lr <= 0:
                raise ConfigError(f"{name}.lr={t.lr}: must be positive")
        if not 0.0 <= self.sft.input_noise < 1.0:
            raise ConfigError(f"sft.input_noise={self.sft.input_noise}: a share in [0, 1)")
        self._validate_rl()
        self._validate_serve()
        if self.model.path and not Path(self.model.path).is_dir():
            raise ConfigError(f"model.path={self.model.path!r}: no such directory (a local HF model folder)")

    def _validate_rl(self) -> None:
        rl = self.rl
        if rl.algo.estimator in ("grpo", "dr_grpo", "rloo") and rl.algo.group_size < 2:
            raise ConfigError(
                f"rl.algo.group_size={rl.algo.group_size}: {rl.algo.estimator} compares answers within a group; use 2 or more"
            )
        for key in ("steps", "prompts_per_step"):
            if getattr(rl, key) < 1:
                raise ConfigError(f"rl.{key}={getattr(rl, key)}: must be at least 1")
        for key in (
            "rollout.num_workers",
            "learner.num_workers",
            "learner.micro_batch_size",
            "learner.inner_epochs",
        ):
            section, name = key.split(".")
            if getattr(getattr(rl, section), name) < 1:
                raise ConfigError(f"rl.{key}={getattr(getattr(rl, section), name)}: must be at least 1")
        per_step = rl.prompts_per_step * rl.algo.group_size
        share = rl.learner.num_workers * rl.learner.micro_batch_size
        if per_step % share:
            raise ConfigError(
                f"rl.prompts_per_step * rl.algo.group_size = {per_step} samples per step must split evenly into "
                f"rl.learner.num_workers * rl.learner.micro_batch_size = {share}; change one of those keys"
            )
        for key in ("policy_model", "reward_model"):
            value = getattr(rl, key)
            if value and value != "none" and not Path(value).is_dir():
                raise ConfigError(f"rl.{key}={value!r}: no such directory (a local HF model folder)")
        if rl.sync == "nccl" and rl.learner.num_gpus == 0:
            raise ConfigError(
                "rl.sync=nccl needs GPU learners (rl.learner.num_gpus > 0); use rl.sync=gloo or object_store on CPU"
            )
        if rl.learner.lora.enabled and rl.learner.zero_stage == 3:
            raise ConfigError(
                "rl.learner.lora.enabled with rl.learner.zero_stage=3 is not supported; use zero_stage=2"
            )

    def _validate_serve(self) -> None:
        sv = self.serve
        for key in ("port", "num_replicas", "min_replicas", "max_replicas", "max_num_seqs", "max_n"):
            if getattr(sv, key) < 1:
                raise ConfigError(f"serve.{key}={getattr(sv, key)}: must be at least 1")
        if sv.autoscaling and sv.min_replicas > sv.max_replicas:
            raise ConfigError(f"serve.min_replicas={sv.min_replicas} > serve.max_replicas={sv.max_replicas}")
        if not 1 <= sv.default_max_tokens <= sv.max_tokens_limit:
            raise ConfigError(
                f"serve.default_max_tokens={sv.default_max_tokens}: between 1 and serve.max_tokens_limit"
            )
        if sv.model and not Path(sv.model).is_dir():
            raise ConfigError(f"serve.model={sv.model!r}: no such directory (a local HF model folder)")
        for key, sec in (("rl.rollout", self.rl.rollout), ("serve", sv)):
            if sec.num_gpus and sec.num_gpus != sec.tensor_parallel_size:
                raise ConfigError(
                    f"{key}.num_gpus={sec.num_gpus:g} but {key}.tensor_parallel_size={sec.tensor_parallel_size}: "
                    "one engine spans its GPUs with tensor parallelism, so make them equal"
                )
        if self.eval.judge == "endpoint" and not self.eval.judge_url:
            raise ConfigError("eval.judge=endpoint needs eval.judge_url (an OpenAI-compatible base URL)")
