from __future__ import annotations

import json
import math

import pytest

from empathy_ray.eval.ranking import (
    Ranking,
    bootstrap_ci,
    mean_rank,
    ranks_from_scores,
    summarise,
    to_markdown,
    win_at_k,
)

# Four posts, three systems, one judge. p2 has a tie for first, p4's judgement failed.
#
#          a  b  c
#   p1     1  2  3
#   p2     1  1  3   (a and b share first)
#   p3     2  3  1
#   p4     -- failed --
#
# Only p1..p3 count (3 judgements):
#   Win@1: a = p1,p2 = 2/3   b = p2 = 1/3        c = p3 = 1/3   (sums to 4/3: the tie is shared)
#   Win@2: a = 3/3 = 1       b = p1,p2 = 2/3     c = p3 = 1/3
#   Win@3: everyone 3/3 = 1
#   Mean rank: a = (1+1+2)/3 = 4/3   b = (2+1+3)/3 = 2   c = (3+3+1)/3 = 7/3
TABLE = [
    Ranking("p1", {"a": 1, "b": 2, "c": 3}, "gpt"),
    Ranking("p2", {"a": 1, "b": 1, "c": 3}, "gpt"),
    Ranking("p3", {"a": 2, "b": 3, "c": 1}, "gpt"),
    Ranking.failure("p4", "gpt", error="unparseable judge output"),
]


def test_win_at_k_by_hand():
    assert win_at_k(TABLE, 1) == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 1 / 3})
    assert win_at_k(TABLE, 2) == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 1 / 3})
    assert win_at_k(TABLE, 3) == pytest.approx({"a": 1.0, "b": 1.0, "c": 1.0})


def test_failure_is_neither_win_nor_loss():
    # Dropping the failure changes nothing: it never enters numerator or denominator.
    assert win_at_k(TABLE, 1) == win_at_k(TABLE[:3], 1)
    assert mean_rank(TABLE) == mean_rank(TABLE[:3])


def test_mean_rank_by_hand():
    assert mean_rank(TABLE) == pytest.approx({"a": 4 / 3, "b": 2.0, "c": 7 / 3})


def test_ranks_from_scores_competition_ranking():
    assert ranks_from_scores({"a": 9.0, "b": 7.0, "c": 7.0, "d": 5.0}) == {"a": 1, "b": 2, "c": 2, "d": 4}
    assert ranks_from_scores({"a": 0.5, "b": 0.5}) == {"a": 1, "b": 1}
    assert ranks_from_scores({"x": -1, "y": 3}) == {"x": 2, "y": 1}
    with pytest.raises(ValueError, match="'b' must be a number"):
        ranks_from_scores({"a": 1.0, "b": math.nan})
    with pytest.raises(ValueError, match="empty"):
        ranks_from_scores({})


def test_ranking_validation():
    with pytest.raises(ValueError, match="not competition ranks.*expected"):
        Ranking("p1", {"a": 1, "b": 1, "c": 2}, "gpt")  # dense ranks: c should be 3
    with pytest.raises(ValueError, match="rank of 'b' must be an int >= 1"):
        Ranking("p1", {"a": 1, "b": 0}, "gpt")
    with pytest.raises(ValueError, match="failed judgement carries no ranks"):
        Ranking("p1", {"a": 1}, "gpt", failed=True)
    with pytest.raises(ValueError, match="no ranks"):
        Ranking("p1", {}, "gpt")
    with pytest.raises(ValueError, match="non-empty"):
        Ranking("p1", {"a": 1}, "")


def test_systems_must_match_across_judgements():
    rankings = [Ranking("p1", {"a": 1, "b": 2}, "gpt"), Ranking("p2", {"a": 1, "c": 2}, "gpt")]
    with pytest.raises(ValueError, match="post 'p2'.*every judgement must rank the same systems"):
        win_at_k(rankings, 1)


def test_all_failed_raises_for_stats():
    with pytest.raises(ValueError, match="no successful judgements"):
        mean_rank([Ranking.failure("p1", "gpt")])
    with pytest.raises(ValueError, match="k must be >= 1"):
        win_at_k(TABLE, 0)


