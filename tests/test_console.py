"""The console tells the pipeline's story in its own few lines; library output goes to the run's log files.

The end-to-end test runs `empathy-ray rl` as a user would (its own process, joining the session's
Ray) for two GRPO steps from the session's SFT model, with every tracker on, and reads its whole
captured console, its log files and its trackers.
"""

from __future__ import annotations

import json
import os

import pytest

from empathy_ray.runtime import console
from empathy_ray.runtime.logs import driver_output, failed_role, role_log, tag_role, tail
from tests.console_lines import foreign_lines, run_cli
from tests.helpers import LENGTH_RULE, short_run_overrides
from tests.tracker_reads import TRACKERS, mlflow_steps, tensorboard_steps, wandb_steps


def test_library_output_goes_to_the_log_and_our_lines_to_the_console(tmp_path, capfd):
    logs = tmp_path / "logs"
    with driver_output(logs, verbose=False) as out:
        console.use(out)
        try:
            os.write(1, b"(raylet) a library line on stdout\n")
            os.write(2, b"WARNING a C++ warning on stderr\n")
            console.stage_line("rl", "started")
            assert role_log("rollout") == str(logs / "rollout.log")
        finally:
            console.use(None)
    assert role_log("rollout") is None, "outside a command, processes keep their output"
    captured = capfd.readouterr()
    assert captured.out == "[rl] started\n" and captured.err == ""
    assert tail(logs / "driver.log") == [
        "(raylet) a library line on stdout",
        "WARNING a C++ warning on stderr",
    ]


def test_verbose_leaves_the_output_where_it_was(tmp_path, capfd):
    with driver_output(tmp_path / "logs", verbose=True) as out:
        os.write(1, b"vllm banner\n")
        assert out is not None and role_log("learner") is None
    assert capfd.readouterr().out == "vllm banner\n"
    assert not (tmp_path / "logs").exists()


def test_a_failure_names_stage_role_error_and_log_tail(tmp_path, capsys):
    log = tmp_path / "rollout.log"
    log.write_text("".join(f"engine line {i}\n" for i in range(30)) + "ValueError: max_model_len too long\n")
    error = ValueError("max_model_len too long\nmore detail on a second line")
    tag_role(error, "rollout")
    tag_role(error, "driver")  # a caller further out does not overwrite the closer role
    assert failed_role(RuntimeError("wrapped"), "rm") == "driver"
    try:
        raise RuntimeError("wrapped") from error
    except RuntimeError as wrapped:
        assert failed_role(wrapped, "rl") == "rollout"
    console.failure("rl", "rollout", error, 6.04, log, tail(log, 3))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[rl] FAILED after 6.0 s in the rollout role: ValueError: max_model_len too long",
        f"[rl] last lines of {log}:",
        "[rl]   | engine line 28",
        "[rl]   | engine line 29",
        "[rl]   | ValueError: max_model_len too long",
    ]
    assert foreign_lines("\n".join(lines)) == []


def test_warnings_are_shown_once(capsys):
    for _ in range(3):
        console.warn_once("rl", "test-kl", "KL to the reference grows fast; lower rl.learner.lr")
    assert capsys.readouterr().out == "[rl] warning: KL to the reference grows fast; lower rl.learner.lr\n"


@pytest.mark.slow
def test_a_short_run_prints_a_few_own_lines_and_logs_the_rest(trained_run, tiny_model_dir, tmp_path):
    import ray

    _, _, run_dir = trained_run
    sft = run_dir / "sft" / "model"
    args = short_run_overrides(
        tmp_path,
        tiny_model_dir,
        f"rl.policy_model={sft}",
        "rl.steps=2",
        "rl.prompts_per_step=4",
        "rl.algo.group_size=4",
        "rl.rollout.max_new_tokens=32",
        "rl.rollout.num_workers=1",
        "rl.learner.num_workers=1",
        "rl.checkpoint_every=1",
        "rl.eval_prompts=2",
        TRACKERS,
        *LENGTH_RULE,
    )
    proc = run_cli(ray.get_runtime_context().gcs_address, "rl", *args)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) <= 60 and foreign_lines(proc.stdout) == []
    assert lines[0] == "[rl] started" and lines[1].startswith("[rl] done in ")
    assert "2 steps, reward" in lines[1] and lines[-1].startswith("summary: ")

    run = tmp_path / "t"
    logs = {p.name: p.read_text(errors="replace") for p in (run / "logs").glob("*.log")}
    assert {"driver.log", "rollout.log", "learner.log", "reward.log", "reference.log"} <= set(logs)
    assert "vllm" in logs["rollout.log"].lower(), "the rollout engine's own output is in its role's log"
    assert "Ray" in logs["driver.log"] and "empathy_ray.rl" in logs["driver.log"]

    steps = [json.loads(r)["step"] for r in (run / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    assert tensorboard_steps(run / "rl" / "tb", "reward/total_mean") == [1, 2]
    assert wandb_steps(run, "reward/total_mean") == [1, 2]
    assert mlflow_steps(run, "rl", "rollout/format_valid") == [1, 2]


def test_a_workers_bar_reaches_the_driver_at_most_twice_a_second_and_always_at_the_end():
    import queue

    from empathy_ray.runtime.progress import QueueBar

    q: queue.Queue = queue.Queue()
    bar = QueueBar(q, total=5)
    bar.update(1)  # the first state goes at once
    bar.set_postfix({"loss": "3.210"})  # within half a second: held back
    bar.update(3)
    bar.update(1)  # the last step: sent whatever the time
    bar.close()
    sent = [q.get_nowait() for _ in range(q.qsize())]
    assert sent[0] == (5, 1, {}) and sent[-1] == (5, 5, {"loss": "3.210"}) and len(sent) == 3


def test_a_remote_error_wrapped_by_ray_shows_its_cause_without_colours(tmp_path, capsys):
    wrapped = RuntimeError(
        "The actor died because of an error raised in its creation task, \x1b[36mray::RolloutEngine.__init__()\x1b[39m\n"
        '  File "arg_utils.py", line 1955, in create_model_config\n'
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
        "  Value error, User-specified max_model_len (100000) is greater than the derived max_model_len"
    )
    console.failure("rl", "rollout", wrapped, 2.0, tmp_path / "rollout.log", [])
    assert capsys.readouterr().out.splitlines() == [
        "[rl] FAILED after 2.0 s in the rollout role: RuntimeError: The actor died because of an error raised "
        "in its creation task, ray::RolloutEngine.__init__()",
        "[rl] cause: pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
        f"[rl] log: {tmp_path / 'rollout.log'}",
    ]
