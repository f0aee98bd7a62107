"""Win@K and mean rank from per-post rankings of K systems by a judge (LLM or human).

Conventions, fixed here so every report reads the same:

* Rank 1 is best. Ties share a rank number in competition form ("1224"): ``{a: 1, b: 1, c: 3}``.
  A tie at rank r counts as rank r for EVERY tied system, so two systems tied first both score a
  win at Win@1 (the "shared first" convention); Win@1 shares over systems can then sum above 1.
  Mean rank likewise uses the shared rank number (1, not 1.5), matching Win@K.
* A failed judgement (unparseable judge output, API error, ...) is a ``Ranking`` with
  ``failed=True`` and no ranks. It is never a win or a loss: Win@K and mean rank are taken over the
  successful judgements only, and the failures are counted and shown in every summary.
* Statistics are per judgement. With one judge per post that is per post; if several judges rank
  the same post, each judgement counts once, and the bootstrap still resamples whole posts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

StatFn = Callable[[Sequence["Ranking"]], dict[str, float]]


@dataclass(frozen=True)
class Ranking:
    """One judge's ranking of the systems' replies to one post (or the record that it failed)."""

    post_id: str
    ranks: Mapping[str, int]
    judge: str
    failed: bool = False
    error: str = ""  # why it failed, for the report; empty when it did not

    @classmethod
    def failure(cls, post_id: str, judge: str, error: str = "") -> Ranking:
        """The record of a judgement that produced no usable ranking."""
        return cls(post_id, {}, judge, failed=True, error=error)

    def __post_init__(self) -> None:
        where = f"Ranking(post_id={self.post_id!r}, judge={self.judge!r})"
        if not self.post_id or not self.judge:
            raise ValueError(f"{where}: post_id and judge must both be non-empty")
        if self.failed:
            if self.ranks:
                raise ValueError(f"{where}: a failed judgement carries no ranks, got {dict(self.ranks)}")
            return
        if not self.ranks:
            raise ValueError(f"{where}: no ranks; record a judge failure with Ranking.failure(...) instead")
        for system, rank in self.ranks.items():
            if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
                raise ValueError(f"{where}: rank of {system!r} must be an int >= 1, got {rank!r}")
        expected = _competition_ranks(self.ranks)
        if dict(self.ranks) != expected:
            raise ValueError(
                f"{where}: ranks {dict(self.ranks)} are not competition ranks (1224: a rank is 1 + the "
                f"number of systems ranked strictly better); expected {expected}. "
                "Convert with ranks_from_scores({s: -r for s, r in ranks.items()})"
            )

    @property
    def has_tie(self) -> bool:
        return len(set(self.ranks.values())) < len(self.ranks)


def _competition_ranks(values: Mapping[str, float], higher_is_better: bool = False) -> dict[str, int]:
    """Rank = 1 + number of systems strictly better; equal values share a rank ("1224")."""
    sign = -1.0 if higher_is_better else 1.0
    return {s: 1 + sum(sign * w < sign * v for w in values.values()) for s, v in values.items()}


def ranks_from_scores(scores: Mapping[str, float]) -> dict[str, int]:
    """Turn per-system scores (higher = better) into competition ranks, e.g. 9, 7, 7, 5 -> 1, 2, 2, 4."""
    if not scores:
        raise ValueError("scores is empty: need at least one system to rank")
    for system, score in scores.items():
        if not isinstance(score, int | float) or math.isnan(score):
            raise ValueError(f"score of {system!r} must be a number (not NaN), got {score!r}")
    return _competition_ranks(scores, higher_is_better=True)


def _judged(rankings: Sequence[Ranking]) -> tuple[list[Ranking], list[str]]:
    """The successful judgements and their common, sorted system list.

    Every successful judgement must rank the same systems: a system missing from some posts would
    be scored on a different set of posts from the others, and the comparison would be unfair.
    """
    judged = [r for r in rankings if not r.failed]
    if not judged:
        failed = len(rankings)
        raise ValueError(f"no successful judgements to score ({failed} failed, {failed} in total)")
    systems = set(judged[0].ranks)
    for r in judged[1:]:
        if set(r.ranks) != systems:
            raise ValueError(
                f"post {r.post_id!r} (judge {r.judge!r}) ranks systems {sorted(r.ranks)}, but post "
                f"{judged[0].post_id!r} ranks {sorted(systems)}; every judgement must rank the same systems"
            )
    return judged, sorted(systems)


def win_at_k(rankings: Sequence[Ranking], k: int) -> dict[str, float]:
    """Per system, the share of successful judgements that rank it at k or better (ties shared)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    judged, systems = _judged(rankings)
    return {s: sum(r.ranks[s] <= k for r in judged) / len(judged) for s in systems}


