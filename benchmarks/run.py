"""The benchmark suite: `python benchmarks/run.py --suite cpu` (see benchmarks/README.md).

Every part runs in its own process (a process holds one Ray connection and one vLLM engine), one
after the other, and the results go to benchmarks/results/<date>-<host>.json with a markdown table
and PNG plots beside it. A part that fails is reported as failed with its error, never left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, loadavg, machine, run_json  # noqa: E402
from empathy_ray.domain.files import atomic_write_text  # noqa: E402

SUITES = {"cpu": ["scaling", "sync", "e2e", "serve", "rollout"]}
MODULES = {name: f"benchmarks.bench_{name}" for name in SUITES["cpu"]}
PART_TIMEOUT_S = 3600


def run_part(name: str, size: str, repeats: int, work: Path, out: Path) -> dict:
    """One part in a fresh process; a failure becomes {'error': ...} in the results."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--part", name, "--size", size,
           "--repeats", str(repeats), "--work", str(work), "--part-out", str(out)]  # fmt: skip
    load, t0 = loadavg(), time.perf_counter()
    try:
        part = run_json(cmd, out, PART_TIMEOUT_S, env={"EMPATHY_RAY_CACHE": str(work / "cache")})
    except Exception as e:  # reported in the results and the table, the suite goes on
        part = {"title": name, "error": str(e)}
    part |= {"wall_s": time.perf_counter() - t0, "loadavg_before": load, "loadavg_after": loadavg()}
    print(f"[{name}] {part['wall_s']:.0f} s{' FAILED' if 'error' in part else ''}", flush=True)
    return part


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suite", choices=sorted(SUITES), default="cpu")
    ap.add_argument("--only", default="", help="comma-separated parts, e.g. rollout,sync")
    ap.add_argument("--size", choices=["full", "tiny"], default="full", help="tiny: a smoke run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--name", default="", help="results file stem; default <date>-<host>")
    ap.add_argument("--work", default="", help="models and caches; default .cache/bench")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--part", help=argparse.SUPPRESS)  # internal: run one part in this process
    ap.add_argument("--part-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = Path(args.work or REPO / ".cache" / "bench").resolve()
    work.mkdir(parents=True, exist_ok=True)

    if args.part:  # child process
        from empathy_ray.runtime.process import setup_process

        setup_process()
        part = importlib.import_module(MODULES[args.part]).run(args.size, args.repeats, work)
        atomic_write_text(Path(args.part_out), json.dumps(part, indent=1))
        return 0

    names = [n for n in args.only.split(",") if n] or SUITES[args.suite]
    unknown = set(names) - set(MODULES)
    if unknown:
        ap.error(f"--only: unknown parts {sorted(unknown)}; choose from {SUITES[args.suite]}")
    started = dt.datetime.now()
    results = {
        "suite": args.suite,
        "size": args.size,
        "repeats": args.repeats,
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "loadavg_start": loadavg(),
        "parts": {},
    }
    from benchmarks.report import write_report

    stem = args.name or f"{started:%Y-%m-%d}-{socket.gethostname()}"
    with tempfile.TemporaryDirectory(prefix="er-bench-", dir=work) as tmp:
        for name in names:
            part = run_part(name, args.size, args.repeats, work, Path(tmp) / f"{name}.json")
            if args.size == "tiny":  # smoke sizes say nothing about the targets
                for t in part.get("targets", []):
                    t["met"], t["measured"] = (
                        None,
                        f"{t['measured']} (tiny sizes: not a measurement of the target)",
                    )
            results["parts"][name] = part
            results["loadavg_end"] = loadavg()
            results["wall_s"] = (dt.datetime.now() - started).total_seconds()
            # after every part, so an interrupted run still leaves what it measured
            paths = write_report(results, Path(args.out_dir), stem, plots=not args.no_plots)
    for p in paths:
        print(p)
    return 1 if any("error" in p for p in results["parts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
