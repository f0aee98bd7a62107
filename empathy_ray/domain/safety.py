"""Crisis-safety guard: detect suicide/self-harm risk in Chinese posts and build the safe reply.

Used by the server (every post is assessed before the model's answer is shown) and by RL
(`safety_reward` is a reward term). Rule-based on purpose: it must be auditable, deterministic and
cheap, and a missed crisis costs far more than an extra hotline message, so rules err towards firing.

Risk rule (the only thing callers need to know):
  * "high" - any step from thought towards action: a method, means or place (药, 跳楼, 天台, 割腕),
    preparation or intent (攒了很多安眠药, 准备好了绳子, 决定自杀), a farewell (遗书, 跟这个世界告别),
    a past attempt (自杀未遂), repeated self-injury (一直在自残), or a time tied to acting
    (今晚就…, 明天我就…, 就在今晚) in the same sentence as any risk phrase.
  * "low"  - suicidal or self-harm ideation without such a step (想死, 不想活了, 活着没意思, 想自残),
    and any risk phrase whose subject is another person in the writer's life (category "others_at_risk").
  * "none" - nothing matched, or every match was negated (我从来没想过自杀), an idiom (笑死我了, 死机,
    跳楼价), or a report about strangers, media or fiction (新闻里有人跳楼, 电视剧里女主跳楼了).
The server takes the safety path for any level other than "none".
When every rule is silent, a learned second opinion (safety_classifier.py, logistic regression on
character n-grams trained on the tuning sets) may still raise the verdict to "low"; it never lowers one.

Where the parts live: safety_text.py normalises (OpenCC traditional->simplified, disguised pinyin and
Latin spellings, English and Cantonese glossed into Chinese concepts), safety_lexicon.py holds the word
rules, negation, idioms and subjects, safety_acts.py the compositional rules for acts (means, farewell
acts, attempts, self-harm acts, veiled ideation), safety_concepts.py the rules that fire when two
concepts meet in one sentence (a chosen time x nobody around, a lethal place x its pull, handing things
over x an absent future), safety_signals.py the signal families (kinds of statement a crisis-line
worker listens for - an unnamed act with a resolve or a date, a message meant for after, the writer gone
and nobody noticing - that fire when two kinds meet). Around every match: negation, a person described by
a relative clause or a stranger as subject ("想轻生的人", "主播说想死"), a media frame, and the frames in
safety_frames.py: a question put to someone ("医生问我有没有…"), a professional's how-to about the people
they serve ("怎么评估病人的自杀风险"), a risk placed in the past by a writer who says they are well now
("十年前…现在挺好的"), a threat about an exam taken back as a joke.
`empathy-ray safety eval` measures them on the labelled set in tests/data/safety/ (a frozen test part
that is never used to tune rules).

Third-person decision: the guard scores risk *in the writer's world*. Strangers, public figures and
fiction are reports and do not fire. A known person (朋友说想死, 我儿子想自杀) fires "low" with
"others_at_risk": the writer needs resources for helping, and may be affected themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from empathy_ray.domain import safety_acts as acts
from empathy_ray.domain import safety_aftermath as aftermath
from empathy_ray.domain import safety_classifier as classifier
from empathy_ray.domain import safety_concepts as concepts
from empathy_ray.domain import safety_frames as frames
from empathy_ray.domain import safety_lexicon as lex
from empathy_ray.domain import safety_signals as signals
from empathy_ray.domain.safety_text import Normalised
from empathy_ray.domain.safety_text import normalise as _normalise

RiskLevel = Literal["none", "low", "high"]


@dataclass(frozen=True)
class SafetyAssessment:
    """The guard's verdict on one text. `evidence` holds the matched phrases as written by the user."""

    risk_level: RiskLevel
    evidence: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def is_risky(self) -> bool:
        return self.risk_level != "none"


def _mask_idioms(text: str) -> str:
    """Blank idioms with a character no rule matches, keeping offsets unchanged."""
    return lex.IDIOMS.sub(lambda m: "□" * len(m.group()), text)


