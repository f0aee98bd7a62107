"""Config sections of the training stages: run, Ray, model, data, SFT, reward model and GRPO roles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from empathy_ray.algo import AGG_MODES, ESTIMATORS, KL_KINDS
from empathy_ray.config.constraints import at_least, between, positive, probability, registered, share


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
    num_cpus: int | None = at_least(1, 8)
    temp_dir: str | None = None  # Ray's session folder (default /tmp/ray)


Backend = Literal["tensorboard", "wandb", "mlflow"]


@dataclass
class TrackingConfig:
    """Where the metrics of metrics.jsonl also go, and what the console shows."""

    # any of tensorboard, wandb (set WANDB_MODE=offline to keep runs local), mlflow
    backends: list[Backend] = field(default_factory=lambda: ["tensorboard"])
    project: str = "empathy-ray"  # the W&B project and the MLflow experiment
    # MLflow tracking server or store; empty: a file store in the run folder (<run>/mlruns)
    mlflow_uri: str = ""
    # show Ray, vLLM, DeepSpeed and Ray Train output on the console as it comes (`--verbose`), not
    # only in the run's log files
    verbose: bool = False


@dataclass
class ModelConfig:
    path: str = ""  # a local HF model directory; empty: build the tiny random model below
    tiny_preset: str = "demo"
    tokenizer_vocab_size: int = at_least(1, 6000)  # only for the tiny model's offline tokenizer
    # SFT adds the CoE tags to a foreign tokenizer as whole tokens (embedding grown if needed);
    # False: they stay plain text, as the checkpoint's tokenizer splits them
    add_coe_tokens: bool = False


@dataclass
class DataConfig:
    posts: str = ""  # Empathy-QA JSONL/Parquet; empty: the embedded samples
    pairs: str = ""  # preference pairs JSONL/Parquet; empty: the embedded samples
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / val / test, by hash of id
    split_seed: int = 0
    min_answer_chars: int = at_least(0, 0)  # the paper drops answers under 100 characters
    # demo-sized: the chat frame (system prompt + headers, ~90 tokens with the tiny tokenizer, ~150 with
    # cl100k) is never cut, the post is cut in the middle to fit (real recipes: 512+)
    max_prompt_tokens: int = at_least(1, 128)
    max_response_tokens: int = at_least(1, 512)


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = at_least(1, 8)
    alpha: int = at_least(1, 16)
    dropout: float = share(0.0)
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class TrainerConfig:
    """What SFT and reward-model training share: a Ray Train job of DeepSpeed workers."""

    # Per Ray Train worker, in the vocabulary of every role and of serve (was cpus_per_worker and use_gpu).
    num_workers: int = at_least(1, 2)
    num_cpus: float = at_least(0, 1)
    num_gpus: float = at_least(0, 0)  # > 0: NCCL and CUDA; 0: gloo on CPU
    resources: dict[str, float] = field(default_factory=dict)  # custom node resources per worker
    zero_stage: Literal[2, 3] = 2
    bf16: bool = False
    epochs: int = at_least(1, 1)
    lr: float = positive(1e-3)
    min_lr_ratio: float = between(0, 1, 0.1)  # cosine decays to lr * min_lr_ratio
    warmup_ratio: float = share(0.05)
    weight_decay: float = at_least(0, 0.0)
    micro_batch_size: int = at_least(1, 4)  # per worker
    grad_accum: int = at_least(1, 1)
    max_grad_norm: float = at_least(0, 1.0)  # 0: no clipping
    # recompute each layer's activations in backward: less memory for ~30 % more compute, same loss
    gradient_checkpointing: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)
    log_every: int = at_least(1, 5)
    # Every this many optimizer steps each worker saves its DeepSpeed state (weights, optimizer shard,
    # LR schedule, data position, RNG) through Ray Train; a resubmitted job continues from the last
    # one (train/resume.py). 0: none (the demo's minutes-long tiny runs start over instead).
    checkpoint_every: int = at_least(0, 0)
    keep_checkpoints: int = at_least(1, 2)  # Ray Train's num_to_keep; the final export is one of them


@dataclass
class SFTConfig(TrainerConfig):
    # Demo defaults: the tiny model needs several hundred optimizer steps (batch 8) before its greedy
    # replies keep the CoE format on unseen posts; 100 epochs of the samples are 600 steps.
    epochs: int = 100
    lr: float = 3e-3
    eval_prompts: int = at_least(0, 16)  # held-out prompts generated greedily for CoE validity
    eval_max_new_tokens: int = at_least(1, 384)
    eval_engine: Literal["vllm", "transformers"] = "vllm"  # transformers `generate` only when named
    input_noise: float = share(0.15)  # share of reply input tokens replaced at random (train/batches.py: why)


@dataclass
class RMConfig(TrainerConfig):
    epochs: int = 6
    lr: float = 1e-3
    margin: float = 0.0  # Bradley-Terry with a margin: -log sigmoid(r_c - r_r - margin)
    # extra InfoNCE term over the batch: chosen vs every rejected
    contrastive_weight: float = at_least(0, 0.0)
    base_model: str = ""  # LM to start from; empty: the SFT output (or the base model without SFT)


@dataclass
class ActorResources:
    """Per-actor resources of one role. `resources` are custom node resources (e.g. rollout_node: 1)
    declared on node types in cluster.yaml, so a role lands on the machines meant for it."""

    num_cpus: float = at_least(0, 1)
    num_gpus: float = at_least(0, 0)
    resources: dict[str, float] = field(default_factory=dict)
    # Ray restarts a dead actor this many times (its call in flight fails; the driver re-sends it);
    # -1: without limit
    max_restarts: int = at_least(-1, 2)


@dataclass
class RolloutConfig(ActorResources):
    # Half a logical CPU each by default so the demo's roles fit `ray start --head --num-cpus 4`
    # (2 x 0.5 rollout + 2 x 1 learner + 0.5 reward + 0.5 reference); GPU recipes set num_gpus.
    num_cpus: float = 0.5
    num_workers: int = at_least(1, 2)
    # transformers `generate`: only when named here; "simulated": no model, a fixed delay per decoding
    # step (benchmarks/bench_scaling.py measures the orchestration with it)
    engine: Literal["vllm", "transformers", "simulated"] = "vllm"
    # engine=simulated only: seconds per decoding step of a call
    simulated_step_delay_s: float = at_least(0, 0.005)
    tensor_parallel_size: int = at_least(1, 1)
    temperature: float = at_least(0, 1.0)  # 0: greedy
    top_p: float = probability(1.0)
    max_new_tokens: int = at_least(1, 384)  # the demo's CoE replies are ~270 tokens: room to finish
    # vLLM's compiled mode (torch.compile + CUDA graphs; enforce_eager=False) for the rollout engines:
    # faster decoding once compiled (CPU, batch 64: 576 vs 482 tokens/s), but start-up takes tens of
    # seconds longer (44 s vs 12 s): on for long cluster runs, off (eager) for tests and the demo
    compile: bool = False
    max_model_len: int = at_least(1, 1024)


@dataclass
class RewardConfig(ActorResources):
    num_cpus: float = 0.5
    rm_weight: float = 1.0
    format_weight: float = 1.0
    length_weight: float = 0.0  # rule term: -|answer chars - length_target| / length_target
    length_target: int = 200
    # crisis-safety term (domain/safety.py): -1 for a reply that encourages self-harm, or a risky post
    # answered with no pointer to help. On by default: without it GRPO is free to trade the safety path
    # away for RM score (a demo run once took the held-out crisis-path rate from 1.00 to 0.00).
    safety_weight: float = 2.0
    batch_size: int = at_least(1, 16)
    timeout_s: float = positive(300.0)  # a reward call slower than this is retried, then the run fails loudly
    retries: int = at_least(0, 2)
    bf16: bool = False  # load the reward model in bfloat16
    # > 0: RM batches of at most this many padded tokens (rows x longest row), batch_size rows at most
    max_tokens_per_batch: int = at_least(0, 0)


@dataclass
class ReferenceConfig(ActorResources):
    # Where reference log-probs come from. "actor": a frozen copy of the starting policy in an actor of its
    # own (this section's keys). "learner": the LoRA learner ranks with their adapter switched off, which
    # is exactly the starting policy, so no second copy of the model is loaded (a 7B reference is ~15 GB
    # and a GPU); it scores in the learner's precision and micro-batches, and in asynchronous runs its
    # forward waits for the step being trained. "auto": learner with a LoRA learner, else actor.
    source: Literal["auto", "actor", "learner"] = "auto"
    num_cpus: float = 0.5
    batch_size: int = at_least(1, 8)
    timeout_s: float = positive(300.0)  # a slower reference call is retried, then the run fails loudly
    retries: int = at_least(0, 2)
    bf16: bool = False  # load the frozen reference in bfloat16 (as the learner with rl.learner.bf16)
    # > 0: batches of at most this many padded tokens (rows x longest row), batch_size rows at most
    max_tokens_per_batch: int = at_least(0, 0)


@dataclass
class LearnerConfig(ActorResources):
    # a restarted rank cannot rejoin its torch.distributed group: Ray never restarts one; instead
    # the driver replaces the whole group and restores the last checkpoint (rl/recovery.py), at most
    # max_rebuilds times in a job (then the run stops; --resume continues from the last checkpoint)
    max_restarts: int = 0
    max_rebuilds: int = at_least(0, 2)
    num_workers: int = at_least(1, 2)
    zero_stage: Literal[2, 3] = 2
    bf16: bool = False
    lr: float = positive(1e-4)  # demo-sized (tiny model); a 7B policy wants ~1e-6
    weight_decay: float = at_least(0, 0.0)
    micro_batch_size: int = at_least(1, 4)
    # > 0: micro-batches of at most this many padded tokens (rows x longest row) instead of
    # micro_batch_size rows, so one long reply cannot exhaust memory; the loss is normalised over the
    # whole step either way (actors/learner.py)
    max_tokens_per_micro_batch: int = at_least(0, 0)
    inner_epochs: int = at_least(1, 1)
    max_grad_norm: float = at_least(0, 1.0)  # 0: no clipping
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, same loss
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class AlgoConfig:
    estimator: str = registered(ESTIMATORS, "grpo")  # empathy_ray/algo/advantages.py
    group_size: int = at_least(1, 4)  # G samples per prompt; the estimator may need more (min_group_size)
    clip_low: float = share(0.2)
    clip_high: float = at_least(0, 0.2)
    kl_coef: float = at_least(0, 0.0)
    kl_kind: str = registered(KL_KINDS, "k3")  # empathy_ray/algo/kl.py
    kl_in: Literal["loss", "reward"] = "loss"
    agg: str = registered(AGG_MODES, "token_mean")  # empathy_ray/algo/losses.py
    # Truncated importance sampling (empathy_ray/algo/importance.py): each token's policy-gradient term
    # is weighted by min(p_learner / p_rollout, tis_cap), correcting the gap between the rollout
    # engine's sampling distribution (other kernels, or older weights with rl.max_staleness > 0) and
    # the learner's. 0 switches the correction off; the gap is still measured (train/tis_*).
    tis_cap: float = at_least(0, 2.0)


VLLM_MAX_LORA_RANK = 512  # the largest max_lora_rank vLLM 0.32 accepts


@dataclass
class RLConfig:
    steps: int = at_least(1, 10)
    prompts_per_step: int = at_least(1, 4)  # B
    policy_model: str = ""  # empty: the SFT output of this run
    reward_model: str = ""  # empty: the RM output of this run; "none": rule terms only
    # weight sync: object_store (put once, every worker pulls; CPU, small models), nccl (GPU broadcast
    # from learner rank 0, bucketed), gloo (the same broadcast over CPU: CPU clusters, tests)
    sync: Literal["object_store", "nccl", "gloo"] = "object_store"
    # With a LoRA learner: "adapter" ships only the adapter (rollout vLLM engines load the base once
    # and apply it as a LoRARequest), "merged" the full weights with the adapter merged in; "auto":
    # adapter where supported (rl.rollout.engine=vllm, rl.sync=object_store, lora.r <= 512), else merged
    sync_lora: Literal["auto", "adapter", "merged"] = "auto"
    checkpoint_every: int = at_least(0, 5)  # 0: no checkpoints
    keep_checkpoints: int = at_least(1, 2)
    # A step with non-finite rewards, advantages or losses is skipped (warned, counted); this many in a
    # row stop the run (a broken reward model or diverged policy, not a one-off overflow).
    max_nonfinite_steps: int = at_least(0, 3)
    # Asynchronous GRPO: rollouts of up to this many future steps are generated while the learner trains
    # (the batch of step s on the weights of step s-k); 0 is the synchronous loop. No sample more than
    # this many versions behind the learner is trained on (README: "Asynchronous GRPO").
    max_staleness: int = at_least(0, 0)
    eval_prompts: int = at_least(0, 16)
    # Training crisis posts are repeated in the GRPO prompt pool until they make this share of it, so
    # the safety reward term applies in most steps (rl/prompt_pool.py); 0: every post once.
    crisis_share: float = share(0.25)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)

    @property
    def reference_in_learner(self) -> bool:
        """Whether the learner ranks give the reference log-probs (rl.reference.source, resolved)."""
        source = self.reference.source
        return source == "learner" or (source == "auto" and self.learner.lora.enabled)

    @property
    def adapter_sync(self) -> bool:
        """Whether each sync ships only the learner's LoRA adapter (rl.sync_lora, resolved)."""
        if not self.learner.lora.enabled or self.sync_lora == "merged":
            return False
        supported = self.rollout.engine == "vllm" and self.sync == "object_store"
        return self.sync_lora == "adapter" or (supported and self.learner.lora.r <= VLLM_MAX_LORA_RANK)
