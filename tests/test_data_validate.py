"""Each kind of bad data gives its own clear problem, with line and field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from empathy_ray.data.errors import DataError, Problem
from empathy_ray.data.validate import check_file, check_pairs_file, check_posts_file

FIXTURES = Path(__file__).parent / "fixtures"
POSTS = [
    json.loads(line) for line in (FIXTURES / "posts_good.jsonl").read_text(encoding="utf-8").splitlines()
]
PAIRS = [
    json.loads(line) for line in (FIXTURES / "pairs_good.jsonl").read_text(encoding="utf-8").splitlines()
]


def write(tmp_path: Path, rows: list[Any], name: str = "data.jsonl") -> Path:
    """Rows are dicts (dumped as JSON) or raw strings (written as they are)."""
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def found(path: Path, kind: str | None = None) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.field, p.message) for p in check_file(str(path), kind).problems]


def post(**changes: Any) -> dict[str, Any]:
    row = copy.deepcopy(POSTS[0])
    row.update(changes)
    return row


def post_answer(**changes: Any) -> dict[str, Any]:
    row = post()
    row["answers"][0].update(changes)
    return row


def test_good_fixtures_have_no_problems():
    assert check_posts_file(str(FIXTURES / "posts_good.jsonl")) == []
    assert check_pairs_file(str(FIXTURES / "pairs_good.jsonl")) == []
    assert check_file(str(FIXTURES / "pairs_good.jsonl")).kind == "pairs"


def test_problem_format():
    assert (
        str(Problem("a.jsonl", 3, "answers[0].rank", "must be >= 1"))
        == "a.jsonl:3: answers[0].rank: must be >= 1"
    )
    assert str(Problem("a.jsonl", None, "file", "file is empty")) == "a.jsonl: file: file is empty"


def test_broken_json_line_does_not_hide_later_lines(tmp_path):
    path = write(tmp_path, [POSTS[0], '{"id": "x", "topic": ', post(id="y", rank="1", answers=[])])
    assert found(path) == [
        (2, "json", "invalid JSON at column 22: Expecting value; each line must be one JSON object"),
        (
            3,
            "rank",
            "unknown field; expected one of: id, topic, subtopic, question, description, crisis, split, keywords, answers",
        ),
        (3, "answers", "must not be empty"),
    ]


def test_line_that_is_not_an_object(tmp_path):
    assert found(write(tmp_path, [POSTS[0], "[1, 2]"])) == [(2, "row", "expected a JSON object, got a list")]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (post(answers="很好"), "answers", "must be a list, got a string"),
        (post_answer(rank="1"), "answers[0].rank", "must be an integer, got a string"),
        (post_answer(rank=True), "answers[0].rank", "must be an integer, got a boolean"),
        (post(crisis="no"), "crisis", "must be true or false, got a string"),
        (post(keywords="隐私"), "keywords", "must be a list, got a string"),
        (post(keywords=["隐私", 3]), "keywords[1]", "must be a non-empty string, got 3"),
        (post(id=7), "id", "must be a string, got an integer"),
        (post(answers=[["text"]]), "answers[0]", "expected a JSON object, got a list"),
    ],
)
def test_wrong_types(tmp_path, row, field, message):
    assert found(write(tmp_path, [row])) == [(1, field, message)]


def test_missing_required_field_and_null(tmp_path):
    row = post(question=None)
    del row["description"]
    assert found(write(tmp_path, [row])) == [
        (1, "question", "must not be null"),
        (1, "description", "missing required field"),
    ]


def test_empty_string_field(tmp_path):
    assert found(write(tmp_path, [post(description="  \n")])) == [(1, "description", "must not be empty")]


def test_empty_answers_list(tmp_path):
    assert found(write(tmp_path, [post(answers=[])])) == [(1, "answers", "must not be empty")]


def test_duplicate_id(tmp_path):
    path = write(tmp_path, [POSTS[0], POSTS[1], post()])
    assert found(path) == [(3, "id", "id 'fx-1' is already used on line 1; ids must be unique")]


def test_chosen_equal_to_rejected(tmp_path):
    row = dict(PAIRS[0], rejected=PAIRS[0]["chosen"] + " ")
    assert found(write(tmp_path, [row])) == [
        (1, "rejected", "same text as 'chosen'; a pair needs two different replies")
    ]


def test_unknown_reason_suggests_the_closest(tmp_path):
    rows = [dict(PAIRS[0], reason="dismisive"), dict(PAIRS[1], reason="rude")]
    assert found(write(tmp_path, rows)) == [
        (1, "reason", "unknown reason 'dismisive'; did you mean 'dismissive'?"),
        (
            2,
            "reason",
            "unknown reason 'rude'; expected one of: dismissive, generic, lecturing, off_topic, mismatched, unsafe",
        ),
    ]


COE = {"L1": "a", "L2": "b", "L3": "c", "L4": "d"}


@pytest.mark.parametrize(
    ("coe", "field", "message"),
    [
        ({k: v for k, v in COE.items() if k != "L3"}, "answers[0].coe.L3", "missing required field"),
        ({**COE, "L2": " "}, "answers[0].coe.L2", "must not be empty"),
        ({**COE, "L5": "e"}, "answers[0].coe.L5", "unknown field; expected one of: L1, L2, L3, L4"),
        ({**COE, "L4": "<L4>d</L4>"}, "answers[0].coe.L4", "contains CoE tags; store the layer text only"),
        ({**COE, "L1": ["a"]}, "answers[0].coe.L1", "must be a string, got a list"),
        ("L1 a", "answers[0].coe", "must be an object, got a string"),
    ],
)
def test_malformed_coe_annotation(tmp_path, coe, field, message):
    assert found(write(tmp_path, [post_answer(coe=coe)])) == [(1, field, message)]


def test_unknown_keys_are_named_with_a_suggestion(tmp_path):
    row = post(anwsers=[], colour="red")
    row["answers"][0]["ranking"] = 1
    assert found(write(tmp_path, [row])) == [
        (1, "anwsers", "unknown field; did you mean 'answers'?"),
        (
            1,
            "colour",
            "unknown field; expected one of: id, topic, subtopic, question, description, crisis, split, keywords, answers",
        ),
        (1, "answers[0].ranking", "unknown field; did you mean 'rank'?"),
    ]


def test_not_utf8_names_the_byte_offset(tmp_path):
    good = json.dumps(POSTS[1], ensure_ascii=False).encode()
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(good + b"\n" + b'{"id": "' + "坏".encode("gbk") + b'"}\n')
    offset = len(good) + 1 + len(b'{"id": "')
    assert found(path) == [
        (
            2,
            "encoding",
            f"not valid UTF-8 at byte offset {offset} (byte 0xbb); re-save the file as UTF-8 (Chinese text is often saved as GBK)",
        )
    ]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    assert found(path) == [(None, "file", "file is empty; expected one JSON object per line")]


def test_utf8_bom_is_accepted_and_utf16_is_reported(tmp_path):
    text = json.dumps(POSTS[0], ensure_ascii=False) + "\n"
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert found(bom) == []
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text(text, encoding="utf-16")
    assert found(utf16) == [(None, "encoding", "file is UTF-16 encoded; re-save it as UTF-8")]


def test_rank_below_one(tmp_path):
    assert found(write(tmp_path, [post_answer(rank=0)])) == [
        (1, "answers[0].rank", "must be >= 1 (1 = best), got 0")
    ]


def test_answer_text_with_coe_tags(tmp_path):
    row = post_answer(text="<answer>我理解你</answer>")
    assert found(write(tmp_path, [row])) == [
        (
            1,
            "answers[0].text",
            "contains CoE tags (<L1>, <answer>, ...); store the reply text only; put the reasoning in 'coe'",
        )
    ]


def test_pair_replies_with_coe_tags(tmp_path):
    row = dict(PAIRS[0], chosen="<empathy_think><L1>x</L1></empathy_think>好")
    assert [f for _, f, _ in found(write(tmp_path, [row]))] == ["chosen"]


def test_unknown_source_and_bad_strategy_span(tmp_path):
    row = post_answer(
        source="counselor",
        strategies=[
            {"start": 0, "end": 3, "type": "Information"},
            {"start": 5, "end": 999, "type": "Others"},
        ],
    )
    n = len(row["answers"][0]["text"])
    assert found(write(tmp_path, [row])) == [
        (1, "answers[0].source", "unknown source 'counselor'; did you mean 'counsellor'?"),
        (1, "answers[0].strategies[1]", f"span [5, 999) does not fit in the answer text ({n} characters)"),
    ]


def test_file_mixing_posts_and_pairs(tmp_path):
    path = write(tmp_path, [POSTS[0], PAIRS[0]])
    assert found(path) == [
        (
            None,
            "file",
            "file mixes posts (line 1 has 'answers') and preference pairs (line 2 has 'chosen'); keep them in separate files",
        )
    ]


def test_wrong_kind_for_a_typed_check(tmp_path):
    path = write(tmp_path, PAIRS)
    assert [str(p) for p in check_posts_file(str(path))] == [
        f"{path}: file: expected posts but this file holds preference pairs"
    ]


def test_kind_cannot_be_told(tmp_path):
    assert found(write(tmp_path, [{"id": "x"}])) == [
        (
            None,
            "file",
            "cannot tell what this file holds: no row has 'answers' (posts) or 'chosen' (preference pairs)",
        )
    ]


def test_missing_file(tmp_path):
    assert found(tmp_path / "nope.jsonl") == [(None, "file", "file not found")]


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    ((line, field, message),) = found(path)
    assert (line, field) == (None, "file") and message.startswith("not a readable Parquet file: ")


def test_parquet_with_wrong_schema_is_reported_once(tmp_path):
    path = tmp_path / "wrong.parquet"
    table = pa.table(
        {"id": ["a", "b"], "question": ["q", "q"], "answers": [["x"], ["y"]], "anwser_count": [1, 1]}
    )
    pq.write_table(table, path)
    assert found(path) == [
        (None, "topic", "Parquet schema lacks the required column 'topic'"),
        (None, "subtopic", "Parquet schema lacks the required column 'subtopic'"),
        (None, "description", "Parquet schema lacks the required column 'description'"),
        (
            None,
            "anwser_count",
            "unknown Parquet column; expected one of: id, topic, subtopic, question, description, crisis, split, keywords, answers",
        ),
    ]


def test_parquet_rows_are_checked_by_row_number(tmp_path):
    path = tmp_path / "pairs.parquet"
    rows = [PAIRS[0], dict(PAIRS[1], reason="bad")]
    pq.write_table(pa.Table.from_pylist(rows), path)
    reasons = "dismissive, generic, lecturing, off_topic, mismatched, unsafe"
    assert found(path) == [(2, "reason", f"unknown reason 'bad'; expected one of: {reasons}")]


def test_data_error_names_file_line_and_field():
    problems = [Problem("x.jsonl", n, "id", "must not be empty") for n in range(1, 14)]
    error = DataError(problems)
    assert error.problems == problems
    lines = str(error).splitlines()
    assert lines[0] == "x.jsonl:1: id: must not be empty"
    assert lines[-1] == "... and 3 more problems" and len(lines) == 11
