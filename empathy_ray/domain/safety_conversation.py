"""Crisis risk of a whole conversation, not only of its latest message.

A person who wrote "遗书我昨天已经写好了" two turns ago and now writes "算了不说这个了" has not stopped
being at risk; a guard that reads only the last message would answer them like anyone else. So every
user turn is assessed with the rules (`safety.assess`) and the most serious turn decides:

  * the verdict is the most serious user turn's verdict ("high" > "low" > "none"); among equally
    serious turns the latest wins, because it is what the person is saying now;
  * a risk stated in an earlier turn is therefore never lost: the reply keeps the safety path (at
    least "low"), and the returned turn index names the message the evidence was quoted from.

Pure: no I/O, no model; the server (serve/service.py) and the evaluation both call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from empathy_ray.domain import safety_frames as frames
from empathy_ray.domain.safety import SafetyAssessment, assess, canonical_text
from empathy_ray.domain.safety_lexicon import OTHERS

_RANK = {"none": 0, "low": 1, "high": 2}


def assess_turns(messages: Sequence[Mapping[str, str]]) -> list[tuple[int, SafetyAssessment]]:
    """(index in `messages`, verdict) for every user message, in order; other roles are not assessed.
    A turn's risk is settled by what the same person says later only in two cases (see `_settled`)."""
    users = [(i, m["content"]) for i, m in enumerate(messages) if m.get("role") == "user"]
    verdicts = []
    for k, (i, text) in enumerate(users):
        verdict = assess(text)
        if verdict.is_risky and _settled(verdict, text, [later for _, later in users[k + 1 :]]):
            verdict = SafetyAssessment("none")
        verdicts.append((i, verdict))
    return verdicts


def _settled(verdict: SafetyAssessment, text: str, later: list[str]) -> bool:
    """A history told over several turns ("三年前我试过吃药" ... "现在挺好的，一直在看医生") with nothing
    saying it came back, or another person's death that the writer goes on to mourn ("我朋友上个月自杀了"
    ... "下周是他的追悼会"). A retraction ("开玩笑的", "算了不说了") settles nothing."""
    if not later:
        return False
    after = canonical_text("。".join(later))
    if set(verdict.categories) == {OTHERS} and frames.BEREAVEMENT.search(after):
        return True
    said = canonical_text(text)
    return bool(
        frames.PAST.search(said)
        and frames.RECOVERED.search(after)
        and not frames.RELAPSE.search(said + after)
    )


def assess_conversation(messages: Sequence[Mapping[str, str]]) -> tuple[SafetyAssessment, int | None]:
    """The conversation's verdict and the index in `messages` of the turn it came from.

    The index is None when no user turn carries any risk (the verdict is then "none").
    """
    turns = assess_turns(messages)
    if not turns:
        raise ValueError("assess_conversation: the conversation has no user message to assess")
    risky = [(i, a) for i, a in turns if a.is_risky]
    if not risky:
        return SafetyAssessment("none"), None
    index, verdict = max(risky, key=lambda turn: (_RANK[turn[1].risk_level], turn[0]))
    return verdict, index
