"""The console's own line formats (runtime/console.py, pipeline/commands.py), as the tests allow them.

An allowlist: a captured console passes only when every line is one of these, so any library output
that leaks onto it (a Ray prefix, a vLLM banner, a warning) fails the test whatever it looks like.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers import REPO

_STAGE = r"\[(sft|rm|rl|eval|serve)\] "
FORMATS = [
    _STAGE + r"(started|resuming from its last checkpoint|skipped: its output matches its config)",
    _STAGE + r"done in \d+\.\d s: .+",
    _STAGE + r"ready: \S+ at http\S+",
    _STAGE + r"warning: .+",
    _STAGE + r"FAILED after \d+\.\d s in the \w+ role: \w+: .*",
    _STAGE + r"cause: [\w.]+: .+",
    _STAGE + r"(last lines of|log:) /\S+\.log:?",
    _STAGE + r"  \| .*",
    r"\[serve\] (normal|crisis) message: risk \w+, path \w+, CoE valid (True|False|None)",
    r"\[serve\]   (user |reply): .*",
    r"\[serve\]          .*",
    r"\[serve\] (serving \S+ at http\S+ until Ctrl-C \(local Ray\)|the app stays up on the cluster; .+)",
    r"",
    r"run folder: /\S+",
    r"SFT : loss .+",
    r"RM  : held-out pairwise accuracy .+",
    r"GRPO: \d+ steps, held-out reward .+",
    r"eval: \w+ +CoE validity .+",
    r"eval: REGRESSION: \w+ points [\d.]+ of the flagged posts to help, \w+ [\d.]+ .+",
    r"report : /\S+/report\.html",
    r"serve  : http\S+ \((running|stopped)\)",
    r"(sft|rm|rl|eval|serve) *: (failed|running)( in the \w+ role)? .*",
    r"logs   : /\S+/logs \(driver\.log, and one file per role\)",
    r"summary: /\S+/summary\.json  \(stages run now: [\w, ]*; [\d.]+ s\)",
]
_ALLOWED = re.compile("|".join(f"(?:{f})" for f in FORMATS))


def foreign_lines(text: str) -> list[str]:
    """The lines of `text` that are none of the console's formats."""
    return [line for line in text.splitlines() if not _ALLOWED.fullmatch(line)]


def run_cli(ray_address: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`empathy-ray <args>` in its own process joining the test session's Ray; stdout and stderr are
    captured together: the whole console a user would see."""
    import os

    env = {**os.environ, "RAY_ADDRESS": ray_address, "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", "empathy_ray.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
