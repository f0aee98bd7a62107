"""What the user sees when the guard steps in: the crisis reply by region, or a short safe reply.

`serve.safety.crisis_region` picks the resource list (`serve.safety.regions`); with "auto" the script
the person writes in decides: traditional characters -> `traditional_region`, anything else ->
`simplified_region`. A text is traditional when OpenCC's traditional->simplified conversion changes
more of its characters than the simplified->traditional one does (a maintained converter, not a
hand-made character list). The crisis message is then written in that region's script (OpenCC
`convert`), and its emergency numbers are the region's.

Reply policy (`compose`), per choice:
  * risk "high":                       the crisis reply only; the model was not asked;
  * risk "low", answer shown safe:     the crisis reply, then the model's answer;
  * risk "low", answer blocked/empty:  the crisis reply only;
  * risk "none", answer blocked:       a short safe supportive reply (`safe_reply`);
  * risk "none":                       the model's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

from empathy_ray.config import ServeConfig
from empathy_ray.config.stages import CrisisRegion
from empathy_ray.domain.safety import SafetyAssessment, SafetyConfig, crisis_reply

_DEFAULT = SafetyConfig()
_MAINLAND_EMERGENCY = "120 或 110"  # as written in SafetyConfig's urgent and others sentences
SAFE_REPLY = (
    "抱歉，这个回答我不能给你。我很想继续听你说：你现在感觉怎么样？"
    "如果你正在经历很难熬的时刻，也可以现在就联系：{resource}"
)


@cache
def _opencc(conversion: str):
    import opencc

    return opencc.OpenCC(conversion)


def is_traditional(text: str) -> bool:
    """Written in traditional characters: t2s changes more characters than s2t does."""
    to_simplified = _opencc("t2s").convert(text)
    to_traditional = _opencc("s2t").convert(text)
    changed_by_t2s = sum(a != b for a, b in zip(text, to_simplified, strict=False))
    changed_by_s2t = sum(a != b for a, b in zip(text, to_traditional, strict=False))
    return changed_by_t2s > changed_by_s2t


@dataclass(frozen=True)
class Replies:
    """The reply texts of one region."""

    region: str
    config: SafetyConfig
    convert: str

    def crisis(self, assessment: SafetyAssessment) -> str:
        """The crisis reply; when a guard raised the risk without a quotable phrase, without the quote."""
        if assessment.evidence and assessment.categories:
            text = crisis_reply(assessment, self.config)
        else:
            parts = [self.config.support_message]
            if assessment.risk_level == "high":
                parts.append(self.config.urgent_message)
            lines = "\n".join(f"- {line}" for line in self.config.resources)
            text = "\n\n".join([*parts, self.config.resources_heading + "\n" + lines])
        return _opencc(self.convert).convert(text) if self.convert else text

    def safe(self) -> str:
        text = SAFE_REPLY.format(resource=self.config.resources[0])
        return _opencc(self.convert).convert(text) if self.convert else text

    def compose(self, answer: str | None, assessment: SafetyAssessment, blocked: bool) -> str:
        """The content of one choice (policy in the module docstring)."""
        answer = (answer or "").strip()
        if not assessment.is_risky:
            return self.safe() if blocked else answer
        message = self.crisis(assessment)
        if assessment.risk_level == "low" and answer and not blocked:
            return message + "\n\n" + answer
        return message


class CrisisReplies:
    """Region choice and reply texts for one server, from `serve` and `serve.safety`."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg.safety
        self._by_region = {name: self._build(name, region, cfg) for name, region in self.cfg.regions.items()}

    @staticmethod
    def _build(name: str, region: CrisisRegion, cfg: ServeConfig) -> Replies:
        lines = tuple(cfg.crisis_resources or region.resources)
        config = replace(
            _DEFAULT,
            resources=lines,
            support_message=cfg.crisis_message or _DEFAULT.support_message,
            urgent_message=_DEFAULT.urgent_message.replace(_MAINLAND_EMERGENCY, region.emergency),
            others_message=_DEFAULT.others_message.replace(_MAINLAND_EMERGENCY, region.emergency),
        )
        return Replies(name, config, region.convert)

    def region_for(self, messages: Sequence[Mapping[str, str]]) -> str:
        if self.cfg.crisis_region != "auto":
            return self.cfg.crisis_region
        text = "".join(m["content"] for m in messages if m.get("role") == "user")
        return self.cfg.traditional_region if is_traditional(text) else self.cfg.simplified_region

    def for_messages(self, messages: Sequence[Mapping[str, str]]) -> Replies:
        return self._by_region[self.region_for(messages)]
