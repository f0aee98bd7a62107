"""The small hand-written Empathy-QA samples shipped inside the package (`samples/*.jsonl`).

They feed the demo pipeline and the tests. Several files are merged, so ids are also checked to be
unique across files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from empathy_ray.data.errors import DataError, Problem
from empathy_ray.data.io import read_pairs, read_posts
from empathy_ray.data.records import Post, PreferencePair

SAMPLES_DIR = Path(__file__).parent / "samples"
T = TypeVar("T", Post, PreferencePair)


def sample_files(pattern: str, directory: Path | None = None) -> list[Path]:
    return sorted((directory or SAMPLES_DIR).glob(pattern))


def _load(pattern: str, reader: Callable[[Path], list[T]], directory: Path | None) -> list[T]:
    records: list[T] = []
    first_file: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sample_files(pattern, directory):
        for record in reader(path):
            if record.id in first_file:
                msg = f"id '{record.id}' is already used in {first_file[record.id]}; ids must be unique across sample files"
                problems.append(Problem(str(path), None, "id", msg))
            first_file.setdefault(record.id, path.name)
            records.append(record)
    if problems:
        raise DataError(problems)
    return records


def load_sample_posts(directory: Path | None = None) -> list[Post]:
    """All `posts-*.jsonl` samples, files in name order."""
    return _load("posts-*.jsonl", read_posts, directory)


def load_sample_pairs(directory: Path | None = None) -> list[PreferencePair]:
    """All `preferences-*.jsonl` samples, files in name order."""
    return _load("preferences-*.jsonl", read_pairs, directory)
