"""Where library output goes: one log file per role or process kind under `<run>/logs/`.

The console tells the pipeline's story (runtime/console.py); everything Ray, vLLM, DeepSpeed, Ray Train
and Serve print goes to files instead:

  logs/driver.log      this process: our own log lines and the libraries' in the driver
  logs/<role>.log      each actor role (rollout, learner, reward, reference), the Ray Train workers
                       of a stage (sft.log, rm.log) and the generation tasks (generation.log)

The driver decides the file of each process it starts (`role_log`) and hands the path over; the
process sends its stdout and stderr there at start (`redirect_output`), at the file-descriptor level
so that C++ and subprocess output follows. On a multi-node cluster the path is the run folder's on
that node; Ray's own logs stay where Ray keeps them (`ray_logs_hint`). With `tracking.verbose` nothing is
redirected and the output reaches the console as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

LOG_FILE_ENV = "EMPATHY_RAY_LOG_FILE"  # a task's log file, for the tasks whose function takes no path
_run_logs: Path | None = None  # the logs/ folder of the run this driver is running, when redirected


def role_log(role: str) -> str | None:
    """The log file for processes of `role`, or None when output should stay where it is."""
    return str(_run_logs / f"{role}.log") if _run_logs is not None else None


def redirect_output(path: str) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to `path`, appended."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


@contextlib.contextmanager
def driver_output(logs_dir: Path, verbose: bool) -> Iterator[TextIO]:
    """For the length of a command: this process's output to logs/driver.log and the processes it
    starts to their role's file; yields the console (the original stdout). Verbose: no redirection."""
    global _run_logs
    if verbose:
        yield sys.stdout
        return
    logs_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
    logging.captureWarnings(True)  # Python warnings become log records: into the file, not the console
    redirect_output(str(logs_dir / "driver.log"))
    _run_logs = logs_dir
    try:
        yield console
    finally:
        _run_logs = None
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        console.close()


def note_ray_logs(temp_dir: str | None) -> None:
    """Say in the run's logs folder where Ray keeps what is not here (its own daemons, Serve, and the
    processes of other nodes, whose role files are in the run folder on their node)."""
    if _run_logs is None:
        return
    where = Path(temp_dir or "/tmp/ray") / "session_latest" / "logs"
    (_run_logs / "RAY_LOGS.txt").write_text(
        f"Ray's own logs (raylet, GCS, dashboard, Serve) are in {where} on each node of the cluster.\n"
        "On a multi-node cluster, the role log files of processes on other nodes are in this run's\n"
        "logs/ folder on the node that ran them (or in Ray's worker-*.out files there).\n",
        encoding="utf-8",
    )


def tail(path: Path, lines: int = 12) -> list[str]:
    """The last `lines` lines of a log file (empty when it does not exist)."""
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 64_000))
        text = f.read().decode("utf-8", errors="replace")
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()][-lines:]


def failed_role(error: BaseException, default: str) -> str:
    """The role an error came from: the `role` an actor group or job tagged it with; else `default` for
    an error Ray raised (one of the stage's own processes), and the driver for any other."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        role = getattr(e, "role", None)
        if isinstance(role, str):
            return role
        e = e.__cause__ or e.__context__
    return default if type(error).__module__.startswith("ray.") else "driver"


def tag_role(error: BaseException, role: str) -> None:
    """Mark `error` as coming from `role` (for the console's failure report) unless a closer caller did."""
    with contextlib.suppress(AttributeError, TypeError):
        if not isinstance(getattr(error, "role", None), str):
            error.role = role  # type: ignore[attr-defined]