def _span_start(text: str, position: int, breaks: re.Pattern[str] = lex.CLAUSE_BREAK) -> int:
    """Start of the clause (or, with SENTENCE_BREAK, the sentence) that contains `position`."""
    ends = [m.end() for m in breaks.finditer(text, 0, position)]
    return ends[-1] if ends else 0


def _span_end(text: str, position: int, breaks: re.Pattern[str]) -> int:
    found = breaks.search(text, position)
    return found.start() if found else len(text)


def _is_negated(prefix: str) -> bool:
    """True when the clause text right before a match ends in a negation of it."""
    found = lex.NEGATION_TAIL.search(prefix)
    if not found:
        return False
    start = found.start()
    # A-not-A questions ("是不是", "有没有想过", "会不会") ask, they do not deny.
    if start > 0 and start + 1 < len(prefix) and prefix[start - 1] == prefix[start + 1]:
        return False
    # "我不是没想过自杀": a negator right after "不是" - two negations affirm.
    return not lex.DOUBLE_NEGATION_TAIL.search(prefix[:start])


def _speaker(prefix: str, after: str = "", earlier: str = "") -> str:
    """Whose risk a match describes: "self" (default, subjects are often dropped), "other", "reported".
    `after` is the clause text following the match (a relative clause makes it about someone), `earlier`
    the sentence before the clause (a book or poem title there makes "他"/"她" its author or character)."""
    if lex.RELATIVE_PERSON.match(after) and not lex.SELF_DESCRIPTION.search(prefix):
        return "reported"
    if lex.STRANGER.search(prefix):
        return "reported"
    story = lex.MEDIA_FRAME.search(earlier)
    if (
        story
        and frames.STORY_PERSON.search(earlier[story.end() :] + prefix)
        and not frames.WRITER.search(prefix)
    ):
        return "reported"
    media = list(lex.MEDIA_FRAME.finditer(prefix))
    framed = bool(media) and not frames.WRITER.search(prefix[media[-1].end() :])
    for subject, speaker in ((lex.REPORTED_SUBJECT, "reported"), (lex.OTHER_SUBJECT, "other")):
        found = subject.search(prefix)
        if found and not lex.LISTENER_TAIL.search(prefix[: found.start()]):
            # "电影里他把遗书撕了": a person inside a media frame is a character, not someone the writer knows.
            if framed and media[-1].start() < found.start():
                return "reported"
            before = earlier + prefix[: found.start()]
            if lex.TITLE.search(before) and lex.PRONOUN.match(found.group()):
                return "reported"
            shop = lex.PROFESSIONAL.search(before) and not before.endswith("的")
            return "reported" if shop and lex.SERVED_GROUP.match(found.group()) else speaker
    if framed:
        # "我的学生在作文里写…": what someone in the writer's life writes is theirs, not a media report.
        if media[-1].group() == "作文" and lex.OTHER_SUBJECT.search(prefix[: media[-1].start()]):
            return "other"
        return "reported"
    return "self"


def _is_history(text: str, position: int) -> bool:
    """A risk the writer places in the past ("十年前我有过想死的念头") and says they are well from now
    ("现在日子过得挺好的"), with nothing saying it came back."""
    recovered = frames.RECOVERED.search(text, position)
    if recovered is None or frames.RELAPSE.search(text):
        return False
    # The time may come after the risk too: "我自杀未遂是十年前的事了", "I tried at 17".
    sentence = text[
        _span_start(text, position, lex.SENTENCE_BREAK) : _span_end(text, position, lex.SENTENCE_BREAK)
    ]
    return bool(frames.PAST.search(sentence))


def _is_topic(text: str, end: int, prefix: str) -> bool:
    """The match names a topic (a scene, a course, a text, a quoted word, what clinicians assess), unless
    the writer owns it ("我脑子里全是…的镜头", "my … scene") or is looking such texts up."""
    about = frames.ABOUT_TEXT.search(prefix) and frames.TEXT_AFTER.match(text, end)
    if (frames.TOPIC_NOUN.match(text, end) or about) and not frames.SEARCHING.search(prefix):
        return not frames.WRITER.search(prefix[-8:])
    return bool(frames.CLINICAL_VERB.search(prefix) and frames.CLINICAL_NOUN.match(text, end))


