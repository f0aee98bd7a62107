"""Config sections of the training stages: run, Ray, model, data, SFT, reward model and GRPO roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


class ConfigError(ValueError):
    """A recipe or override is wrong; the message names the dotted key and the fix."""


@dataclass
class RunConfig:
    name: str = "demo"
    output_root: str = "runs"  # the run folder is <output_root>/<name>
    seed: int = 0

    @property
    def dir(self) -> Path:
        return Path(self.output_root) / self.name


@dataclass
class RayConfig:
    address: str | None = None  # None: join a running cluster if there is one, else start a local Ray
    # Logical CPUs of a local Ray started by us. 8 lets every RL role (2 rollout workers, 2 learner
    # ranks, reward, reference) have its own actor even on a 2-core laptop; None: the machine's count.
    num_cpus: int | None = 8
    temp_dir: str | None = None  # Ray's session folder (default /tmp/ray)


@dataclass
class ModelConfig:
    path: str = ""  # a local HF model directory; empty: build the tiny random model below
    tiny_preset: str = "demo"
    tokenizer_vocab_size: int = 6000  # only for the tiny model's offline tokenizer


@dataclass
class DataConfig:
    posts: str = ""  # Empathy-QA JSONL/Parquet; empty: the embedded samples
    pairs: str = ""  # preference pairs JSONL/Parquet; empty: the embedded samples
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / val / test, by hash of id
    split_seed: int = 0
    min_answer_chars: int = 0  # the paper drops answers under 100 characters
    max_prompt_tokens: int = 96  # demo-sized; longer posts are cut in the middle (real recipes: 512+)
    max_response_tokens: int = 512


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class TrainerConfig:
    """What SFT and reward-model training share: a Ray Train job of DeepSpeed workers."""

    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: int = 1
    zero_stage: Literal[2, 3] = 2
    bf16: bool = False
    epochs: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    micro_batch_size: int = 4  # per worker
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    lora: LoraConfig = field(default_factory=LoraConfig)
    log_every: int = 5


@dataclass
class SFTConfig(TrainerConfig):
    # Demo defaults: the tiny model needs several hundred optimizer steps (batch 8) before its greedy
    # replies keep the CoE format on unseen posts; 100 epochs of the samples are 600 steps.
    epochs: int = 100
    lr: float = 3e-3
    eval_prompts: int = 16  # held-out prompts generated greedily for CoE validity
    eval_max_new_tokens: int = 384
    eval_engine: Literal["vllm", "transformers"] = "vllm"  # transformers `generate` only when named
    input_noise: float = 0.15  # share of reply input tokens replaced at random (train/data.py: why)


@dataclass
class RMConfig(TrainerConfig):
    epochs: int = 6
    lr: float = 1e-3
    margin: float = 0.0  # Bradley-Terry with a margin: -log sigmoid(r_c - r_r - margin)
    contrastive_weight: float = 0.0  # extra InfoNCE term over the batch: chosen vs every rejected
    base_model: str = ""  # LM to start from; empty: the SFT output (or the base model without SFT)


@dataclass
class ActorResources:
    """Per-actor resources of one role. `resources` are custom node resources (e.g. rollout_node: 1)
    declared on node types in cluster.yaml, so a role lands on the machines meant for it."""

    num_cpus: float = 1
    num_gpus: float = 0
    resources: dict[str, float] = field(default_factory=dict)


@dataclass
class RolloutConfig(ActorResources):
    # Half a logical CPU each by default so the demo's roles fit `ray start --head --num-cpus 4`
    # (2 x 0.5 rollout + 2 x 1 learner + 0.5 reward + 0.5 reference); GPU recipes set num_gpus.
    num_cpus: float = 0.5
    num_workers: int = 2
    # transformers `generate`: only when named here; "simulated": no model, a fixed delay per decoding
    # step (benchmarks/scaling.py measures the orchestration with it)
    engine: Literal["vllm", "transformers", "simulated"] = "vllm"
    simulated_step_delay_s: float = 0.005  # engine=simulated only: seconds per decoding step of a call
    tensor_parallel_size: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 384  # the demo's CoE replies are ~270 tokens: room to finish
    max_model_len: int = 1024


@dataclass
class RewardConfig(ActorResources):
    num_cpus: float = 0.5
    rm_weight: float = 1.0
    format_weight: float = 1.0
    length_weight: float = 0.0  # rule term: -|answer chars - length_target| / length_target
    length_target: int = 200
    safety_weight: float = (
        0.0  # crisis-safety term (serve/safety.py): -1 when a risky post gets no safety path
    )
    batch_size: int = 16
    timeout_s: float = 300.0  # a reward call slower than this is retried, then the run fails loudly
    retries: int = 2


@dataclass
class ReferenceConfig(ActorResources):
    num_cpus: float = 0.5
    batch_size: int = 8


@dataclass
class LearnerConfig(ActorResources):
    num_workers: int = 2
    zero_stage: Literal[2, 3] = 2
    bf16: bool = False
    lr: float = 1e-4  # demo-sized (tiny model); a 7B policy wants ~1e-6
    weight_decay: float = 0.0
    micro_batch_size: int = 4
    inner_epochs: int = 1
    max_grad_norm: float = 1.0
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class AlgoConfig:
    estimator: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp"] = "grpo"
    group_size: int = 4  # G samples per prompt
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.0
    kl_kind: Literal["k1", "k2", "k3"] = "k3"
    kl_in: Literal["loss", "reward"] = "loss"
    agg: Literal["token_mean", "seq_mean", "seq_sum_norm"] = "token_mean"


@dataclass
class RLConfig:
    steps: int = 10
    prompts_per_step: int = 4  # B
    policy_model: str = ""  # empty: the SFT output of this run
    reward_model: str = ""  # empty: the RM output of this run; "none": rule terms only
    # weight sync: object_store (put once, every worker pulls; CPU, small models), nccl (GPU broadcast
    # from learner rank 0, bucketed), gloo (the same broadcast over CPU: CPU clusters, tests)
    sync: Literal["object_store", "nccl", "gloo"] = "object_store"
    checkpoint_every: int = 5
    keep_checkpoints: int = 2
    # A step with non-finite rewards, advantages or losses is skipped (warned, counted); this many in a
    # row stop the run (a broken reward model or diverged policy, not a one-off overflow).
    max_nonfinite_steps: int = 3
    eval_prompts: int = 16
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
