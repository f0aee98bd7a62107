"""The console: the pipeline's story in a few lines of our own formats, and live progress bars.

Every line starts with the stage in brackets (or is one of the summary's lines, pipeline/commands.py):

  [rl] started
  [rl] done in 41.3 s: 3 steps, reward 0.212 -> 0.348, KL 0.0011
  [rl] FAILED after 6.0 s in the rollout role: ValueError: ...
  [rl]   | <the last lines of the role's log file>
  [rl] warning: <something to act on, said once>

Progress bars (tqdm) are drawn only on a terminal; a captured console gets the lines alone. Where
the lines go is set once per command (`use`): the terminal the command started with, while the
process's own stdout and stderr go to the run's log file (runtime/logs.py).
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

_out: TextIO | None = None  # None: sys.stdout at the time of writing
_warned: set[str] = set()
_lock = threading.Lock()


def use(stream: TextIO | None) -> None:
    """Console lines and bars go to `stream` from now on (None: sys.stdout)."""
    global _out
    _out = stream


def stream() -> TextIO:
    return _out if _out is not None else sys.stdout


def line(text: str) -> None:
    with _lock:
        print(text, file=stream(), flush=True)


def stage_line(stage: str, text: str) -> None:
    line(f"[{stage}] {text}")


def warn_once(stage: str, key: str, text: str) -> None:
    """A warning the user should act on, in plain words, shown once per process."""
    if key in _warned:
        return
    _warned.add(key)
    stage_line(stage, f"warning: {text}")


def progress(total: int, desc: str, initial: int = 0, unit: str = "step"):
    """A live bar on the console's terminal; disabled when the console is not one (a pipe, a file)."""
    from tqdm import tqdm

    out = stream()
    tty = hasattr(out, "isatty") and out.isatty()
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        file=out,
        disable=not tty,
        mininterval=0.5,
        leave=False,
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"\s*((?:\w+\.)*\w*(?:Error|Exception)): \S.*")


def plain_lines(text: str) -> list[str]:
    """`text` without terminal colours, as non-empty lines."""
    return [ln.rstrip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]


def first_line(text: str, limit: int = 200) -> str:
    lines = plain_lines(text)
    return lines[0][:limit] if lines else ""


def failure(
    stage: str, role: str, error: BaseException, wall_s: float, log: Path, log_tail: list[str]
) -> None:
    """What a failed stage says: where (stage, role), what (the exception, and the error it carries
    from a remote process when Ray wrapped one), and the log to read."""
    lines = plain_lines(str(error))
    first = lines[0][:200] if lines else ""
    stage_line(stage, f"FAILED after {wall_s:.1f} s in the {role} role: {type(error).__name__}: {first}")
    causes = [ln.strip() for ln in lines[1:] if _RAISED.fullmatch(ln)]
    if causes:
        stage_line(stage, f"cause: {causes[-1][:300]}")
    if log_tail:
        stage_line(stage, f"last lines of {log}:")
        for text in log_tail:
            stage_line(stage, f"  | {_ANSI.sub('', text)[:200]}")
    else:
        stage_line(stage, f"log: {log}")


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "?"


def headline(stage: str, record: dict[str, Any]) -> str:
    """A finished stage's figures in a few words (its summary.json record holds them all)."""
    if stage == "sft":
        return (
            f"loss {_fmt(record.get('loss_first'), '.3f')} -> {_fmt(record.get('loss_last'), '.3f')}, "
            f"CoE validity {_fmt(record.get('coe_validity'), '.2f')}"
        )
    if stage == "rm":
        return f"pairwise accuracy {_fmt(record.get('pairwise_accuracy'), '.3f')} on {record.get('eval_pairs')} pairs"
    if stage == "rl":
        return (
            f"{record.get('steps')} steps, reward {_fmt(record.get('reward_first'), '.3f')} -> "
            f"{_fmt(record.get('reward_last'), '.3f')}, KL {_fmt(record.get('kl_last') or 0.0, '.4f')}"
        )
    if stage == "eval":
        return f"{record.get('posts')} posts, {len(record.get('systems', {}))} systems"
    if stage == "serve":
        return f"{record.get('url')} ({'running' if record.get('running') else 'stopped'})"
    return ""
