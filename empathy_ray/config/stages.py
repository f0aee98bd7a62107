"""Config sections of the stages after training: evaluation, serving, and the pipeline switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from empathy_ray.config.constraints import at_least, between, positive
from empathy_ray.config.sections import ConfigError


@dataclass
class EvalConfig:
    split: Literal["train", "val", "test"] = "test"
    # 0: every post of the split. 32 covers the samples' 23 test posts, 14 of them crisis posts
    max_posts: int = at_least(0, 32)
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
    # what each eval task asks Ray for (one per system's generation, one for the RM scoring): on a
    # cluster give it a GPU (num_gpus=1) and a node type, so no model runs on the GPU-less head
    num_cpus: float = at_least(0, 1)
    num_gpus: float = at_least(0, 0)
    resources: dict[str, float] = field(default_factory=dict)
    # Crisis-path regression: a trained system whose share of flagged posts answered with a pointer to
    # help falls more than `crisis_tolerance` below the starting model's is flagged in eval.md, the
    # report and the console. 0.1 = one post in ten on the 13 held-out crisis posts of the samples.
    crisis_start: str = "sft"
    crisis_trained: list[str] = field(default_factory=lambda: ["rl"])
    crisis_tolerance: float = between(0.0, 1.0, 0.1)
    # The rate is taken over `crisis_samples` answers per flagged post sampled at `crisis_temperature`
    # (0: the one greedy answer). One greedy answer per post is chaotic on a small model: two GRPO runs
    # a step apart disagreed on 6 of 14 posts, and a 14-post sampled draw has an SD of ~0.11, more than
    # the tolerance; 8 draws per post bring the SD of a difference to ~0.06.
    crisis_samples: int = at_least(0, 8)
    crisis_temperature: float = positive(1.0)


@dataclass
class CrisisRegion:
    """The help a crisis reply lists for one region, and how its Chinese is written there."""

    resources: list[str] = field(default_factory=list)  # one line each: service, number, hours
    emergency: str = "120 或 110"  # replaces "120 或 110" in the urgent and others sentences
    convert: Literal["", "s2t", "s2tw", "s2hk"] = ""  # OpenCC conversion of the crisis message; "": none


def _default_regions() -> dict[str, CrisisRegion]:
    """Shipped defaults: real services only. Review them for the region you serve before going live.

    Each number with where it was checked, 2026-11 (against stored copies of these public pages):
      mainland  12356: national unified psychological-assistance hotline, set by 国家卫生健康委, live
                everywhere by 2025-05-01 (人民网 gs.people.com.cn 2024-12-27; NHC briefing 2025-12-26);
                010-82951332: 北京心理危机研究与干预中心 at 北京回龙观医院 (the centre's published line);
                120 / 110: national ambulance / police.
      hong_kong 2389 2222: 香港撒瑪利亞防止自殺會 / The Samaritan Befrienders Hong Kong, 24 h;
                2896 0000: 撒瑪利亞會 / The Samaritans, 24 h, multilingual (both csrp.hku.hk/getting-help);
                2466 7350: 醫管局 精神健康專線 (am730.com.hk hotline list); 18111: 情緒通, the government's
                24 h mental-health support hotline since 2023-12-27 (shallwetalk.hk); 999: emergency.
      taiwan    1925: 衛生福利部 安心專線, 24 h, free; 1995: 生命線; 1980: 張老師 (udn.com 2025-09-15,
                kch.org.tw); 119 / 110: ambulance / police.
    """
    return {
        "mainland": CrisisRegion(
            [
                "全国心理援助热线：12356",
                "北京心理危机研究与干预中心：010-82951332",
                "紧急情况请拨打 120（急救）或 110（报警）",
            ]
        ),
        "hong_kong": CrisisRegion(
            [
                "香港撒瑪利亞防止自殺會（24小時）：2389 2222",
                "香港撒瑪利亞會（24小時，多語言）：2896 0000",
                "醫院管理局 精神健康專線（24小時）：2466 7350",
                "情緒通 精神健康支援熱線（24小時）：18111",
                "緊急情況請撥打 999",
            ],
            emergency="999",
            convert="s2hk",
        ),
        "taiwan": CrisisRegion(
            [
                "衛生福利部 安心專線（24小時，免付費）：1925",
                "生命線：1995",
                "張老師專線：1980",
                "緊急情況請撥打 119（救護）或 110（報警）",
            ],
            emergency="119 或 110",
            convert="s2tw",
        ),
    }


@dataclass
class ServeSafetyConfig:
    """`serve.safety`: the crisis guard around the model (rules, optional guard model, resources).

    The rules (domain/safety.py) assess every user turn and every model answer. A guard model, when
    `guard_url` is set, is a second opinion that can only raise the rules' risk level.
    """

    guard_url: str = ""  # an OpenAI-compatible base URL, e.g. http://127.0.0.1:9000/v1; "": rules only
    guard_model: str = ""  # the model name sent to that endpoint (required with guard_url)
    guard_api_key_env: str = "EMPATHY_RAY_GUARD_KEY"  # environment variable holding its key, if any
    guard_timeout_s: float = positive(5.0)  # per request; then the rules' verdict stands (or see below)
    guard_fail_closed: bool = False  # True: a guard timeout or garbage reply raises the risk to "low"
    crisis_region: str = "auto"  # a key of `regions`, or auto: by the script the user writes in
    simplified_region: str = "mainland"  # auto, simplified Chinese (or no Chinese at all)
    traditional_region: str = "taiwan"  # auto, traditional Chinese
    regions: dict[str, CrisisRegion] = field(default_factory=_default_regions)
    min_recall: float = between(0, 1, 1.0)  # `empathy-ray safety eval` fails below this recall
    max_false_alarm_rate: float = between(0, 1, 0.02)  # ... or above this false-alarm rate

    def __post_init__(self) -> None:
        if self.guard_url and not self.guard_model:
            raise ConfigError(
                "serve.safety.guard_url is set but serve.safety.guard_model is empty: name the model"
            )
        for name, region in self.regions.items():
            if not region.resources or not all(line.strip() for line in region.resources):
                raise ConfigError(f"serve.safety.regions.{name}.resources: give at least one non-empty line")
        keys = ("simplified_region", "traditional_region") + (
            () if self.crisis_region == "auto" else ("crisis_region",)
        )
        for key in keys:
            if getattr(self, key) not in self.regions:
                raise ConfigError(
                    f"serve.safety.{key}={getattr(self, key)!r}: not a key of serve.safety.regions "
                    f"({', '.join(self.regions)}); add that region or pick one of these"
                )


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
    # One resource list for every region, replacing serve.safety.regions' lists; empty: by region.
    crisis_resources: list[str] = field(default_factory=list)
    crisis_message: str = ""  # empty: the built-in supportive message
    safety: ServeSafetyConfig = field(default_factory=ServeSafetyConfig)
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
