"""Problems found in data files, and the error that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file. `line` is the JSONL line or the 1-based Parquet row; None when the
    problem concerns the whole file."""

    path: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


def format_problems(problems: Sequence[Problem], limit: int) -> str:
    """One problem per line, at most `limit` of them, then how many were left out."""
    lines = [str(p) for p in problems[: max(limit, 0)]]
    if len(problems) > len(lines):
        lines.append(f"... and {len(problems) - len(lines)} more problems")
    return "\n".join(lines)


class DataError(ValueError):
    """Raised by loaders and writers; `problems` lists everything that was wrong, not just the first."""

    def __init__(self, problems: Sequence[Problem], limit: int = 10) -> None:
        self.problems = list(problems)
        super().__init__(format_problems(self.problems, limit))
