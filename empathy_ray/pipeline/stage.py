"""A pipeline stage as an object, its fingerprint, and the pure skip / resume / run decision.

A stage declares what makes it different from the others as fields, so nothing downstream checks a
stage by name. Its fingerprint hashes only the config keys it declares (plus its inputs'
fingerprints), so a key that only places, logs or times out work never retrains anything.
No Ray and no disk here: tests drive the decision with a fabricated summary record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from empathy_ray.config import Config
from empathy_ray.runtime.resources import Demands
from empathy_ray.runtime.run_dir import RunLayout

if TYPE_CHECKING:
    from empathy_ray.pipeline.run import Run

Decision = Literal["skip", "resume", "run"]


def _no_inputs(cfg: Config) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Stage:
    name: str
    execute: Callable[[Run, bool], dict[str, Any]]  # (run, resume) -> its record for summary.json
    demands: Callable[[Config], Demands]  # what it starts at once, checked against the cluster first
    planned: Callable[[Config], bool]  # whether the `pipeline.*` switches ask for it
    inputs: Callable[[Config], tuple[str, ...]] = _no_inputs  # stages whose output it reads
    keys: tuple[str, ...] = ()  # config keys its output depends on: dotted prefixes or exact keys
    ignore: tuple[str, ...] = ()  # keys under `keys` that do not change its output
    output: Callable[[RunLayout], Path] | None = None  # exists once it finished; None: always runs
    checkpoints: Callable[[RunLayout], Path] | None = None  # its saved progress: it can resume
    grows_with: tuple[str, ...] = ()  # keys a resumable stage continues along when they grow
    keeps_resources: bool = False  # its actors outlive it (a Serve app): do not wait for their release
    in_report: bool = True  # report.html shows its results: rewritten after such stages ran
    # whose log a failure points at when no actor role is named (runtime/logs.py): its own processes
    role: str = "driver"

    def __post_init__(self) -> None:
        assert not self.grows_with or self.checkpoints, f"{self.name}: grows_with needs checkpoints"

    @property
    def resumable(self) -> bool:
        return self.checkpoints is not None


def config_values(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of the config tree by dotted key (a dict field such as `resources` is one leaf)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out |= config_values(value, f"{prefix}{f.name}.")
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in patterns)


def depends_on(stage: Stage, values: Mapping[str, Any]) -> dict[str, Any]:
    """The config values in the stage's own fingerprint (grows_with keys are recorded apart)."""
    return {
        k: v
        for k, v in values.items()
        if matches(k, stage.keys) and not matches(k, stage.ignore) and not matches(k, stage.grows_with)
    }


def extent(stage: Stage, values: Mapping[str, Any]) -> dict[str, Any]:
    """How far a resumable stage is asked to go (e.g. {"rl.steps": 10})."""
    return {k: values[k] for k in stage.grows_with}


def fingerprints(stages: Mapping[str, Stage], cfg: Config) -> dict[str, str]:
    """Each stage's hash of the config values its output depends on, its inputs' hashes included."""
    values = config_values(cfg)
    out: dict[str, str] = {}

    def of(name: str) -> str:
        if name not in out:
            stage = stages[name]
            blob = {"config": depends_on(stage, values), "inputs": {n: of(n) for n in stage.inputs(cfg)}}
            text = json.dumps(blob, sort_keys=True, default=str)
            out[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return out[name]

    for name in stages:
        of(name)
    return out


def decide(
    stage: Stage, record: Mapping[str, Any], fingerprint: str, wanted: Mapping[str, Any], output_exists: bool
) -> Decision:
    """skip: same fingerprint and extent, finished, output there. resume: a resumable stage with the
    same fingerprint that was interrupted, failed, lost its output or is asked to go further (its
    checkpoints are then a prefix of the run asked for). run: anything else, from scratch."""
    if stage.output is None or record.get("fingerprint") != fingerprint:
        return "run"
    was, status = record.get("extent", {}), record.get("status")
    if status == "done" and output_exists and was == dict(wanted):
        return "skip"
    shrunk = any(k not in was or wanted[k] < was[k] for k in wanted)
    if stage.resumable and status in ("running", "failed", "done") and not shrunk:
        return "resume"
    return "run"
