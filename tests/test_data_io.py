"""JSONL/Parquet IO: lossless round trips, checked loads and writes, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from empathy_ray.data import io
from empathy_ray.data.errors import DataError
from empathy_ray.data.psyqa import convert_psyqa, read_psyqa
from empathy_ray.data.records import Answer, Post
from empathy_ray.domain.files import atomic_dir, atomic_write, atomic_write_text

FIXTURES = Path(__file__).parent / "fixtures"


def all_posts() -> list[Post]:
    """Fixture posts plus converted PsyQA posts, so CoE, ranks and strategy spans all occur."""
    psyqa, _ = convert_psyqa(read_psyqa(FIXTURES / "psyqa_small.json"))
    return io.read_posts(FIXTURES / "posts_good.jsonl") + psyqa


def test_read_posts_fixture():
    posts = io.read_posts(FIXTURES / "posts_good.jsonl")
    assert [p.id for p in posts] == ["fx-1", "fx-2", "fx-3"]
    assert [p.crisis for p in posts] == [False, False, True]
    assert posts[0].best_answer.coe["L3"] == "希望被理解，也想要沟通建议"
    assert posts[0].keywords == ("隐私", "亲子")
    assert posts[1].answers[0] == Answer(posts[1].answers[0].text)


def test_jsonl_parquet_jsonl_round_trip_is_lossless(tmp_path):
    posts = all_posts()
    assert any(a.strategies for p in posts for a in p.answers) and any(
        a.coe for p in posts for a in p.answers
    )
    io.write_posts(tmp_path / "a.jsonl", posts)
    io.write_posts(tmp_path / "b.parquet", io.read_posts(tmp_path / "a.jsonl"))
    back = io.read_posts(tmp_path / "b.parquet")
    assert back == posts
    io.write_posts(tmp_path / "c.jsonl", back)
    assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


def test_parquet_schema_is_nested(tmp_path):
    io.write_posts(tmp_path / "p.parquet", all_posts())
    schema = pq.read_schema(tmp_path / "p.parquet")
    answer = schema.field("answers").type.value_type
    assert pa.types.is_struct(answer)
    assert [answer.field(i).name for i in range(answer.num_fields)] == [
        "text",
        "coe",
        "rank",
        "source",
        "strategies",
    ]
    assert [f.name for f in answer.field("coe").type] == ["L1", "L2", "L3", "L4"]


def test_pairs_round_trip_both_formats(tmp_path):
    pairs = io.read_pairs(FIXTURES / "pairs_good.jsonl")
    assert [p.post_id for p in pairs] == ["fx-2", None]
    io.write_pairs(tmp_path / "p.parquet", pairs)
    assert io.read_pairs(tmp_path / "p.parquet") == pairs
    io.write_pairs(tmp_path / "p.jsonl", io.read_pairs(tmp_path / "p.parquet"))
    assert (tmp_path / "p.jsonl").read_text(encoding="utf-8") == (FIXTURES / "pairs_good.jsonl").read_text(
        encoding="utf-8"
    )


def test_loading_a_bad_file_raises_with_every_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": ""}\n[]\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        io.read_posts(path)
    assert len(info.value.problems) == 7
    assert str(info.value).splitlines()[0] == f"{path}:1: id: must not be empty"
    assert f"{path}:2: row: expected a JSON object, got a list" in str(info.value)


def test_reading_pairs_as_posts_is_refused():
    with pytest.raises(DataError, match="expected posts but this file holds preference pairs"):
        io.read_posts(FIXTURES / "pairs_good.jsonl")


def test_invalid_records_are_never_written(tmp_path):
    post = io.read_posts(FIXTURES / "posts_good.jsonl")[0]
    extra = Answer("好", coe={"L1": "a", "L2": "b", "L3": "c", "L4": "d", "L5": "lost in Parquet"})
    bad = Post(post.id, post.topic, post.subtopic, post.question, post.description, (extra,))
    for name in ("out.jsonl", "out.parquet"):
        with pytest.raises(DataError, match=r"out\.\w+:2: answers\[0\]\.coe\.L5: unknown field"):
            io.write_posts(tmp_path / name, [post, bad])
    assert os.listdir(tmp_path) == []


def test_failing_parquet_write_leaves_nothing(tmp_path, monkeypatch):
    def half_write(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        io.write_posts(tmp_path / "out.parquet", all_posts())
    assert os.listdir(tmp_path) == []


def test_failing_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "posts.jsonl"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("new, half done", encoding="utf-8")
        raise RuntimeError("interrupted")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["posts.jsonl"]


def test_atomic_write_creates_folders_and_readable_files(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "你好")
    assert target.read_text(encoding="utf-8") == "你好"
    assert target.stat().st_mode & 0o777 == 0o644
    assert os.listdir(target.parent) == ["out.txt"]


def test_atomic_dir_replaces_a_folder_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}", encoding="utf-8")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "w.bin").write_bytes(b"1")
        assert not target.exists()
    assert sorted(p.name for p in target.rglob("*")) == ["config.json", "sub", "w.bin"]
    assert target.stat().st_mode & 0o777 == 0o755

    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("half", encoding="utf-8")
        raise RuntimeError("interrupted")
    assert (target / "config.json").read_text(encoding="utf-8") == "{}"
    assert os.listdir(tmp_path) == ["model"]

    with atomic_dir(target) as tmp:
        (tmp / "new.json").write_text("[]", encoding="utf-8")
    assert os.listdir(target) == ["new.json"]
    assert os.listdir(tmp_path) == ["model"]
