"""Read and write posts and preference pairs as JSONL or Parquet (chosen by the file suffix).

Loaders check the whole file first and raise one DataError listing every problem. Writers check the
records too, so an invalid file is never produced (and nothing a Parquet struct cannot hold, like an
extra CoE key, is silently dropped), then write atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from empathy_ray.data.errors import DataError
from empathy_ray.data.records import Post, PreferencePair
from empathy_ray.data.rows import is_parquet
from empathy_ray.data.validate import check_file, check_rows
from empathy_ray.domain.coe import LAYERS
from empathy_ray.domain.files import atomic_write, atomic_write_text

PathLike = str | os.PathLike[str]


def parquet_schema(kind: str) -> Any:
    """The pyarrow schema of a "posts" or "pairs" file; nested so that answers (with CoE and strategy
    spans) round-trip losslessly."""
    import pyarrow as pa

    coe = pa.struct([(name, pa.string()) for name in LAYERS])
    span = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("type", pa.string())])
    answer = pa.struct(
        [
            ("text", pa.string()),
            ("coe", coe),
            ("rank", pa.int32()),
            ("source", pa.string()),
            ("strategies", pa.list_(span)),
        ]
    )
    text_fields = ["id", "topic", "subtopic", "question", "description"]
    posts = pa.schema(
        [(name, pa.string()) for name in text_fields]
        + [("crisis", pa.bool_()), ("keywords", pa.list_(pa.string())), ("answers", pa.list_(answer))]
        + [("split", pa.string())]
    )
    pair_fields = ("id", "post_id", "post", "chosen", "rejected", "reason", "split")
    pairs = pa.schema([(name, pa.string()) for name in pair_fields])
    return {"posts": posts, "pairs": pairs}[kind]


def _read(path: PathLike, kind: str) -> list[dict[str, Any]]:
    report = check_file(str(path), kind)
    if report.problems:
        raise DataError(report.problems)
    return report.rows


def read_posts(path: PathLike) -> list[Post]:
    return [Post.from_dict(row) for row in _read(path, "posts")]


def read_pairs(path: PathLike) -> list[PreferencePair]:
    return [PreferencePair.from_dict(row) for row in _read(path, "pairs")]


def _write(path: PathLike, rows: list[dict[str, Any]], kind: str) -> None:
    problems = check_rows(enumerate(rows, 1), kind, str(path))
    if problems:
        raise DataError(problems)
    if not is_parquet(path):
        atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=parquet_schema(kind))
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)


def write_posts(path: PathLike, posts: Iterable[Post]) -> None:
    """Write `.parquet` or (any other suffix) JSONL; raises DataError before touching `path`."""
    _write(path, [p.to_dict() for p in posts], "posts")


def write_pairs(path: PathLike, pairs: Iterable[PreferencePair]) -> None:
    _write(path, [p.to_dict() for p in pairs], "pairs")
