"""Config sections of the stages after training: evaluation, serving, and the pipeline switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from empathy_ray.config.constraints import at_least, between, positive


@dataclass
class EvalConfig:
    split: Literal["train", "val", "test"] = "test"
    max_posts: int = at_least(0, 16)  # 0: every post of the split
    max_new_tokens: int = at_least(1, 384)
    temperature: float = at_least(0, 0.0)  # 0: greedy, the same answer for the same model on every run
    seed: int = 0
    engine: Literal["vllm", "transformers"] = "vllm"  # transformers `generate` only when named
    judge: Literal["rm", "endpoint", "none"] = "rm"  # who ranks the K answers of a post (Win@K)
    judge_url: str = ""  # judge=endpoint: an OpenAI-compatible base URL, e.g. http://host:8000/v1
    judge_model: str = ""  # the model name sent to that endpoint
    judge_api_key_env: str = "EMPATHY_RAY_JUDGE_KEY"  # environment variable holding its key, if any
    judge_timeout_s: float = positive(60.0)
    # then the post is counted as a judge failure, never as a win or a zero
    judge_retries: int = at_least(0, 2)
    bootstrap: int = at_least(1, 1000)  # resamples for the confidence intervals
    baseline: bool = True  # also evaluate the untrained base model as a floor


@dataclass
class ServeConfig:
    model: str = ""  # HF directory to serve; empty: the run's GRPO output, else its SFT output
    model_name: str = "empathy-ray"  # the id in /v1/models and the `model` field clients send
    host: str = "127.0.0.1"  # loopback by default: opening it up is a deliberate choice
    port: int = between(1, 65535, 8000)
    route_prefix: str = "/"
    num_replicas: int = at_least(1, 1)
    autoscaling: bool = False  # True: between min_replicas and max_replicas by queued requests
    min_replicas: int = at_least(1, 1)
    max_replicas: int = at_least(1, 2)
    target_ongoing_requests: int = at_least(1, 16)
    max_ongoing_requests: int = at_least(1, 64)  # per replica; more wait in Serve's queue
    num_cpus: float = at_least(0, 1)
    num_gpus: float = at_least(0, 0)
    resources: dict[str, float] = field(default_factory=dict)  # custom node resources per replica
    tensor_parallel_size: int = at_least(1, 1)
    max_model_len: int = at_least(1, 1024)
    max_num_seqs: int = at_least(1, 64)  # the engine batches up to this many sequences at once
    default_max_tokens: int = at_least(1, 384)
    max_tokens_limit: int = at_least(1, 1024)
    max_n: int = at_least(1, 4)
    max_messages: int = at_least(1, 32)
    max_content_chars: int = at_least(1, 4000)  # per message; longer is a 400, not a silent cut
    api_key: str = ""  # empty: no auth unless the environment variable below is set
    api_key_env: str = "EMPATHY_RAY_API_KEY"
    crisis_resources: list[str] = field(default_factory=list)  # empty: the built-in list (domain/safety.py)
    crisis_message: str = ""  # empty: the built-in supportive message
    keep_running: bool = True  # after `jobs/rl.py` / `empathy-ray serve` returns; False: shut down
    smoke_test: bool = False  # send one normal and one crisis message and print the replies


@dataclass
class PipelineConfig:
    """Which stages `jobs/rl.py` runs. A stage whose output exists and matches its config is skipped."""

    sft: bool = True  # False, or rl.policy_model given: no SFT training
    reward_model: bool = True  # False, or rl.reward_model given: no RM training
    rl: bool = True
    eval: bool = False
    serve: bool = False
