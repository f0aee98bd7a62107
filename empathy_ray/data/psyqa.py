"""Convert PsyQA (Sun et al., 2021) records into Empathy-QA posts.

A PsyQA record has `question`, `description`, `keywords` (one comma-separated string) and `answers`,
each `{answer_text, labels_sequence: [{start, end, type}], has_label}`. The strategy spans are kept
on the answer (`strategies`), shifted to match the stripped answer text.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from empathy_ray.data.errors import DataError, Problem
from empathy_ray.data.records import Answer, Post
from empathy_ray.data.rows import read_rows, utf8_problem

DEFAULT_TOPIC = "未分类"
_KEYWORD_SPLIT = re.compile(r"[,，、;；]")


@dataclass
class ConvertStats:
    records: int = 0
    posts: int = 0
    answers: int = 0
    short_answers: int = 0  # dropped: empty or shorter than min_answer_chars
    posts_without_answers: int = 0  # dropped: every answer was too short or empty
    empty_posts: int = 0  # dropped: empty question or description
    merged_records: int = 0  # same question and description as an earlier record: answers merged
    duplicate_answers: int = 0  # dropped: same text as another answer of the same post
    spans_dropped: int = 0  # strategy spans that were malformed or fell outside the answer text

    def summary(self) -> str:
        counts = [f for f in fields(self) if f.name not in ("records", "posts", "answers", "merged_records")]
        dropped = ", ".join(f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in counts)
        return f"{self.records} PsyQA records -> {self.posts} posts with {self.answers} answers (merged {self.merged_records} repeated records; dropped {dropped})"


def post_id(question: str, description: str) -> str:
    """Stable across runs and machines (unlike hash()), so splits and pairs can refer to it."""
    digest = hashlib.sha256(f"{question}\n{description}".encode()).hexdigest()
    return "psyqa-" + digest[:16]


def read_psyqa(path: str | Path) -> list[tuple[int, Any]]:
    """Numbered records of a JSON list (numbered from 1) or a JSONL file (numbered by line)."""
    path = str(path)
    if not Path(path).is_file():
        raise DataError([Problem(path, None, "file", "file not found")])
    data = Path(path).read_bytes()
    if not data.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"["):
        raw = read_rows(path)
        if raw.problems:
            raise DataError(raw.problems)
        return raw.rows
    try:
        records = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise DataError(
            [utf8_problem(path, data[: e.start].count(b"\n") + 1, e.start, data[e.start])]
        ) from None
    except json.JSONDecodeError as e:
        raise DataError(
            [Problem(path, e.lineno, "json", f"invalid JSON at column {e.colno}: {e.msg}")]
        ) from None
    return list(enumerate(records, 1))


def _keywords(value: Any) -> list[str]:
    parts = _KEYWORD_SPLIT.split(value) if isinstance(value, str) else value or []
    return [k.strip() for k in parts if isinstance(k, str) and k.strip()]


def _spans(labels: Any, lead: int, length: int, stats: ConvertStats) -> tuple[dict[str, Any], ...]:
    spans = []
    for label in labels if isinstance(labels, list) else []:
        start, end, kind = (
            (label.get(k) for k in ("start", "end", "type")) if isinstance(label, dict) else (None,) * 3
        )
        if isinstance(start, int) and isinstance(end, int) and isinstance(kind, str) and kind.strip():
            start, end = max(start - lead, 0), min(end - lead, length)
            if start < end:
                spans.append({"start": start, "end": end, "type": kind.strip()})
                continue
        stats.spans_dropped += 1
    return tuple(spans)


def _answers(
    record: dict[str, Any], path: str, line: int, min_chars: int, stats: ConvertStats
) -> list[Answer]:
    answers: list[Answer] = []
    problems: list[Problem] = []
    raw_answers = record.get("answers")
    if not isinstance(raw_answers, list):
        raise DataError([Problem(path, line, "answers", "must be a list of {answer_text, labels_sequence}")])
    for i, item in enumerate(raw_answers):
        text = item.get("answer_text") if isinstance(item, dict) else None
        if not isinstance(text, str):
            problems.append(Problem(path, line, f"answers[{i}].answer_text", "missing or not a string"))
            continue
        stripped = text.strip()
        if not stripped or len(stripped) < min_chars:
            stats.short_answers += 1
            continue
        lead = len(text) - len(text.lstrip())
        strategies = _spans(item.get("labels_sequence"), lead, len(stripped), stats)
        answers.append(Answer(stripped, source="psyqa", strategies=strategies))
    if problems:
        raise DataError(problems)
    return answers


def convert_psyqa(
    records: Iterable[tuple[int, Any]], min_answer_chars: int = 0, path: str = "<psyqa>"
) -> tuple[list[Post], ConvertStats]:
    """Posts from numbered PsyQA records (as `read_psyqa` returns them), in first-seen order.

    Malformed records raise one DataError listing all of them. Answers under `min_answer_chars`
    characters are dropped (the PsyQA paper uses 100); records repeating a post have their answers
    merged into it; posts left without answers are dropped and counted."""
    stats, problems = ConvertStats(), []
    drafts: dict[str, tuple[dict[str, Any], list[Answer]]] = {}
    for line, record in records:
        stats.records += 1
        question = record.get("question") if isinstance(record, dict) else None
        description = record.get("description") if isinstance(record, dict) else None
        if not isinstance(question, str) or not isinstance(description, str):
            problems.append(
                Problem(path, line, "question", "each record needs string 'question' and 'description'")
            )
            continue
        try:
            answers = _answers(record, path, line, min_answer_chars, stats)
        except DataError as e:
            problems += e.problems
            continue
        question, description = question.strip(), description.strip()
        if not question or not description:
            stats.empty_posts += 1
            continue
        pid = post_id(question, description)
        if pid in drafts:
            stats.merged_records += 1
        record = {**record, "question": question, "description": description}
        kept = drafts.setdefault(pid, (record, []))[1]
        for answer in answers:
            if any(answer.text == other.text for other in kept):
                stats.duplicate_answers += 1
            else:
                kept.append(answer)
    if problems:
        raise DataError(problems)
    posts = [_post(pid, record, answers) for pid, (record, answers) in drafts.items() if answers]
    stats.posts_without_answers = len(drafts) - len(posts)
    stats.posts, stats.answers = len(posts), sum(len(p.answers) for p in posts)
    return posts, stats


def _post(pid: str, record: dict[str, Any], answers: list[Answer]) -> Post:
    keywords = _keywords(record.get("keywords"))
    topic = keywords[0] if keywords else DEFAULT_TOPIC
    subtopic = keywords[1] if len(keywords) > 1 else ""
    question, description = record["question"], record["description"]
    return Post(pid, topic, subtopic, question, description, tuple(answers), keywords=tuple(keywords))
