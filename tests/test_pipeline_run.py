"""The skip / resume / run decisions and stage statuses, from a fabricated run folder (no Ray)."""

from __future__ import annotations

import json

import pytest

from empathy_ray.config import load_config
from empathy_ray.pipeline.commands import print_summary
from empathy_ray.pipeline.run import Run, read_summary
from empathy_ray.pipeline.runner import plan
from empathy_ray.pipeline.stage import config_values, extent, fingerprints
from empathy_ray.pipeline.stages import STAGES
from tests.console_lines import foreign_lines

PIPELINE = ["sft", "rm", "rl"]


def _cfg(tmp_path, *overrides: str):
    return load_config(None, [f"run.output_root={tmp_path}", "run.name=r", "rl.steps=10", *overrides])


def _finished(tmp_path, status: dict[str, str] | None = None, *overrides: str) -> Run:
    """A run folder as a finished (or interrupted) pipeline leaves it: records and output files."""
    cfg = _cfg(tmp_path, *overrides)
    run, prints, values = Run(cfg), fingerprints(STAGES, cfg), config_values(cfg)
    for name in PIPELINE:
        stage = STAGES[name]
        state = (status or {}).get(name, "done")
        run.record(name, {"status": state, "fingerprint": prints[name], "extent": extent(stage, values)})
        if state == "done":
            out = stage.output(run.layout)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("{}")
    return run


def _decisions(tmp_path, *overrides: str, resume: bool = False, force: bool = False) -> list[str]:
    """What a resubmission with these overrides would do, read back from the folder on disk."""
    run = Run(_cfg(tmp_path, *overrides))
    return [d for d, _ in plan(run, [*PIPELINE, "serve"], resume, force).values()]


def test_changing_log_every_skips_sft_rm_and_grpo(tmp_path):
    _finished(tmp_path)
    assert _decisions(tmp_path) == ["skip", "skip", "skip", "run"], "serve always starts"
    assert _decisions(tmp_path, "sft.log_every=1", "rm.log_every=1") == ["skip", "skip", "skip", "run"]


def test_changing_a_reward_timeout_resumes_an_interrupted_grpo(tmp_path):
    _finished(tmp_path, {"rl": "running"})
    assert _decisions(tmp_path, "rl.reward.timeout_s=30", "rl.rollout.num_cpus=1")[:3] == [
        "skip",
        "skip",
        "resume",
    ]


def test_changing_sft_lr_retrains_sft_and_everything_after(tmp_path):
    _finished(tmp_path, {"rl": "running"})
    assert _decisions(tmp_path, "sft.lr=1e-4")[:3] == ["run", "run", "run"]


@pytest.mark.parametrize(("steps", "expected"), [(10, "skip"), (20, "resume"), (5, "run")])
def test_more_grpo_steps_continue_the_finished_run_and_fewer_restart(tmp_path, steps, expected):
    _finished(tmp_path)
    assert _decisions(tmp_path, f"rl.steps={steps}")[2] == expected


def test_a_failed_stage_resumes_only_when_it_has_checkpoints(tmp_path):
    _finished(tmp_path, {"rm": "failed", "rl": "failed"})
    assert _decisions(tmp_path)[:3] == ["skip", "resume", "resume"]  # RM and GRPO keep checkpoints
    assert not STAGES["eval"].resumable and STAGES["rm"].resumable


def test_a_missing_output_reruns_the_stage_or_rebuilds_it_from_checkpoints(tmp_path):
    run = _finished(tmp_path)
    (run.layout.sft_model / "config.json").unlink()
    (run.layout.rl_model / "config.json").unlink()
    assert _decisions(tmp_path)[:3] == ["resume", "skip", "resume"]  # SFT too: from its last checkpoint


def test_force_runs_everything_and_resume_continues_grpo_whatever_changed(tmp_path):
    _finished(tmp_path)
    assert _decisions(tmp_path, force=True)[:3] == ["run", "run", "run"]
    assert _decisions(tmp_path, "rl.learner.lr=1e-3", resume=True)[:3] == ["skip", "skip", "resume"]


def test_a_stage_that_raises_is_recorded_as_failed_with_its_error(tmp_path, capsys):
    run = _finished(tmp_path, {"rl": "running"})
    run.record("run", {"stages": PIPELINE, "ran": ["rl"]})

    def broken() -> dict:
        raise ValueError("rl.reward_model: no model at /nowhere")

    with pytest.raises(ValueError, match="no model at /nowhere"):
        run.attempt("rl", "f00d", {"rl.steps": 10}, broken)
    rec = json.loads(run.layout.summary.read_text(encoding="utf-8"))["rl"]
    assert rec == {
        "status": "failed",
        "fingerprint": "f00d",
        "extent": {"rl.steps": 10},
        "error": {
            "type": "ValueError",
            "message": "rl.reward_model: no model at /nowhere",
            "role": "driver",  # raised in this process, not by an actor: the driver's log shows it
            "log": str(run.layout.log("driver")),
        },
    }
    print_summary(read_summary(run.layout), run.layout)
    out = capsys.readouterr().out
    assert "rl   : failed in the driver role ValueError: rl.reward_model: no model at /nowhere" in out


def test_a_stage_that_returns_is_recorded_as_done_with_its_result(tmp_path):
    run = Run(_cfg(tmp_path))
    rec = run.attempt("rm", "beef", {}, lambda: {"pairwise_accuracy": 0.75})
    assert rec == {"pairwise_accuracy": 0.75, "status": "done", "fingerprint": "beef", "extent": {}}
    assert read_summary(run.layout)["rm"] == rec


def test_a_run_from_scratch_drops_the_stale_checkpoints_and_metrics(tmp_path):
    run = _finished(tmp_path)
    ckpt = run.layout.rl_checkpoints / "step_000010"
    ckpt.mkdir(parents=True)
    run.layout.metrics("rl").write_text('{"step": 1}\n')
    run.clear_progress(STAGES["rl"])
    assert not run.layout.rl_checkpoints.exists() and not run.layout.metrics("rl").exists()
    assert (run.layout.rl_model / "config.json").exists(), (
        "the old export is replaced when the new one is ready"
    )


def test_the_console_summary_names_a_crisis_path_regression(tmp_path, capsys):
    run = Run(_cfg(tmp_path))
    regression = {"system": "rl", "start": "sft", "rate": 0.36, "start_rate": 0.64, "drop": 0.28}
    eval_rec = {"systems": {}, "crisis_regressions": [regression]}
    run.attempt("eval", "cafe", {}, lambda: eval_rec)
    print_summary(read_summary(run.layout), run.layout)
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if "REGRESSION" in x]
    assert line.startswith("eval: REGRESSION: rl points 0.36 of the flagged posts to help, sft 0.64")
    assert not foreign_lines(line)  # one of the console's own line formats
