"""Empathy-QA records: posts with ranked answers, and preference pairs.

`from_dict` trusts its input (files are checked by `empathy_ray.data.validate` before records are
built); `to_dict` gives the canonical JSON form, which is what the writers store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SOURCES = ("counsellor", "peer", "model", "psyqa")
REASONS = ("dismissive", "generic", "lecturing", "off_topic", "mismatched", "unsafe")


@dataclass(frozen=True)
class Answer:
    """A reply to a post. `coe` holds the L1..L4 annotation; `strategies` are PsyQA support-strategy
    spans `{start, end, type}` over `text` (end exclusive)."""

    text: str
    coe: dict[str, str] | None = None
    rank: int | None = None
    source: str = "counsellor"
    strategies: tuple[dict[str, Any], ...] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        coe, strategies = d.get("coe"), d.get("strategies")
        return cls(
            text=d["text"],
            coe=dict(coe) if coe is not None else None,
            rank=d.get("rank"),
            source=d.get("source") or "counsellor",
            strategies=tuple(dict(s) for s in strategies) if strategies is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text}
        if self.coe is not None:
            d["coe"] = dict(self.coe)
        if self.rank is not None:
            d["rank"] = self.rank
        d["source"] = self.source
        if self.strategies is not None:
            d["strategies"] = [dict(s) for s in self.strategies]
        return d


@dataclass(frozen=True)
class Post:
    id: str
    topic: str
    subtopic: str
    question: str
    description: str
    answers: tuple[Answer, ...]
    crisis: bool = False
    keywords: tuple[str, ...] = ()
    split: str | None = None  # fixed by the data (e.g. a curated held-out set); None: by hash of the id

    @property
    def text(self) -> str:
        """What the model sees."""
        return self.question + "\n" + self.description

    @property
    def best_answer(self) -> Answer:
        """Lowest rank wins (unranked last); among equals a counsellor's reply, then file order."""

        def key(item: tuple[int, Answer]) -> tuple[float, bool, int]:
            i, a = item
            return (a.rank if a.rank is not None else math.inf, a.source != "counsellor", i)

        return min(enumerate(self.answers), key=key)[1]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Post:
        return cls(
            id=d["id"],
            topic=d["topic"],
            subtopic=d["subtopic"],
            question=d["question"],
            description=d["description"],
            answers=tuple(Answer.from_dict(a) for a in d["answers"]),
            crisis=bool(d.get("crisis") or False),
            keywords=tuple(d.get("keywords") or ()),
            split=d.get("split"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "subtopic": self.subtopic,
            "question": self.question,
            "description": self.description,
            "crisis": self.crisis,
            "keywords": list(self.keywords),
            "answers": [a.to_dict() for a in self.answers],
        } | ({"split": self.split} if self.split else {})


@dataclass(frozen=True)
class PreferencePair:
    """`chosen` is the better reply to `post`; `reason` says why `rejected` is worse (one of REASONS)."""

    id: str
    post: str
    chosen: str
    rejected: str
    reason: str
    post_id: str | None = None
    split: str | None = None  # None: its post's split (fixed or by hash)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreferencePair:
        fields = (d["id"], d["post"], d["chosen"], d["rejected"], d["reason"])
        return cls(*fields, d.get("post_id"), d.get("split"))

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "post_id": self.post_id, "post": self.post}
        d |= {"chosen": self.chosen, "rejected": self.rejected, "reason": self.reason, "split": self.split}
        return {k: v for k, v in d.items() if v is not None}
