"""The output check: does a model's answer encourage or instruct self-harm, or name means and methods?

Every answer the server would show passes here first (serve/service.py), whatever the risk of the
conversation: a model can write a method into a reply to an ordinary message too. The check answers
with the names of the rules that fired, never with the text, so callers can log and count it freely.

Four layers:
  * `safety.harmful_evidence`: the Chinese phrase rules the RL reward also uses (doses, methods,
    where to buy means, endorsing death);
  * the rules below: directives that put a method in the reader's hands without the words those
    rules list (你可以一次把药全吞下去, 往车流里走过去), method details (割深一点, 绳子系在…), and
    English instructions and endorsements (lethal dose, "you should just end it");
  * concept combinations per sentence (safety_output_concepts.py): a means or method together with
    an amount, a technique, a claim that it works, a chance to act unseen, or concealment; endorsing
    death or self-harm; agreeing that someone is a burden. These carry to phrasings the directive
    rules never listed (a blind set of 110 harmful replies: 0 % caught by the first two layers);
  * a learned second opinion (safety_classifier.NgramModel, kind "answer", safety_output_model.json):
    hashed character n-grams and the concept tokens, trained on the tuning sets of model replies
    (`empathy-ray safety train-classifier --answers`), never on the frozen one.
A negation or a warning just before a match (别, 千万不要, don't, never) cancels it, so a reply that
talks someone out of a method is not blocked; nor is the crisis reply's own advice to put medicine
out of reach.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from empathy_ray.domain import safety_classifier as classifier
from empathy_ray.domain.safety import harmful_evidence
from empathy_ray.domain.safety_output_concepts import (
    COMBINATIONS,
    COMPILED,
    EN_SENTENCE,
    ZH_SENTENCE,
    normalise_answer,
)


@dataclass(frozen=True)
class OutputVerdict:
    """`rules`: names of the rules that fired (no text), empty when the answer may be shown."""

    rules: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return bool(self.rules)


_MEANS_ZH = r"(安眠药|药片|药|农药|老鼠药|百草枯)"
# Swallowing counts only with a quantity (一次, 全部, 整瓶): "记得把药按时吃完" is medical advice.
_SWALLOW_ZH = r"(一次(性)?|一口气|全部|全都|全|统统|整瓶|一整瓶|所有的?)(都)?(吃|吞|服|喝)(下去?|掉|光|完)?"
_ACTS_ZH = (
    r"(割(得|的)?(深|更深)|(往|朝).{0,4}(车流|马路|铁轨|河|海|江)里?(走|冲|跳|躺)"
    r"|(挂|系|绑)在.{0,6}(梁|门|窗|杆|架)|(关|封)(好|死|紧)?门窗.{0,6}(炭|煤气)|开(着)?煤气|点(上|燃)?(木)?炭)"
)
# (name, pattern on normalised Chinese: simplified, no spaces, lower case)
_ZH_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "zh_method_directive",
        re.compile(
            r"(你可以|你就|你只要|只要|可以|不妨|试试|建议你?|最好|干脆|那就|直接|然后|先|记得)"
            rf"(把|用|拿)?.{{0,6}}?({_MEANS_ZH}.{{0,6}}?{_SWALLOW_ZH}|{_SWALLOW_ZH}.{{0,4}}?{_MEANS_ZH}|{_ACTS_ZH})"
        ),
    ),
    (
        "zh_method_detail",
        re.compile(r"割(得|的)?(深|更深)一?点|(绳子?|绳索).{0,6}(挂|系|绑)在|竖着割|顺着血管"),
    ),
    (
        "zh_painless_death",
        re.compile(r"(无痛|不痛苦|没有痛苦|安静)地?(死去|死掉|离开这个世界|结束(生命|自己))"),
    ),
    (
        "zh_endorse",
        re.compile(
            r"(离开|走了|死了|死)(对你来说|对你|对大家|对所有人)?(才是|反而是|就是|是)(一种)?(解脱|最好的)"
        ),
    ),
)
_EN_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "en_directive",
        re.compile(
            r"\b(you should|you could|you can|just|go ahead and|why not|try to|it's time to|"
            r"the (best|easiest|quickest|surest) way (is )?to)\s+(just\s+)?"
            r"(kill yourself|end (it all|your life|yourself|things)|take your (own )?life|commit suicide|"
            r"hang yourself|overdose|slit your|cut (yourself|your wrists?|deeper)|jump (off|from|in front of))",
            re.IGNORECASE,
        ),
    ),
    ("en_dose", re.compile(r"\b(lethal|fatal|deadly) (dose|amount|quantity)\b", re.IGNORECASE)),
    (
        "en_take_all",
        re.compile(
            r"\b(take|swallow)\s+(all|\d+|enough|a lot|a handful)\s+(of\s+)?(the\s+|your\s+|those\s+)?"
            r"(pills|tablets|sleeping pills|medication|meds)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "en_method",
        re.compile(
            r"\b(painless|quickest|easiest|surest|most effective)\s+(way|method)s?\s+(to|of)\s+"
            r"(die|dying|kill yourself|end (it|your life)|suicide)\b|\bcut (along|down) the (vein|wrist|arm)",
            re.IGNORECASE,
        ),
    ),
    (
        "en_endorse",
        re.compile(
            r"\b(you('d| would) be better off dead|no one would miss you|"
            r"(death|dying|suicide) (is|would be) (a |the )?(relief|answer|way out|best option|right choice))\b",
            re.IGNORECASE,
        ),
    ),
)
# A warning or negation right before a match turns an instruction into its opposite.
_ZH_CANCEL = re.compile(
    r"(别|不要|千万别|千万不要|请不要|不能|不应该|绝不|不会|而不是|放到拿不到|远离"
    r"|你(可能|也许|或许)?(会)?(觉得|以为|认为|想着|感觉))[^,.!?;。]{0,3}$"
)
_EN_CANCEL = re.compile(
    r"\b(don't|do not|never|please don't|shouldn't|should not|not|won't|instead of|rather than|rarely|seldom"
    r"|hardly|isn't|aren't|is not|are not)\s+(\w+\s+){0,2}$",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[,.!?;:。，！？；：\n]")


def _without_spaces(normalised: str) -> str:
    """The normalised answer (normalise_answer: NFKC, traditional -> simplified, lower case) without
    whitespace and format characters: what the Chinese rules read."""
    return "".join(c for c in normalised if not c.isspace() and unicodedata.category(c) != "Cf")


def _clause_before(text: str, start: int) -> str:
    breaks = [m.end() for m in _CLAUSE_BREAK.finditer(text, 0, start)]
    return text[(breaks[-1] if breaks else 0) : start]


def _fired(text: str, rules: tuple[tuple[str, re.Pattern[str]], ...], cancel: re.Pattern[str]) -> list[str]:
    fired = []
    for name, pattern in rules:
        if any(not cancel.search(_clause_before(text, m.start())) for m in pattern.finditer(text)):
            fired.append(name)
    return fired


def _concepts(sentence: str, lang: int, cancel: re.Pattern[str]) -> set[str]:
    """The concepts (safety_output_concepts.py) said in one sentence, not counting negated mentions."""
    return {
        name
        for name, patterns in COMPILED.items()
        if any(
            not cancel.search(_clause_before(sentence, m.start())) for m in patterns[lang].finditer(sentence)
        )
    }


def _combined(text: str, lang: int) -> list[str]:
    """Names of the concept combinations any sentence of `text` makes (lang 0: Chinese, 1: English)."""
    splitter, cancel = (ZH_SENTENCE, _ZH_CANCEL) if lang == 0 else (EN_SENTENCE, _EN_CANCEL)
    fired: list[str] = []
    for sentence in splitter.split(text):
        found = _concepts(sentence, lang, cancel)
        for combo in COMBINATIONS:
            if (
                combo.name not in fired
                and all(c in found for c in combo.all_of)
                and (not combo.any_of or any(c in found for c in combo.any_of))
                and not any(c in found for c in combo.unless)
            ):
                fired.append(combo.name)
    return fired


def check_output(answer: str, *, learned: bool = True) -> OutputVerdict:
    """Which harmful-content rules a model answer trips (Chinese, traditional or simplified, and English);
    "learned" when the learned output check (safety_output_model.json) finds it harmful. `learned=False`:
    the rules alone, for measuring them."""
    rules = ["zh_harmful_answer"] if harmful_evidence(answer) else []
    normalised = normalise_answer(answer)  # one OpenCC pass for the rules and the learned layer
    zh = _without_spaces(normalised)
    rules += _fired(zh, _ZH_RULES, _ZH_CANCEL)
    english = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", answer)).replace("’", "'")
    rules += _fired(english, _EN_RULES, _EN_CANCEL)
    rules += [f"zh_{name}" for name in _combined(zh, 0)]
    rules += [f"en_{name}" for name in _combined(english.lower(), 1)]
    if learned and classifier.shipped_output_model().is_risky(normalised):
        rules.append("learned")
    return OutputVerdict(tuple(dict.fromkeys(rules)))
