"""`empathy-ray demo` / `sft` / `rm` / `rl` (and jobs/*.py): load the config, run, print the summary.

What is printed is read back from summary.json, so the console shows the same statuses a
resubmission will act on, including a stage that failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from empathy_ray.config import Config, ConfigError, load_config
from empathy_ray.pipeline.run import read_summary
from empathy_ray.pipeline.runner import run_pipeline, run_stages
from empathy_ray.runtime import console
from empathy_ray.runtime.logs import driver_output
from empathy_ray.runtime.process import setup_process
from empathy_ray.runtime.run_dir import RunLayout

log = logging.getLogger(__name__)

# The demo is the default pipeline plus evaluation, and a server that answers two messages and stops.
DEMO_OVERRIDES = [
    "pipeline.eval=true",
    "pipeline.serve=true",
    "serve.keep_running=false",
    "serve.smoke_test=true",
]


def _load(args) -> Config | None:
    setup_process()
    overrides = [*args.overrides, *(["tracking.verbose=true"] if getattr(args, "verbose", False) else [])]
    try:
        return load_config(args.config, overrides)
    except ConfigError as e:
        console.line(f"config error: {e}")
        return None


@contextlib.contextmanager
def _console(cfg: Config) -> Iterator[None]:
    """The command's console: our lines on the terminal, library output in the run's log files."""
    layout = RunLayout.of(cfg)
    with driver_output(layout.logs, cfg.tracking.verbose) as out:
        console.use(out)
        try:
            yield
        finally:
            _disconnect_ray()
            console.use(None)


def _disconnect_ray() -> None:
    """Leave Ray while the output still goes to the log: its log monitor keeps forwarding worker lines
    (a placement-group cleaner's last words after a failed Ray Train job) until the process leaves,
    and once the console is restored they would land on it. A joined cluster keeps running, and so
    does a Serve app deployed on it."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _stage_main(args, stage: str) -> int:
    """`empathy-ray sft` / `rm`: run that one stage now, whatever the run folder holds."""
    cfg = _load(args)
    if cfg is None:
        return 2
    with _console(cfg):
        try:
            summary = run_stages(cfg, [stage])
        except Exception:
            return 1  # the stage's failure is on the console and in summary.json
        console.line(json.dumps(summary[stage], ensure_ascii=False, indent=2, default=str))
    return 0


def sft_main(args) -> int:
    return _stage_main(args, "sft")


def rm_main(args) -> int:
    return _stage_main(args, "rm")


def _pipeline_main(cfg: Config, resume: bool) -> int:
    """The pipeline, then its summary as summary.json holds it (also when a stage failed: exit code 1)."""
    status = 0
    with _console(cfg):
        try:
            run_pipeline(cfg, resume=resume)
        except Exception:
            status = 1  # the failed stage, its role, error and log tail are on the console already
        finally:
            print_summary(read_summary(RunLayout.of(cfg)), RunLayout.of(cfg))
    return status


def rl_main(args) -> int:
    """`jobs/rl.py` / `empathy-ray rl`: the whole pipeline as `pipeline.*` configures it."""
    cfg = _load(args)
    return 2 if cfg is None else _pipeline_main(cfg, args.resume)


def demo_main(args) -> int:
    args.overrides = [*DEMO_OVERRIDES, *args.overrides]
    cfg = _load(args)
    return 2 if cfg is None else _pipeline_main(cfg, False)


def _headlines(summary: dict[str, Any]) -> list[str]:
    """One line per finished training stage, with its headline numbers."""
    sft, rm, rl = (summary.get(k, {}) for k in ("sft", "rm", "rl"))
    nan = float("nan")
    lines = []
    if sft.get("status") == "done":
        lines.append(
            f"SFT : loss {sft.get('loss_first', nan):.3f} -> {sft.get('loss_last', nan):.3f}, "
            f"held-out CoE validity {sft.get('coe_validity', 0):.2f} ({sft.get('eval_prompts')} prompts, greedy)"
        )
    if rm.get("status") == "done":
        lines.append(
            f"RM  : held-out pairwise accuracy {rm.get('pairwise_accuracy', 0):.3f} on {rm.get('eval_pairs')} pairs"
        )
    if rl.get("status") == "done":
        b, a = rl.get("held_out_before", {}), rl.get("held_out_after", {})
        lines.append(
            f"GRPO: {rl.get('steps')} steps, held-out reward {b.get('total_mean', nan):.3f} -> "
            f"{a.get('total_mean', nan):.3f}, format {b.get('format_mean', nan):.2f} -> "
            f"{a.get('format_mean', nan):.2f}, KL {rl.get('kl_last') or 0:.4f}"
        )
    return lines


def print_summary(summary: dict[str, Any], layout: RunLayout) -> None:
    console.line("")
    console.line(f"run folder: {layout.dir}")
    for line in _headlines(summary):
        console.line(line)
    for name, e in summary.get("eval", {}).get("systems", {}).items():
        win = e.get("win@1")
        console.line(
            f"eval: {name:<5} CoE validity {e['coe_validity']:.2f}, RM score {e.get('rm_score') or 0:.3f}"
            + (f", Win@1 {win:.2f}, mean rank {e['mean_rank']:.2f}" if win is not None else "")
        )
    for r in summary.get("eval", {}).get("crisis_regressions", []):
        console.line(
            f"eval: REGRESSION: {r['system']} points {r['rate']:.2f} of the flagged posts to help, "
            f"{r['start']} {r['start_rate']:.2f} (eval.md, crisis-path regression)"
        )
    if layout.report.exists():
        console.line(f"report : {layout.report}")
    serve = summary.get("serve", {})
    if serve.get("status") == "done":
        console.line(f"serve  : {serve['url']} ({'running' if serve.get('running') else 'stopped'})")
    run = summary.get("run", {})
    for name in run.get("stages", []):
        rec = summary.get(name, {})
        if rec.get("status") in ("failed", "running"):
            error = rec.get("error", {})
            message = console.first_line(error.get("message") or "")
            where = f" in the {error['role']} role" if error.get("role") else ""
            console.line(f"{name:<5}: {rec['status']}{where} {error.get('type', '')}: {message}".rstrip(": "))
    if layout.logs.is_dir():
        console.line(f"logs   : {layout.logs} (driver.log, and one file per role)")
    ran = run.get("ran", [])
    console.line(
        f"summary: {layout.summary}  (stages run now: {', '.join(ran) or 'none'}; {summary.get('wall_s')} s)"
    )
