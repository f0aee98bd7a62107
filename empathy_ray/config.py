"""One typed configuration tree for every stage.

Recipes are YAML files in `configs/`; any key can be overridden on the command line with a dotted
path (`sft.lr=2e-4`). Unknown keys and wrongly typed values are rejected with the dotted key named,
before any Ray actor starts, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


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
    engine: Literal["vllm", "transformers"] = "vllm"  # transformers `generate`: only when named here
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
    sync: Literal["object_store", "nccl"] = "object_store"
    checkpoint_every: int = 5
    keep_checkpoints: int = 2
    eval_prompts: int = 16
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rm: RMConfig = field(default_factory=RMConfig)
    rl: RLConfig = field(default_factory=RLConfig)

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
                "rl.sync=nccl needs GPU learners (rl.learner.num_gpus > 0); use rl.sync=object_store on CPU"
            )
        if rl.learner.lora.enabled and rl.learner.zero_stage == 3:
            raise ConfigError(
                "rl.learner.lora.enabled with rl.learner.zero_stage=3 is not supported; use zero_stage=2"
            )


# ---------------------------------------------------------------------------------------------
# Building a typed tree from plain dicts


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting where it is lossless (int -> float)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}={value!r}: expected {' or '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}={value!r}: must be one of {list(typing.get_args(tp))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}={value!r}: expected a list")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}={value!r}: expected {len(args)} items")
            return tuple(
                _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r}: expected a mapping")
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r}: expected a number") from None
    if tp is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key}={value!r}: expected {_type_name(tp)}, got {type(value).__name__}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}; known keys here: {', '.join(names)}")
        kwargs[k] = _coerce(v, hints[k], key)
    return cls(**kwargs)


def _merge(base: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = base
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {p!r} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`sft.lr=2e-4` -> ("sft.lr", 0.0002). Values are read as YAML scalars or lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. sft.lr=2e-4")
    key, raw = text.split("=", 1)
    return key.strip(), (yaml.safe_load(raw) if raw.strip() else "")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe, apply dotted overrides, check everything.

    Without a recipe the dataclass defaults apply: they are the embedded demo recipe.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for ov in overrides:
        _merge(data, *parse_override(ov))
    cfg = _build(Config, data)
    cfg.validate()
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (for summary.json and logging)."""
    return dataclasses.asdict(cfg)
