"""A stage that fails says where and why: the stage, the role, the exception and its log's last lines,
an exit code other than 0, and summary.json naming the stage that failed.

Each runs `empathy-ray` in its own process (joining the session's Ray) and reads its whole console.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import ray

from tests.console_lines import foreign_lines, run_cli
from tests.helpers import LENGTH_RULE, short_run_overrides

pytestmark = pytest.mark.slow


def _failure(proc, stage: str, role: str) -> list[str]:
    """The console's failure block for `stage` (head, the remote error's cause, the log's path and
    tail): checked, then returned."""
    print(proc.stdout)  # shown with -s, and on failure
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert foreign_lines(proc.stdout) == [], proc.stdout
    lines = proc.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith(f"[{stage}] FAILED after "))
    assert f" in the {role} role: " in lines[head]
    assert lines[head + 1].startswith(f"[{stage}] cause: ")
    assert lines[head + 2].startswith(f"[{stage}] last lines of /") and lines[head + 2].endswith(".log:")
    tail = [ln for ln in lines[head + 3 :] if ln.startswith(f"[{stage}]   | ")]
    assert len(tail) >= 3
    return lines[head:]


def _summary(root: Path) -> dict:
    return json.loads((root / "t" / "summary.json").read_text(encoding="utf-8"))


def test_rm_given_a_truncated_weights_file_fails_in_its_workers(ray_cluster, tiny_model_dir, tmp_path):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut off mid-header, as an interrupted copy leaves it
    args = short_run_overrides(tmp_path, tiny_model_dir, f"rm.base_model={broken}")
    proc = run_cli(ray_cluster.get_runtime_context().gcs_address, "rm", *args)
    block = _failure(proc, "rm", "rm")
    log = tmp_path / "t" / "logs" / "rm.log"
    assert "SafetensorError" in block[1] and block[2] == f"[rm] last lines of {log}:"
    assert "safetensors" in log.read_text().lower() or "header" in log.read_text().lower()
    rec = _summary(tmp_path)["rm"]
    assert rec["status"] == "failed" and rec["error"]["role"] == "rm" and rec["error"]["log"] == str(log)


def test_a_rollout_worker_crashing_at_start_names_its_role(trained_run, tiny_model_dir, tmp_path):
    _, _, run_dir = trained_run
    args = short_run_overrides(
        tmp_path,
        tiny_model_dir,
        f"rl.policy_model={run_dir / 'sft' / 'model'}",
        "rl.steps=1",
        "rl.rollout.num_workers=1",
        "rl.learner.num_workers=1",
        # longer than the model's 2048 positions: vLLM refuses to start the engine
        "rl.rollout.max_model_len=100000",
        *LENGTH_RULE,
    )
    proc = run_cli(ray.get_runtime_context().gcs_address, "rl", *args)
    block = _failure(proc, "rl", "rollout")
    log = tmp_path / "t" / "logs" / "rollout.log"
    assert "ValidationError" in block[1] and block[2] == f"[rl] last lines of {log}:"
    assert "max_model_len" in "\n".join(block), "the exception or the log tail says what was wrong"
    summary = _summary(tmp_path)
    assert summary["rl"]["status"] == "failed" and summary["rl"]["error"]["role"] == "rollout"
    assert summary["run"]["ran"] == ["rl"]
