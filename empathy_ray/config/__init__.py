"""One typed configuration tree for every stage.

Recipes are YAML files in `configs/`; any key can be overridden on the command line with a dotted
path (`sft.lr=2e-4`). Unknown keys, wrongly typed values and values outside the rule a key declares
(`constraints.py`: `at_least(1, 16)`, a name registered in `empathy_ray.algo`, ...) are rejected with
the dotted key named when the config loads, before any Ray actor starts, so a typo never silently
falls back to a default and a bad value never reaches an actor.
"""

from empathy_ray.config.loader import load_config, parse_override, to_dict
from empathy_ray.config.sections import (
    ActorResources,
    AlgoConfig,
    ConfigError,
    DataConfig,
    LearnerConfig,
    LoraConfig,
    ModelConfig,
    RayConfig,
    ReferenceConfig,
    RewardConfig,
    RLConfig,
    RMConfig,
    RolloutConfig,
    RunConfig,
    SFTConfig,
    TrackingConfig,
    TrainerConfig,
)
from empathy_ray.config.stages import EvalConfig, PipelineConfig, ServeConfig
from empathy_ray.config.tree import Config

__all__ = [
    "ActorResources",
    "AlgoConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "LearnerConfig",
    "LoraConfig",
    "ModelConfig",
    "PipelineConfig",
    "RLConfig",
    "RMConfig",
    "RayConfig",
    "ReferenceConfig",
    "RewardConfig",
    "RolloutConfig",
    "RunConfig",
    "SFTConfig",
    "ServeConfig",
    "TrackingConfig",
    "TrainerConfig",
    "load_config",
    "parse_override",
    "to_dict",
]
