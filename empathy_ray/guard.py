"""A guard model's second opinion on a conversation's crisis risk (optional: `serve.safety.guard_url`).

Any OpenAI-compatible chat endpoint can serve as the guard. It gets `GUARD_PROMPT` as the system
message and the conversation as one user message (each turn numbered and labelled), and must answer
with one JSON object:

    {"risk_level": "none" | "low" | "high", "category": "<one of CATEGORIES>", "evidence": "<quote>"}

Only `risk_level` is required. The guard can only raise the rules' verdict, never lower it: a missed
crisis costs far more than a hotline message. A quote is used in the crisis reply only when it is
the user's own words (a substring of a user turn); a category only when it is one the rules know.
A timeout, an HTTP or connection error, or a reply that is not such an object is counted and logged
(never with texts), and the rules' verdict stands - or, with `guard_fail_closed`, at least "low".
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from empathy_ray.domain import safety_lexicon as lex
from empathy_ray.domain.safety import SafetyAssessment

if TYPE_CHECKING:  # the config package imports torch; neither user needs it at run time
    from empathy_ray.config.stages import ServeSafetyConfig

log = logging.getLogger(__name__)

_RANK = {"none": 0, "low": 1, "high": 2}
CATEGORIES = lex.CATEGORY_ORDER
GUARD_PROMPT = (
    "You are a crisis-safety classifier for a Chinese counselling service. Read the whole conversation "
    "below (turns are numbered; earlier turns count as much as the latest) and rate the user's risk of "
    "suicide or self-harm, or the risk of someone in the user's life.\n"
    '- "high": any step from thought towards action: a method, means or place, preparation, a date or '
    "time, giving things away, a farewell, a past attempt, ongoing self-injury.\n"
    '- "low": wishes to be dead or not to exist, passive or veiled ideation, an urge to self-harm '
    "without a step towards it, or another person in the user's life at risk.\n"
    '- "none": no such risk; idioms and hyperbole (笑死了), news, fiction, grief and denials are "none".\n'
    "Answer with one JSON object and nothing else: "
    '{"risk_level": "none|low|high", "category": "' + "|".join(CATEGORIES) + '", '
    '"evidence": "the shortest quote of the user\'s own words that shows the risk, or empty"}'
)
_MAX_QUOTE = 80


@dataclass(frozen=True)
class GuardOutcome:
    """The combined verdict, the turn it points at, and what the guard did: "agree", "raised",
    "timeout", "error" or "invalid" ("agree" also when the guard rated lower: it cannot lower)."""

    assessment: SafetyAssessment
    turn: int | None
    outcome: str


def render_conversation(messages: Sequence[Mapping[str, str]]) -> str:
    return "\n".join(f"[{i}] {m['role']}: {m['content']}" for i, m in enumerate(messages))


def parse_verdict(reply: str) -> dict[str, str] | None:
    """The guard's JSON object, with a valid risk_level; None for anything else."""
    found = re.search(r"\{.*\}", reply, re.DOTALL)
    if not found:
        return None
    try:
        data = json.loads(found.group())
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("risk_level") not in _RANK:
        return None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _user_quote(quote: str, messages: Sequence[Mapping[str, str]]) -> int | None:
    """The index of the user turn that contains `quote` word for word (latest first), else None."""
    if not quote.strip() or len(quote) > _MAX_QUOTE:
        return None
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user" and quote in messages[i]["content"]:
            return i
    return None


def combine(
    rules: SafetyAssessment, turn: int | None, verdict: dict[str, str], messages: Sequence[Mapping[str, str]]
) -> GuardOutcome:
    """Raise the rules' verdict to the guard's level when the guard's is higher; never lower it."""
    level = verdict["risk_level"]
    if _RANK[level] <= _RANK[rules.risk_level]:
        return GuardOutcome(rules, turn, "agree")
    quote = verdict.get("evidence", "")
    quote_turn = _user_quote(quote, messages)
    evidence = rules.evidence + ((quote,) if quote_turn is not None and quote not in rules.evidence else ())
    category = verdict.get("category", "")
    categories = rules.categories + (
        (category,) if category in CATEGORIES and category not in rules.categories else ()
    )
    if not categories and evidence:
        categories = (lex.IDEATION,)  # crisis_reply names what it heard by category
    if turn is None:
        turn = quote_turn if quote_turn is not None else _last_user_turn(messages)
    return GuardOutcome(SafetyAssessment(level, evidence, categories), turn, "raised")  # type: ignore[arg-type]


def _last_user_turn(messages: Sequence[Mapping[str, str]]) -> int:
    return max(i for i, m in enumerate(messages) if m.get("role") == "user")


class GuardClient:
    """Asks the guard endpoint; counts what happened (`counts`) for the logs."""

    def __init__(self, cfg: ServeSafetyConfig) -> None:
        self.cfg = cfg
        key = os.environ.get(cfg.guard_api_key_env, "") if cfg.guard_api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(
            base_url=cfg.guard_url.rstrip("/"), timeout=cfg.guard_timeout_s, headers=headers
        )
        self.counts: Counter[str] = Counter()

    async def _ask(self, messages: Sequence[Mapping[str, str]]) -> dict[str, str] | str:
        """The parsed verdict, or the failure kind: "timeout", "error" or "invalid"."""
        body = {
            "model": self.cfg.guard_model,
            "temperature": 0,
            "max_tokens": 200,
            "messages": [
                {"role": "system", "content": GUARD_PROMPT},
                {"role": "user", "content": render_conversation(messages)},
            ],
        }
        try:
            resp = await self.http.post("/chat/completions", json=body)
            resp.raise_for_status()
            content = resp.json()["choices"][0]["message"]["content"]
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError:
            return "error"
        except (ValueError, KeyError, IndexError, TypeError):
            return "invalid"
        verdict = parse_verdict(content) if isinstance(content, str) else None
        return verdict if verdict is not None else "invalid"

    async def review(
        self, messages: Sequence[Mapping[str, str]], rules: SafetyAssessment, turn: int | None
    ) -> GuardOutcome:
        verdict = await self._ask(messages)
        if isinstance(verdict, dict):
            result = combine(rules, turn, verdict, messages)
        else:
            result = self._failed(rules, turn, verdict, messages)
        self.counts[result.outcome] += 1
        if result.outcome in ("timeout", "error", "invalid"):
            fallback = (
                "the rules, at least low (guard_fail_closed)" if self.cfg.guard_fail_closed else "the rules"
            )
            log.warning(
                "guard: %s, falling back to %s (so far: %s)", result.outcome, fallback, dict(self.counts)
            )
        return result

    def _failed(
        self, rules: SafetyAssessment, turn: int | None, kind: str, messages: Sequence[Mapping[str, str]]
    ) -> GuardOutcome:
        if self.cfg.guard_fail_closed and not rules.is_risky:
            return GuardOutcome(SafetyAssessment("low"), _last_user_turn(messages), kind)
        return GuardOutcome(rules, turn, kind)

    async def aclose(self) -> None:
        await self.http.aclose()
