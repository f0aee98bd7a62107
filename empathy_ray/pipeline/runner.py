"""Running stages in order: decide each one (skip / resume / run), check the cluster, execute.

`run_stages` is the one loop every entry point uses; the decision itself is pure (`stage.decide`)
and the statuses it reads and writes belong to `Run`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.config import Config
from empathy_ray.pipeline.run import Run
from empathy_ray.pipeline.stage import Decision, Stage, config_values, extent, fingerprints
from empathy_ray.pipeline.stages import STAGES
from empathy_ray.runtime import console
from empathy_ray.runtime.logs import note_ray_logs, tail
from empathy_ray.runtime.process import host_facts, init_ray
from empathy_ray.runtime.resources import check_fits, cluster_nodes, free_resources, wait_released
from empathy_ray.runtime.trackers import publish_report

log = logging.getLogger(__name__)


def planned_stages(cfg: Config) -> list[str]:
    """The stages `pipeline.*` asks for; SFT/RM only when no ready model directory is given."""
    return [name for name, stage in STAGES.items() if stage.planned(cfg)]


def check_stages(cfg: Config, names: list[str], nodes: list[dict[str, float]]) -> None:
    """Every stage must fit the cluster on its own (stages hand their resources back in between)."""
    for name in names:
        check_fits(STAGES[name].demands(cfg), nodes, f"the {name} stage's actors")


def plan(run: Run, names: list[str], resume: bool, force: bool) -> dict[str, tuple[Decision, str]]:
    """Each stage's decision and fingerprint. force: run every stage from scratch; resume: a resumable
    stage that would start from scratch continues from its checkpoint instead (`--resume`)."""
    prints = fingerprints(STAGES, run.cfg)
    values = config_values(run.cfg)
    out: dict[str, tuple[Decision, str]] = {}
    for name in names:
        stage = STAGES[name]
        decision = "run" if force else run.decide(stage, prints[name], extent(stage, values))
        if decision == "run" and resume and stage.resumable:
            decision = "resume"
        out[name] = (decision, prints[name])
    return out


def _execute(run: Run, stage: Stage, decision: Decision, fingerprint: str) -> None:
    """One stage, its status recorded by `run`, with what was free before and after it."""
    if decision == "run":
        run.clear_progress(stage)

    def work() -> dict[str, Any]:
        before = free_resources()
        result = stage.execute(run, decision == "resume")
        after = free_resources() if stage.keeps_resources else wait_released(before)
        return {**result, "free_before": before, "free_after": after}

    wanted = extent(stage, config_values(run.cfg))
    console.stage_line(stage.name, "resuming from its last checkpoint" if decision == "resume" else "started")
    t0 = time.perf_counter()
    try:
        record = run.attempt(stage.name, fingerprint, wanted, work, role=stage.role)
    except Exception as e:
        error = run.summary[stage.name]["error"]
        log_path = Path(error["log"])
        console.failure(stage.name, error["role"], e, time.perf_counter() - t0, log_path, tail(log_path))
        raise
    wall = time.perf_counter() - t0
    console.stage_line(stage.name, f"done in {wall:.1f} s: {console.headline(stage.name, record)}")


def run_stages(cfg: Config, names: list[str], resume: bool = False, force: bool = True) -> dict[str, Any]:
    """Run `names` in order. force=False skips finished stages and resumes an interrupted GRPO."""
    run = Run(cfg)
    run.cluster_outlives_us = init_ray(cfg.ray)
    note_ray_logs(cfg.ray.temp_dir)
    t0 = time.perf_counter()
    decisions = plan(run, names, resume, force)
    # every stage still to run must fit the cluster: fail now, not after an hour of SFT
    check_stages(cfg, [n for n, (d, _) in decisions.items() if d != "skip"], cluster_nodes())
    ran: list[str] = []
    report_stale = False  # a stage that feeds report.html ran since the report was written
    try:
        for name, (decision, fingerprint) in decisions.items():
            stage = STAGES[name]
            if decision == "skip":
                console.stage_line(name, "skipped: its output matches its config")
                continue
            if report_stale and not stage.in_report:  # before serving, which may last until Ctrl-C
                _report(run)
                report_stale = False
            ran.append(name)
            _execute(run, stage, decision, fingerprint)
            report_stale = report_stale or stage.in_report
    finally:
        run.summary["wall_s"] = round(time.perf_counter() - t0, 1)
        run.record("run", {"dir": str(run.dir), "stages": names, "ran": ran, "host": host_facts()})
        if report_stale:  # also after a failure: the curves of what did run
            _report(run)
    return run.summary


def _report(run: Run) -> None:
    """report.html, also as an artifact of the trackers in `tracking.backends`."""
    from empathy_ray.eval.report import write_report

    path = write_report(run.dir)
    log.info("report: %s", path)
    publish_report(run.cfg, run.dir, [Path(path), run.layout.summary])


def run_pipeline(cfg: Config, resume: bool = False) -> dict[str, Any]:
    """The stages `pipeline.*` names; finished ones are skipped, an interrupted GRPO resumes."""
    return run_stages(cfg, planned_stages(cfg), resume=resume, force=False)