def test_bootstrap_degenerate_when_every_post_agrees():
    same = [Ranking(f"p{i}", {"a": 1, "b": 2}, "gpt") for i in range(5)]
    ci = bootstrap_ci(same, mean_rank, n_resamples=50)
    assert ci == {"a": (1.0, 1.0), "b": (2.0, 2.0)}


def test_bootstrap_contains_point_and_is_deterministic():
    point = win_at_k(TABLE, 1)
    ci = bootstrap_ci(TABLE, lambda rs: win_at_k(rs, 1), n_resamples=500, seed=3)
    for system, (lo, hi) in ci.items():
        assert 0.0 <= lo <= point[system] <= hi <= 1.0
    # With 3 posts the shares can only be 0, 1/3, 2/3, 1 and the interval is wide, not a point.
    assert ci["a"][0] < ci["a"][1]
    assert bootstrap_ci(TABLE, lambda rs: win_at_k(rs, 1), n_resamples=500, seed=3) == ci


def test_bootstrap_resamples_whole_posts_and_skips_failures():
    # Two judges per post: their judgements must always be drawn together.
    rankings = [
        Ranking(post, {"a": ra, "b": 3 - ra}, judge)
        for post, ra in [("p1", 1), ("p2", 2), ("p3", 1)]
        for judge in ("gpt", "human")
    ] + [Ranking.failure("p4", "gpt")]
    seen: list[list[Ranking]] = []

    def spy(rs):
        seen.append(list(rs))
        return mean_rank(rs)

    bootstrap_ci(rankings, spy, n_resamples=20)
    assert len(seen) == 20
    for resample in seen:
        assert len(resample) == 6  # 3 judged posts drawn, 2 judgements each
        assert not any(r.failed for r in resample)
        pairs = [resample[i : i + 2] for i in range(0, 6, 2)]
        assert all(x.post_id == y.post_id and {x.judge, y.judge} == {"gpt", "human"} for x, y in pairs)


def test_summarise_counts_values_and_json_round_trip():
    summary = summarise(TABLE, k_max=2, n_resamples=200, seed=1)
    assert summary["judges"] == ["gpt"]
    assert summary["counts"] == {"posts": 4, "judged": 3, "failed": 1, "ties": 1}
    a = summary["systems"]["a"]
    assert a["win@1"] == pytest.approx(2 / 3)
    assert a["win@2"] == pytest.approx(1.0)
    assert a["mean_rank"] == pytest.approx(4 / 3)
    assert set(a) == {"win@1", "win@1_ci", "win@2", "win@2_ci", "mean_rank", "mean_rank_ci"}
    lo, hi = summary["systems"]["c"]["mean_rank_ci"]
    assert lo <= 7 / 3 <= hi
    assert json.loads(json.dumps(summary)) == summary


def test_summarise_rejects_bad_k_and_duplicate_judgements():
    with pytest.raises(ValueError, match=r"k_max must be in 1\.\.3"):
        summarise(TABLE, k_max=4)
    retried = [*TABLE, Ranking("p4", {"a": 1, "b": 2, "c": 3}, "gpt")]
    with pytest.raises(ValueError, match="post 'p4' has two judgements by judge 'gpt'"):
        summarise(retried, k_max=1)


def test_to_markdown_table():
    text = to_markdown(summarise(TABLE, k_max=2, n_resamples=100))
    lines = text.splitlines()
    assert lines[0] == "| System | Win@1 | Win@2 | Mean rank |"
    # Rows sorted by mean rank: a (1.33), b (2.00), c (2.33).
    assert [line.split("|")[1].strip() for line in lines[2:5]] == ["a", "b", "c"]
    assert lines[2].startswith("| a | 66.7% [") and "| 1.33 [" in lines[2]
    assert "failed: 1" in text and "with ties: 1" in text and "Judge(s): gpt" in text
    assert "95% bootstrap CI" in text


def test_all_failed_summary_still_reports_counts():
    summary = summarise([Ranking.failure("p1", "gpt"), Ranking.failure("p2", "gpt")], k_max=1)
    assert summary["systems"] == {}
    assert summary["counts"] == {"posts": 2, "judged": 0, "failed": 2, "ties": 0}
    assert to_markdown(summary).startswith("No successful judgements.")
