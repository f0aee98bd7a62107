"""What travels between the RL roles: one sampled answer and what is learned from it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sample:
    """One of the G answers to one prompt of a step, as a rollout worker returns it."""

    uid: str  # "<step>-<prompt index>-<sample index>": unique within a run, used to check nothing is lost
    prompt_index: int  # position of the prompt in the step's batch of B
    sample_index: int  # 0..G-1
    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]  # sampling logprob of each response token (from the engine)
    text: str  # decoded response
    finish_reason: str = ""  # "stop" or "length"
    weight_version: int = 0  # the policy version that generated it


@dataclass
class Scored:
    """A sample with everything the learner needs."""

    sample: Sample
    reward: float
    terms: dict[str, float] = field(default_factory=dict)  # per-term rewards, for logging
    ref_logprobs: list[float] = field(default_factory=list)
    advantage: float = 0.0
