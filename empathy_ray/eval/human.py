"""Reviewers' rankings: durable storage (SQLite) and the Win@K / mean-rank summaries made from them.

A submission ranks every system of one post overall and on the paper's four criteria. It is one
SQLite transaction, so a crash leaves either the whole submission or none of it. A reviewer who ranks
the same post again replaces their earlier ranking (the latest row counts); each reviewer is a
separate judge ("human:<id>"), so several reviewers of one post each count once (see ranking.py).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from empathy_ray.eval.ranking import Ranking, summarise

# (key, title shown to reviewers): overall first, then the paper's four criteria
CRITERIA: tuple[tuple[str, str], ...] = (
    ("overall", "总体 overall"),
    ("fluency", "流畅 fluency"),
    ("recognition", "理解处境 recognition"),
    ("comforting", "安慰 comforting"),
    ("suggestion", "建议 suggestion"),
)
_REVIEWER = re.compile(r"^[\w.@-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rankings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    reviewer TEXT NOT NULL,
    post_id TEXT NOT NULL,
    criterion TEXT NOT NULL,
    ranks TEXT NOT NULL  -- JSON {system: competition rank}
);
"""


def check_reviewer(reviewer: str) -> str:
    if not isinstance(reviewer, str) or not _REVIEWER.match(reviewer):
        raise ValueError(
            f"reviewer id {reviewer!r}: use 1-64 letters, digits, '.', '_', '@' or '-' (e.g. dr.li)"
        )
    return reviewer


class RankingStore:
    """Rankings in an SQLite file; one short-lived connection per call, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('salt', ?)", (secrets.token_hex(16),))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous = FULL")  # a stored ranking survives a power cut
        return db

    @property
    def salt(self) -> str:
        """Secret of this store that fixes each reviewer's answer order; never sent to the browser."""
        with closing(self._connect()) as db:
            return db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0]

    def add(self, reviewer: str, post_id: str, ranks: Mapping[str, Mapping[str, int]]) -> None:
        """Store one submission: ranks[criterion][system] for every criterion, atomically."""
        check_reviewer(reviewer)
        missing = [key for key, _ in CRITERIA if key not in ranks]
        if missing:
            raise ValueError(f"post {post_id!r}: no ranks for {missing}; rank every criterion")
        now = time.time()
        rows = [(now, reviewer, post_id, key, json.dumps(dict(ranks[key]))) for key, _ in CRITERIA]
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT INTO rankings (created, reviewer, post_id, criterion, ranks) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def rankings(self, criterion: str = "overall") -> list[Ranking]:
        """The latest ranking of each (reviewer, post) on `criterion`, as judge "human:<reviewer>"."""
        query = """
            SELECT reviewer, post_id, ranks FROM rankings WHERE id IN (
                SELECT MAX(id) FROM rankings WHERE criterion = ? GROUP BY reviewer, post_id)
            ORDER BY id"""
        with closing(self._connect()) as db:
            found = db.execute(query, (criterion,)).fetchall()
        return [Ranking(post, json.loads(ranks), f"human:{who}") for who, post, ranks in found]

    def ranked_posts(self, reviewer: str) -> set[str]:
        with closing(self._connect()) as db:
            found = db.execute("SELECT DISTINCT post_id FROM rankings WHERE reviewer = ?", (reviewer,))
            return {row[0] for row in found.fetchall()}


def human_summaries(
    store: RankingStore, k_max: int, n_resamples: int, seed: int = 0
) -> dict[str, dict | None]:
    """Per criterion, ranking.summarise over every reviewer's latest rankings (None: no rankings yet)."""
    out: dict[str, dict | None] = {}
    for key, _ in CRITERIA:
        found = store.rankings(key)
        out[key] = summarise(found, k_max, n_resamples, seed=seed) if found else None
    return out
