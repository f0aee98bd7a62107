"""Check Empathy-QA post files and preference-pair files against the data contract.

Every check collects all problems (file, line, field, what is wrong and how to fix it) instead of
stopping at the first, so one run of `empathy-ray data validate` shows everything to fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from empathy_ray.data.errors import Problem
from empathy_ray.data.records import REASONS, SOURCES
from empathy_ray.data.rows import RawFile, read_rows
from empathy_ray.data.splits import SPLITS
from empathy_ray.domain.coe import LAYERS, has_coe_tags

__all__ = ["Problem", "FileReport", "check_file", "check_posts_file", "check_pairs_file", "check_rows"]

# field -> (type, required, must be non-empty). None counts as absent for optional fields.
_Spec = dict[str, tuple[type, bool, bool]]
POST_FIELDS: _Spec = {
    "id": (str, True, True),
    "topic": (str, True, True),
    "subtopic": (str, True, False),
    "question": (str, True, True),
    "description": (str, True, True),
    "crisis": (bool, False, False),
    "split": (str, False, True),  # a fixed split for this post; absent: by hash of the id
    "keywords": (list, False, False),
    "answers": (list, True, True),
}
ANSWER_FIELDS: _Spec = {
    "text": (str, True, True),
    "coe": (dict, False, False),
    "rank": (int, False, False),
    "source": (str, False, True),
    "strategies": (list, False, False),
}
COE_FIELDS: _Spec = {name: (str, True, True) for name in LAYERS}
SPAN_FIELDS: _Spec = {"start": (int, True, False), "end": (int, True, False), "type": (str, True, True)}
PAIR_FIELDS: _Spec = {
    "id": (str, True, True),
    "post_id": (str, False, True),
    "post": (str, True, True),
    "chosen": (str, True, True),
    "rejected": (str, True, True),
    "reason": (str, True, True),
    "split": (str, False, True),
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}
_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}
_NO_TAGS = "contains CoE tags (<L1>, <answer>, ...); store the reply text only"


def _is_a(value: Any, typ: type) -> bool:
    return isinstance(value, typ) and not (typ is int and isinstance(value, bool))


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)


def _suggest(word: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(known)}"


class _Report:
    def __init__(self, path: str, line: int | None) -> None:
        self.path, self.line, self.problems = path, line, []

    def add(self, field: str, message: str) -> None:
        self.problems.append(Problem(self.path, self.line, field, message))


def _check_object(value: Any, specs: _Spec, where: str, rep: _Report) -> dict[str, Any] | None:
    """Unknown keys, missing keys, types and emptiness; returns the object when it is one."""
    if not isinstance(value, dict):
        rep.add(where or "row", f"expected a JSON object, got {_json_type(value)}")
        return None
    prefix = f"{where}." if where else ""
    for key in value:
        if key not in specs:
            rep.add(f"{prefix}{key}", f"unknown field; {_suggest(str(key), specs)}")
    for name, (typ, required, nonempty) in specs.items():
        v = value.get(name)
        if v is None:
            if required:
                rep.add(prefix + name, "must not be null" if name in value else "missing required field")
        elif not _is_a(v, typ):
            rep.add(prefix + name, f"must be {_TYPE_NAMES[typ]}, got {_json_type(v)}")
        elif nonempty and not (v.strip() if isinstance(v, str) else v):
            rep.add(prefix + name, "must not be empty")
    return value


def _check_answer(value: Any, where: str, rep: _Report) -> None:
    answer = _check_object(value, ANSWER_FIELDS, where, rep)
    if answer is None:
        return
    text, rank, source = answer.get("text"), answer.get("rank"), answer.get("source")
    if isinstance(text, str) and has_coe_tags(text):
        rep.add(f"{where}.text", _NO_TAGS + "; put the reasoning in 'coe'")
    if _is_a(rank, int) and rank < 1:
        rep.add(f"{where}.rank", f"must be >= 1 (1 = best), got {rank}")
    if isinstance(source, str) and source.strip() and source not in SOURCES:
        rep.add(f"{where}.source", f"unknown source '{source}'; {_suggest(source, SOURCES)}")
    coe = answer.get("coe")
    if isinstance(coe, dict) and _check_object(coe, COE_FIELDS, f"{where}.coe", rep) is not None:
        for name in LAYERS:
            if isinstance(coe.get(name), str) and has_coe_tags(coe[name]):
                rep.add(f"{where}.coe.{name}", "contains CoE tags; store the layer text only")
    for j, span in enumerate(answer.get("strategies") or []):
        _check_span(span, f"{where}.strategies[{j}]", text if isinstance(text, str) else "", rep)


def _check_span(value: Any, where: str, text: str, rep: _Report) -> None:
    span = _check_object(value, SPAN_FIELDS, where, rep)
    if span is None or not (_is_a(span.get("start"), int) and _is_a(span.get("end"), int)):
        return
    start, end = span["start"], span["end"]
    if not 0 <= start < end <= len(text):
        rep.add(where, f"span [{start}, {end}) does not fit in the answer text ({len(text)} characters)")


def _check_split(row: dict[str, Any], rep: _Report) -> None:
    split = row.get("split")
    if isinstance(split, str) and split not in SPLITS:
        rep.add(
            "split",
            f"must be one of {', '.join(SPLITS)} (or absent: chosen by hash of the id), got {split!r}",
        )


def check_post(row: Any, path: str, line: int | None) -> list[Problem]:
    rep = _Report(path, line)
    post = _check_object(row, POST_FIELDS, "", rep)
    if post is None:
        return rep.problems
    _check_split(post, rep)
    keywords = post.get("keywords")
    for i, keyword in enumerate(keywords if isinstance(keywords, list) else []):
        if not isinstance(keyword, str) or not keyword.strip():
            rep.add(f"keywords[{i}]", f"must be a non-empty string, got {keyword!r}")
    answers = post.get("answers")
    for i, answer in enumerate(answers if isinstance(answers, list) else []):
        _check_answer(answer, f"answers[{i}]", rep)
    return rep.problems


def check_pair(row: Any, path: str, line: int | None) -> list[Problem]:
    rep = _Report(path, line)
    pair = _check_object(row, PAIR_FIELDS, "", rep)
    if pair is None:
        return rep.problems
    _check_split(pair, rep)
    chosen, rejected, reason = pair.get("chosen"), pair.get("rejected"), pair.get("reason")
    if (
        isinstance(chosen, str)
        and isinstance(rejected, str)
        and chosen.strip()
        and chosen.strip() == rejected.strip()
    ):
        rep.add("rejected", "same text as 'chosen'; a pair needs two different replies")
    if isinstance(reason, str) and reason.strip() and reason not in REASONS:
        rep.add("reason", f"unknown reason '{reason}'; {_suggest(reason, REASONS)}")
    for name, reply in (("chosen", chosen), ("rejected", rejected)):
        if isinstance(reply, str) and has_coe_tags(reply):
            rep.add(name, _NO_TAGS)
    return rep.problems


_CHECKS: dict[str, tuple[Callable[[Any, str, int | None], list[Problem]], str, _Spec]] = {
    "posts": (check_post, "answers", POST_FIELDS),
    "pairs": (check_pair, "chosen", PAIR_FIELDS),
}
_KIND_NAMES = {"posts": "posts", "pairs": "preference pairs"}


def check_rows(rows: Iterable[tuple[int | None, Any]], kind: str, path: str) -> list[Problem]:
    """Check numbered rows of one kind ("posts" or "pairs"), including that ids are unique."""
    check = _CHECKS[kind][0]
    problems: list[Problem] = []
    first_line: dict[str, int | None] = {}
    for line, row in rows:
        problems += check(row, path, line)
        record_id = row.get("id") if isinstance(row, dict) else None
        if not isinstance(record_id, str) or not record_id:
            continue
        if record_id in first_line:
            where = "" if first_line[record_id] is None else f" on line {first_line[record_id]}"
            problems.append(
                Problem(path, line, "id", f"id '{record_id}' is already used{where}; ids must be unique")
            )
        else:
            first_line[record_id] = line
    return problems


@dataclass
class FileReport:
    path: str
    kind: str | None  # "posts", "pairs", or None when it could not be told
    rows: list[dict[str, Any]]
    problems: list[Problem]


def _detect_kind(raw: RawFile) -> tuple[str | None, list[Problem]]:
    """The kind from its marker field ('answers' / 'chosen'); a file holding both is an error."""
    seen: dict[str, str] = {}
    for kind, (_, marker, _) in _CHECKS.items():
        if raw.columns is not None:
            if marker in raw.columns:
                seen[kind] = f"it has a '{marker}' column"
            continue
        line = next((n for n, row in raw.rows if isinstance(row, dict) and marker in row), None)
        if line is not None:
            seen[kind] = f"line {line} has '{marker}'"
    if len(seen) > 1:
        detail = " and ".join(f"{_KIND_NAMES[k]} ({why})" for k, why in seen.items())
        return None, [Problem(raw.path, None, "file", f"file mixes {detail}; keep them in separate files")]
    return next(iter(seen), None), []


def _schema_problems(raw: RawFile, kind: str) -> list[Problem]:
    """Parquet columns are the same for every row, so report a wrong schema once, not per row."""
    specs = _CHECKS[kind][2]
    columns = raw.columns or []
    problems = [
        Problem(raw.path, None, name, f"Parquet schema lacks the required column '{name}'")
        for name, (_, required, _) in specs.items()
        if required and name not in columns
    ]
    problems += [
        Problem(raw.path, None, col, f"unknown Parquet column; {_suggest(col, specs)}")
        for col in columns
        if col not in specs
    ]
    return problems


def check_file(path: str, kind: str | None = None) -> FileReport:
    """Read and check a JSONL or Parquet file; `kind` None means tell posts from pairs by content."""
    raw = read_rows(path)
    report = FileReport(raw.path, kind, [], list(raw.problems))
    if not raw.rows and raw.columns is None:
        return report
    detected, mixed = _detect_kind(raw)
    if mixed:
        report.problems += mixed
        return report
    if kind is not None and detected is not None and detected != kind:
        msg = f"expected {_KIND_NAMES[kind]} but this file holds {_KIND_NAMES[detected]}"
        report.problems.append(Problem(raw.path, None, "file", msg))
        return report
    report.kind = kind or detected
    if report.kind is None:
        msg = "cannot tell what this file holds: no row has 'answers' (posts) or 'chosen' (preference pairs)"
        report.problems.append(Problem(raw.path, None, "file", msg))
        return report
    if raw.columns is not None:
        schema = _schema_problems(raw, report.kind)
        if schema:
            report.problems += schema
            return report
    report.problems += check_rows(raw.rows, report.kind, raw.path)
    report.rows = [row for _, row in raw.rows]
    return report


def check_posts_file(path: str) -> list[Problem]:
    return check_file(path, "posts").problems


def check_pairs_file(path: str) -> list[Problem]:
    return check_file(path, "pairs").problems