def mean_rank(rankings: Sequence[Ranking]) -> dict[str, float]:
    """Per system, the mean rank over successful judgements (lower is better)."""
    judged, systems = _judged(rankings)
    return {s: sum(r.ranks[s] for r in judged) / len(judged) for s in systems}


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default method)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def bootstrap_ci(
    rankings: Sequence[Ranking],
    stat_fn: StatFn,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap (1 - alpha) interval of ``stat_fn`` per system, resampling posts.

    Posts, not judgements, are the resampling unit, so several judgements of one post move
    together. Failed judgements are left out of the pool: they never enter a statistic, and keeping
    them would only let some resamples come out with fewer successful posts than the data has.
    Deterministic for a given ``seed`` (its own ``random.Random``, global state untouched).
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    judged, systems = _judged(rankings)
    by_post: dict[str, list[Ranking]] = {}
    for r in judged:
        by_post.setdefault(r.post_id, []).append(r)
    posts = list(by_post.values())
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {s: [] for s in systems}
    for _ in range(n_resamples):
        resample = [r for _ in posts for r in posts[rng.randrange(len(posts))]]
        stat = stat_fn(resample)
        for s in systems:
            samples[s].append(stat[s])
    intervals = {}
    for s, values in samples.items():
        values.sort()
        intervals[s] = (_quantile(values, alpha / 2), _quantile(values, 1 - alpha / 2))
    return intervals


def _check_unique(rankings: Sequence[Ranking]) -> None:
    """One record per (post, judge): a retried judgement must replace its failure, not sit beside it."""
    seen: set[tuple[str, str]] = set()
    for r in rankings:
        key = (r.post_id, r.judge)
        if key in seen:
            raise ValueError(
                f"post {r.post_id!r} has two judgements by judge {r.judge!r}; keep only the final one"
            )
        seen.add(key)


def summarise(
    rankings: Sequence[Ranking],
    k_max: int,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Win@1..k_max, mean rank and their bootstrap intervals per system, plus the counts.

    The result is JSON-ready: ``{"judges", "counts": {posts, judged, failed, ties}, "k_max", "alpha",
    "n_resamples", "seed", "systems": {name: {"win@1", "win@1_ci", ..., "mean_rank", "mean_rank_ci"}}}``.
    ``counts.ties`` is the number of successful judgements with at least one tie. When every
    judgement failed, ``systems`` is empty and the counts still say what happened.
    """
    if not rankings:
        raise ValueError("rankings is empty: nothing to summarise")
    _check_unique(rankings)
    judged = [r for r in rankings if not r.failed]
    summary: dict = {
        "judges": sorted({r.judge for r in rankings}),
        "counts": {
            "posts": len({r.post_id for r in rankings}),
            "judged": len(judged),
            "failed": len(rankings) - len(judged),
            "ties": sum(r.has_tie for r in judged),
        },
        "k_max": k_max,
        "alpha": alpha,
        "n_resamples": n_resamples,
        "seed": seed,
        "systems": {},
    }
    if not judged:
        return summary
    _, systems = _judged(judged)
    if not 1 <= k_max <= len(systems):
        raise ValueError(f"k_max must be in 1..{len(systems)} (the number of systems), got {k_max}")
    stats: list[tuple[str, StatFn]] = [(f"win@{k}", partial(win_at_k, k=k)) for k in range(1, k_max + 1)]
    stats.append(("mean_rank", mean_rank))
    per_system: dict[str, dict] = {s: {} for s in systems}
    for name, fn in stats:
        point = fn(judged)
        ci = bootstrap_ci(judged, fn, n_resamples=n_resamples, alpha=alpha, seed=seed)
        for s in systems:
            per_system[s][name] = point[s]
            per_system[s][f"{name}_ci"] = list(ci[s])
    summary["systems"] = per_system
    return summary


def to_markdown(summary: Mapping) -> str:
    """Render :func:`summarise` output as a Markdown table, best mean rank first, counts below."""
    counts = summary["counts"]
    level = round(100 * (1 - summary["alpha"]))
    footer = (
        f"Judge(s): {', '.join(summary['judges']) or '-'}. Posts: {counts['posts']}, judged: "
        f"{counts['judged']}, failed: {counts['failed']} (excluded, never counted as wins), with ties: "
        f"{counts['ties']} (tied systems share the rank). [{level}% bootstrap CI over posts, "
        f"{summary['n_resamples']} resamples, seed {summary['seed']}]"
    )
    systems = summary["systems"]
    if not systems:
        return f"No successful judgements.\n\n{footer}\n"
    ks = range(1, summary["k_max"] + 1)
    header = ["System", *(f"Win@{k}" for k in ks), "Mean rank"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name in sorted(systems, key=lambda s: (systems[s]["mean_rank"], s)):
        row = systems[name]
        cells = [name]
        for k in ks:
            lo, hi = row[f"win@{k}_ci"]
            cells.append(f"{100 * row[f'win@{k}']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")
        lo, hi = row["mean_rank_ci"]
        cells.append(f"{row['mean_rank']:.2f} [{lo:.2f}, {hi:.2f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{footer}\n"
