from __future__ import annotations

import json
from pathlib import Path

import pytest

from empathy_ray.data.errors import DataError
from empathy_ray.data.psyqa import ConvertStats, convert_psyqa, post_id, read_psyqa
from empathy_ray.data.validate import check_rows

FIXTURE = Path(__file__).parent / "fixtures" / "psyqa_small.json"
RECORDS = json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_convert_fixture_without_filter():
    posts, stats = convert_psyqa(read_psyqa(FIXTURE))
    assert stats == ConvertStats(
        records=4, posts=3, answers=4, merged_records=1, duplicate_answers=1, spans_dropped=1
    )
    first, second, third = posts
    assert first.id == post_id("转学后交不到朋友", RECORDS[0]["description"]) and first.id.startswith(
        "psyqa-"
    )
    assert (first.topic, first.subtopic, first.keywords) == ("人际", "孤独", ("人际", "孤独"))
    assert (second.topic, second.subtopic) == ("职场", "自我怀疑")  # full-width comma
    assert (third.topic, third.subtopic, third.keywords) == ("未分类", "", ())
    assert [a.source for a in first.answers] == ["psyqa", "psyqa"]
    assert check_rows(enumerate((p.to_dict() for p in posts), 1), "posts", "converted") == []


def test_strategy_spans_follow_the_stripped_text():
    posts, _ = convert_psyqa(read_psyqa(FIXTURE))
    answer = posts[0].answers[0]
    raw = RECORDS[0]["answers"][0]["answer_text"]
    assert answer.text == raw.strip() and raw.startswith("  ")
    # spans shift by the two stripped spaces; the one past the end is clipped, the reversed one dropped
    assert answer.strategies == (
        {"start": 0, "end": 38, "type": "Restatement"},
        {"start": 38, "end": 84, "type": "Approval and Reassurance"},
        {"start": 84, "end": len(answer.text), "type": "Direct Guidance"},
    )
    assert answer.text[0:38] == raw[2:40]
    assert posts[1].answers[0].strategies[0]["type"] == "Interpretation"
    assert posts[0].answers[1].strategies == ()


def test_min_answer_chars_drops_short_answers_and_empty_posts():
    posts, stats = convert_psyqa(read_psyqa(FIXTURE), min_answer_chars=100)
    assert [len(p.answers) for p in posts] == [1, 1]
    assert (stats.short_answers, stats.posts_without_answers, stats.posts, stats.answers) == (2, 1, 2, 2)
    assert "4 PsyQA records -> 2 posts with 2 answers" in stats.summary()


def test_ids_are_stable():
    # sha256 of "标题\n正文": the same on every machine and Python run
    assert post_id("标题", "正文") == "psyqa-7f31287e6d43045a"
    assert post_id("标题", "正文。") != post_id("标题", "正文")


def test_jsonl_input_is_accepted(tmp_path):
    path = tmp_path / "psyqa.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n", encoding="utf-8")
    assert convert_psyqa(read_psyqa(path))[0] == convert_psyqa(read_psyqa(FIXTURE))[0]


def test_empty_question_or_description_is_dropped():
    record = dict(RECORDS[1], description="  ")
    posts, stats = convert_psyqa([(1, record)])
    assert posts == [] and stats.empty_posts == 1


def test_malformed_records_are_all_reported():
    records = [
        (1, ["not", "a", "record"]),
        (2, dict(RECORDS[1], answers="x")),
        (3, dict(RECORDS[1], answers=[{"text": "x"}])),
    ]
    with pytest.raises(DataError) as info:
        convert_psyqa(records, path="in.json")
    assert [str(p) for p in info.value.problems] == [
        "in.json:1: question: each record needs string 'question' and 'description'",
        "in.json:2: answers: must be a list of {answer_text, labels_sequence}",
        "in.json:3: answers[0].answer_text: missing or not a string",
    ]


def test_broken_input_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": "a",\n  "description": }]', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json:2: json: invalid JSON"):
        read_psyqa(broken)
    with pytest.raises(DataError, match="file not found"):
        read_psyqa(tmp_path / "missing.json")