def _is_not_asserted(text: str, start: int, end: int, prefix: str) -> bool:
    """The match is negated (before or after it), asked about, a professional's or a text's topic, a joke
    taken back or a history (safety_frames.py describes each frame)."""
    if _is_negated(prefix) or frames.NEGATED_AFTER.match(text, end):
        return True
    if frames.QUESTION_FRAME.search(prefix) or frames.ASKED_ABOUT_OTHERS.search(prefix):
        return True
    if frames.served_quote(text, start - len(prefix), start, end):
        return True
    if _is_topic(text, end, prefix):
        return True
    if frames.is_joke(text, end, prefix):
        return True
    sentence = text[_span_start(text, start, lex.SENTENCE_BREAK) : _span_end(text, end, lex.SENTENCE_BREAK)]
    return frames.ordinary_means(text[start:end], sentence) or _is_history(text, start)


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    severity: str
    categories: tuple[str, ...]


def _find_hits(text: str) -> tuple[list[_Hit], list[_Hit]]:
    """All rule matches that survive negation and speaker checks, split into (self, others)."""
    own: list[_Hit] = []
    others: list[_Hit] = []
    for rule in lex.RULES + acts.RULES + aftermath.RULES + concepts.RULES + signals.RULES:
        if rule.context is not None and not rule.context.search(text):
            continue
        if rule.unless is not None and rule.unless.search(text):
            continue
        for match in rule.pattern.finditer(text):
            clause = _span_start(text, match.start())
            prefix = text[clause : match.start()]
            if _is_not_asserted(text, match.start(), match.end(), prefix):
                continue
            earlier = text[_span_start(text, clause, lex.SENTENCE_BREAK) : clause]
            after = text[match.end() : _span_end(text, match.end(), lex.CLAUSE_BREAK)]
            speaker = _speaker(prefix, after, earlier)
            if speaker == "self":
                own.append(_Hit(match.start(), match.end(), rule.severity, rule.categories))
            elif speaker == "other" and not frames.BEREAVEMENT.search(text):
                others.append(_Hit(match.start(), match.end(), "low", (lex.OTHERS,)))
    return own, others


def _timing_hits(text: str, own: list[_Hit]) -> list[_Hit]:
    """Times tied to acting that share a sentence with one of the writer's own risk matches."""
    hits: list[_Hit] = []
    for hit in own:
        start = _span_start(text, hit.start, lex.SENTENCE_BREAK)
        end = _span_end(text, hit.end, lex.SENTENCE_BREAK)
        for match in lex.TIMING.finditer(text, start, end):
            hits.append(_Hit(match.start(), match.end(), "high", (lex.PLAN,)))
    return hits


def _merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join touching or overlapping matches, so "今晚就" + "结束这一切" is quoted as one phrase."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def canonical_text(text: str) -> str:
    """The text as every rule (and the learned second opinion) reads it: normalised, idioms masked."""
    return _mask_idioms(_normalise(text).text)


def _learned_verdict(text: str, norm: Normalised, masked: str) -> SafetyAssessment:
    """The classifier's opinion when no rule fired: "low" quoting the sentence it finds most risky."""
    model = classifier.shipped_model()
    if not model.is_risky(masked):
        return SafetyAssessment("none")
    bounds = [0, *(i for m in lex.SENTENCE_BREAK.finditer(masked) for i in (m.start(), m.end())), len(masked)]
    sentences = [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=True) if masked[a:b].strip("□ ")]
    a, b = max(
        sentences, key=lambda span: model.probability(masked[span[0] : span[1]]), default=(0, len(masked))
    )
    return SafetyAssessment("low", (norm.quote(text, a, b),), (lex.IDEATION,))


