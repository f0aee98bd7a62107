from __future__ import annotations

import json
from collections import Counter

import pytest

from empathy_ray.config import DataConfig
from empathy_ray.data import dataset
from empathy_ray.data.io import write_pairs, write_posts
from empathy_ray.data.records import Answer, Post, PreferencePair
from empathy_ray.data.splits import split, split_of
from empathy_ray.data.validate import check_posts_file


def test_assignment_is_fixed_across_runs_and_machines():
    # sha256-based: these must never change, or every checked-in split would move.
    expected = {
        "post-0000": "train",
        "post-0006": "val",
        "post-0009": "test",
        "post-0014": "val",
        "post-0017": "test",
        "fx-2": "val",
        "fx-3": "train",
    }
    assert {i: split_of(i) for i in expected} == expected


def test_seed_changes_the_assignment():
    assert split_of("post-0003", seed=0) == "train"
    assert split_of("post-0003", seed=7) == "test"


def test_proportions_on_1000_ids():
    counts = Counter(split_of(f"id-{n}") for n in range(1000))
    assert counts == {"train": 801, "val": 96, "test": 103}
    counts = Counter(split_of(f"id-{n}", fractions=(0.5, 0.25, 0.25), seed=3) for n in range(1000))
    assert 450 <= counts["train"] <= 550 and 200 <= counts["val"] <= 300 and 200 <= counts["test"] <= 300


def test_degenerate_fractions():
    assert {split_of(f"id-{n}", fractions=(1.0, 0.0, 0.0)) for n in range(200)} == {"train"}
    assert {split_of(f"id-{n}", fractions=(0.0, 0.0, 1.0)) for n in range(200)} == {"test"}


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)])
def test_bad_fractions_are_rejected(fractions):
    with pytest.raises(ValueError, match="summing to 1"):
        split_of("x", fractions=fractions)


def test_split_keeps_order_and_groups_pairs_with_their_post():
    pairs = [PreferencePair(f"pair-{n}", "p", "a", "b", "generic", post_id="post-0009") for n in range(20)]
    assert split(pairs) == {"train": [], "val": [], "test": pairs}
    ids = [f"post-{n:04d}" for n in range(40)]
    parts = split(ids, key=lambda s: s)
    assert parts["test"] == ["post-0009", "post-0017", "post-0032"]
    assert sum(len(v) for v in parts.values()) == 40


def _post(post_id: str, split_name: str | None = None) -> Post:
    answer = Answer("谢谢你愿意说出来。", rank=1)
    return Post(post_id, "情绪", "低落", "最近很难受", "说不上来为什么。", (answer,), split=split_name)


def test_a_split_fixed_by_the_data_wins_over_the_hash_and_pairs_follow_it(tmp_path):
    # post-0000 hashes to train; the data holds it out, so it and its pairs go to test
    posts = [_post("post-0000", "test"), _post("post-0009")]
    pairs = [PreferencePair("pr-1", "p", "a", "b", "generic", post_id="post-0000")]
    write_posts(tmp_path / "posts.jsonl", posts)
    write_pairs(tmp_path / "pairs.jsonl", pairs)
    cfg = DataConfig(posts=str(tmp_path / "posts.jsonl"), pairs=str(tmp_path / "pairs.jsonl"))
    loaded = dataset.load_posts(cfg)
    assert [dataset.post_split(p, cfg) for p in loaded] == ["test", "test"]
    assert [dataset.pair_split(q, cfg) for q in dataset.load_pairs(cfg)] == ["test"]
    assert split(posts)["test"] == posts
    assert loaded[0].to_dict()["split"] == "test" and "split" not in loaded[1].to_dict()


def test_an_unknown_fixed_split_is_named_with_its_row(tmp_path):
    path = tmp_path / "posts.jsonl"
    row = _post("post-1").to_dict() | {"split": "heldout"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    problems = check_posts_file(str(path))
    assert [(p.line, p.field) for p in problems] == [(1, "split")]
    assert "train, val, test" in problems[0].message
