"""Raw rows of a JSONL or Parquet file, each with the line (row) it came from.

Reading is separated from checking so that every problem can name its line, and so that a broken
line does not hide the problems on the lines after it.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empathy_ray.data.errors import Problem


@dataclass
class RawFile:
    path: str
    rows: list[tuple[int, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    columns: list[str] | None = None  # Parquet only: the top-level column names


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".parquet"


def utf8_problem(path: str, line: int | None, offset: int, byte: int) -> Problem:
    return Problem(
        path,
        line,
        "encoding",
        f"not valid UTF-8 at byte offset {offset} (byte 0x{byte:02x}); re-save the file as UTF-8 "
        "(Chinese text is often saved as GBK)",
    )


def read_rows(path: str | Path) -> RawFile:
    """Rows of a `.parquet` file, or of any other file read as JSONL; never raises on bad content."""
    raw = RawFile(str(path))
    if not Path(path).is_file():
        raw.problems.append(Problem(raw.path, None, "file", "file not found"))
    elif is_parquet(path):
        _read_parquet(raw)
    else:
        _read_jsonl(raw)
    return raw


def _read_jsonl(raw: RawFile) -> None:
    data = Path(raw.path).read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raw.problems.append(
            Problem(raw.path, None, "encoding", "file is UTF-16 encoded; re-save it as UTF-8")
        )
        return
    offset = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # a UTF-8 BOM is harmless
    if not data[offset:].strip():
        raw.problems.append(
            Problem(raw.path, None, "file", "file is empty; expected one JSON object per line")
        )
        return
    for line_no, line in enumerate(data[offset:].split(b"\n"), 1):
        start, offset = offset, offset + len(line) + 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raw.problems.append(utf8_problem(raw.path, line_no, start + e.start, line[e.start]))
            continue
        if not text.strip():
            continue
        try:
            raw.rows.append((line_no, json.loads(text)))
        except json.JSONDecodeError as e:
            raw.problems.append(
                Problem(
                    raw.path,
                    line_no,
                    "json",
                    f"invalid JSON at column {e.colno}: {e.msg}; each line must be one JSON object",
                )
            )


def _read_parquet(raw: RawFile) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(raw.path)
    except (pa.ArrowException, OSError) as e:
        raw.problems.append(Problem(raw.path, None, "file", f"not a readable Parquet file: {e}"))
        return
    raw.columns = list(table.column_names)
    if table.num_rows == 0:
        raw.problems.append(Problem(raw.path, None, "file", "Parquet file has no rows"))
    raw.rows = list(enumerate(table.to_pylist(), 1))