def assess(text: str, *, learned: bool = classifier.ENABLED) -> SafetyAssessment:
    """Assess suicide/self-harm risk in one user message (see the module docstring for the rule).
    `learned=False` gives the rules alone (for measuring them; the guard always uses both)."""
    norm = _normalise(text)
    masked = _mask_idioms(norm.text)
    own, others = _find_hits(masked)
    hits = own + _timing_hits(masked, own) + others
    if not hits:
        return _learned_verdict(text, norm, masked) if learned and masked else SafetyAssessment("none")
    level: RiskLevel = "high" if any(hit.severity == "high" for hit in hits) else "low"
    found_categories = {category for hit in hits for category in hit.categories}
    evidence: list[str] = []
    for start, end in _merge_spans((hit.start, hit.end) for hit in hits):
        quote = norm.quote(text, start, end)
        if quote not in evidence:
            evidence.append(quote)
    categories = tuple(c for c in lex.CATEGORY_ORDER if c in found_categories)
    return SafetyAssessment(level, tuple(evidence), categories)


DEFAULT_RESOURCES: tuple[str, ...] = (
    # Mainland-China defaults. SET PER DEPLOYMENT: confirm every number for the region you serve.
    # 12356 is the national unified psychological-assistance hotline (NHC, rolled out from 2025).
    "全国心理援助热线：12356",
    # Beijing Suicide Research and Prevention Center (Huilongguan Hospital); widely published number.
    "北京心理危机研究与干预中心：010-82951332",
    "紧急情况请拨打 120（急救）或 110（报警）",
)


@dataclass(frozen=True)
class SafetyConfig:
    """Deployment-specific wording and resources. Defaults are placeholders to be reviewed per region."""

    resources: tuple[str, ...] = DEFAULT_RESOURCES
    support_message: str = (
        "你不是一个人在面对这些，你的痛苦是真实的，也值得被认真对待。"
        "请现在就联系一个你信任的、身边的人，告诉他们你现在的状况，或者拨打下面的热线，和专业的人聊一聊。"
    )
    urgent_message: str = (
        "如果你已经伤害了自己，或者觉得自己随时可能会做些什么，请立刻拨打 120 或 110，或者去最近的医院急诊。"
        "在等待帮助的时候，请把药物、刀具这些可能伤到你的东西放到拿不到的地方，尽量不要一个人待着。"
    )
    others_message: str = (
        "你不需要独自承担这份担心。请现在就联系下面的热线，问问怎样陪伴和保护对方；"
        "如果对方此刻有危险，请立即拨打 120 或 110，并尽量让人陪在他/她身边。"
    )
    resources_heading: str = "现在就可以联系的求助渠道："
    help_terms: tuple[str, ...] = lex.DEFAULT_HELP_TERMS

    def __post_init__(self) -> None:
        for name in ("resources", "help_terms"):
            value = tuple(getattr(self, name))  # accept lists, e.g. from YAML
            if not value or not all(isinstance(item, str) and item.strip() for item in value):
                raise ValueError(
                    f"SafetyConfig.{name} must be a non-empty list of non-empty strings, got {value!r}"
                )
            object.__setattr__(self, name, value)
        for name in ("support_message", "urgent_message", "others_message", "resources_heading"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"SafetyConfig.{name} is empty; give the text shown to users in a crisis")


# How the reply names what was heard, by the most serious category present (first match wins).
_HEARD = (
    (lex.PLAN, "你提到「{quote}」，我很担心你现在的安全，谢谢你愿意把这些说出来。"),
    (lex.FAREWELL, "你提到「{quote}」，听起来你可能已经在和这个世界告别，我很担心你现在的安全。"),
    (lex.ATTEMPT, "你提到「{quote}」，谢谢你愿意说出这段经历，我很关心你现在是不是安全。"),
    (lex.SELF_HARM, "你说到「{quote}」，听起来你正承受着很深的痛苦，痛到想用伤害自己的方式去扛。"),
    (lex.IDEATION, "你说「{quote}」，我听到了。你一定已经撑了很久，真的很累、很痛苦。"),
    (lex.OTHERS, "你提到身边的人可能有危险（「{quote}」），这一定让你很担心、很害怕。"),
)


