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

from empathy_ray.domain.safety import SafetyAssessment, assess

_RANK = {"none": 0, "low": 1, "high": 2}


def assess_turns(messages: Sequence[Mapping[str, str]]) -> list[tuple[int, SafetyAssessment]]:
    """(index in `messages`, verdict) for every user message, in order; other roles are not assessed."""
    return [(i, assess(m["content"])) for i, m in enumerate(messages) if m.get("role") == "user"]


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
