"""The whole configuration tree and its cross-field checks (each key's own rule is declared on its field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from empathy_ray.algo import ESTIMATORS
from empathy_ray.config.sections import (
    VLLM_MAX_LORA_RANK,
    ConfigError,
    DataConfig,
    ModelConfig,
    RayConfig,
    RLConfig,
    RMConfig,
    RunConfig,
    SFTConfig,
    TrackingConfig,
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
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def validate(self) -> None:
        """Checks that relate keys, or a key to the file system; the loader has already checked each
        key's type and declared rule (config/constraints.py), so these can rely on them."""
        fr = self.data.split_fractions
        if abs(sum(fr) - 1.0) > 1e-6 or min(fr) < 0:
            raise ConfigError(f"data.split_fractions={list(fr)}: three non-negative numbers summing to 1")
        self._validate_rl()
        self._validate_learner()
        self._validate_serve()
        if self.model.path and not Path(self.model.path).is_dir():
            raise ConfigError(f"model.path={self.model.path!r}: no such directory (a local HF model folder)")

    def _validate_rl(self) -> None:
        rl = self.rl
        need = ESTIMATORS[rl.algo.estimator].min_group_size
        if rl.algo.group_size < need:
            raise ConfigError(
                f"rl.algo.group_size={rl.algo.group_size}: the {rl.algo.estimator} estimator compares answers "
                f"within a group; use {need} or more"
            )
        rw = rl.reward
        if rw.length_weight != 0 and rw.length_target <= 0:
            raise ConfigError(
                f"rl.reward.length_target={rw.length_target}: must be a positive number of characters "
                f"when rl.reward.length_weight={rw.length_weight} is set"
            )
        for key in ("policy_model", "reward_model"):
            value = getattr(rl, key)
            if value and value != "none" and not Path(value).is_dir():
                raise ConfigError(f"rl.{key}={value!r}: no such directory (a local HF model folder)")
        if rl.sync == "nccl" and rl.learner.num_gpus == 0:
            raise ConfigError(
                "rl.sync=nccl needs GPU learners (rl.learner.num_gpus > 0); use rl.sync=gloo or object_store on CPU"
            )
        if rl.sync_lora == "adapter":
            _check_adapter_sync(rl)
        if rl.reference.source == "learner" and not rl.learner.lora.enabled:
            raise ConfigError(
                "rl.reference.source=learner needs a LoRA learner (rl.learner.lora.enabled=true): a fully "
                "fine-tuned learner no longer holds the starting policy; use rl.reference.source=actor"
            )

    def _validate_learner(self) -> None:
        rl, lc = self.rl, self.rl.learner
        n = rl.prompts_per_step * rl.algo.group_size
        if n % (lc.num_workers * lc.micro_batch_size):
            raise ConfigError(
                f"the learner splits rl.prompts_per_step * rl.algo.group_size = {rl.prompts_per_step} * "
                f"{rl.algo.group_size} = {n} samples per step over rl.learner.num_workers={lc.num_workers} ranks "
                f"in micro-batches of rl.learner.micro_batch_size={lc.micro_batch_size}; {n} must be a multiple "
                f"of {lc.num_workers} * {lc.micro_batch_size}: change one of these four settings"
            )

    def _validate_serve(self) -> None:
        sv = self.serve
        if sv.autoscaling and sv.min_replicas > sv.max_replicas:
            raise ConfigError(f"serve.min_replicas={sv.min_replicas} > serve.max_replicas={sv.max_replicas}")
        if sv.default_max_tokens > sv.max_tokens_limit:
            raise ConfigError(
                f"serve.default_max_tokens={sv.default_max_tokens}: at most "
                f"serve.max_tokens_limit={sv.max_tokens_limit}"
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


def _check_adapter_sync(rl: RLConfig) -> None:
    """rl.sync_lora=adapter: what the adapter-only sync needs (README: weight sync)."""
    need = []
    if not rl.learner.lora.enabled:
        need.append("a LoRA learner (rl.learner.lora.enabled=true)")
    if rl.rollout.engine != "vllm":
        need.append(f"rl.rollout.engine=vllm (not {rl.rollout.engine})")
    if rl.sync != "object_store":
        need.append(f"rl.sync=object_store (not {rl.sync}: the broadcast ships merged weights)")
    if rl.learner.lora.r > VLLM_MAX_LORA_RANK:
        need.append(f"rl.learner.lora.r <= {VLLM_MAX_LORA_RANK} (vLLM's largest max_lora_rank)")
    if need:
        raise ConfigError(f"rl.sync_lora=adapter needs {'; '.join(need)}; or set rl.sync_lora=merged")