def crisis_reply(assessment: SafetyAssessment, config: SafetyConfig | None = None) -> str:
    """Warm crisis message: name what was heard, say they are not alone, urge contact now, list resources."""
    if not assessment.is_risky:
        raise ValueError("crisis_reply needs a risky assessment (risk_level 'low' or 'high'), got 'none'")
    config = config or SafetyConfig()
    quote = "、".join(assessment.evidence[:2])
    heard = next(text for category, text in _HEARD if category in assessment.categories).format(quote=quote)
    own_risk = any(category != lex.OTHERS for category in assessment.categories)
    parts = [heard + (config.support_message if own_risk else config.others_message)]
    if assessment.risk_level == "high" and own_risk:
        parts.append(config.urgent_message)
    parts.append(config.resources_heading + "\n" + "\n".join(f"- {line}" for line in config.resources))
    return "\n\n".join(parts)


def harmful_evidence(answer: str) -> tuple[str, ...]:
    """Phrases in a reply that instruct or encourage self-harm (method details, doses, endorsement)."""
    norm = _normalise(answer)
    text = _mask_idioms(norm.text)
    found: list[str] = []
    for match in lex.HARMFUL_ANSWER.finditer(text):
        if lex.ANSWER_CANCEL_TAIL.search(text[_span_start(text, match.start()) : match.start()]):
            continue
        found.append(norm.quote(answer, match.start(), match.end()))
    return tuple(found)


def compose_reply(
    model_answer: str | None, assessment: SafetyAssessment, config: SafetyConfig | None = None
) -> str:
    """The reply the user sees. Policy:

    * "none": the model answer as is (it must be given).
    * "low":  crisis message first, then the model answer, so the person still feels heard on what
              they wrote about - unless the answer is empty or itself harmful, then the crisis message only.
    * "high": crisis message only. With a method or plan on the table, nothing may dilute the call to
              get help now, and an unvetted generation is not shown.
    """
    if not assessment.is_risky:
        if model_answer is None:
            raise ValueError(
                "compose_reply: risk is 'none' so the reply is the model answer, but model_answer is None"
            )
        return model_answer
    message = crisis_reply(assessment, config)
    answer = (model_answer or "").strip()
    if assessment.risk_level == "low" and answer and not harmful_evidence(answer):
        return message + "\n\n" + answer
    return message


def acknowledges_safety(answer: str, config: SafetyConfig | None = None) -> bool:
    """Does the reply point to help: a help term (DEFAULT_HELP_TERMS) or a phone number from the resources?"""
    config = config or SafetyConfig()
    # Hyphens and spaces inside phone numbers vary ("010-8295 1332"), so numbers compare digits only.
    text = _normalise(answer).text.replace("-", "").replace(" ", "")
    numbers = {n.replace("-", "") for line in config.resources for n in re.findall(r"\d[\d-]+\d", line)}
    for term in (*config.help_terms, *numbers):
        term = _normalise(term).text
        if term.replace("-", "").isdigit():  # a whole number, not part of a longer one or a price/age/count
            pattern = rf"(?<!\d){term.replace('-', '')}(?!\d|[块元岁斤个分米号天次%])"
        else:
            pattern = re.escape(term) + ("(?!感)" if term == "安全" else "")
        if re.search(pattern, text):
            return True
    return False


def safety_reward(post_text: str, answer_text: str, config: SafetyConfig | None = None) -> float:
    """RL reward term in [-1, 0]: -1 for an answer that encourages or instructs self-harm (always), or
    that ignores safety on a risky post; 0 otherwise. It only penalises, so it cannot be farmed by
    pasting hotlines into answers to ordinary posts."""
    if harmful_evidence(answer_text):
        return -1.0
    if assess(post_text).is_risky and not acknowledges_safety(answer_text, config):
        return -1.0
    return 0.0
