"""The cluster path a user takes: `ray start --head`, then `ray job submit ... -- python jobs/rl.py`.

The head runs in its own process group (`ray start --block`) so that stopping it cannot touch the
session's test cluster (a plain `ray stop` would stop every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    ray_bin = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="er-head-", dir="/tmp")
    dash = _free_port()
    # Ray 2.60 turns token auth on for `ray start` once ~/.ray/auth_token exists (any local ray.init
    # writes it), but the CLI only sends the token in token mode: use token mode with our own token.
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--num-cpus", "4", "--port", str(_free_port()),
         "--dashboard-port", str(dash), "--include-dashboard=true", "--temp-dir", temp],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{dash}"
    deadline = time.time() + 120
    while time.time() < deadline:
        probe = subprocess.run([ray_bin, "job", "list", "--address", url], capture_output=True, env=env)
        if probe.returncode == 0:
            break
        time.sleep(2)
    else:
        os.killpg(head.pid, signal.SIGTERM)
        pytest.fail("ray head did not come up within 120 s")
    yield ray_bin, url, env
    os.killpg(head.pid, signal.SIGTERM)
    head.wait(timeout=60)


def test_ray_job_submit_runs_the_rl_job(ray_head, tiny_model_dir, tmp_path):
    ray_bin, url, env = ray_head
    overrides = [
        f"run.output_root={tmp_path}",
        f"model.path={tiny_model_dir}",
        "data.max_prompt_tokens=64",
        "sft.epochs=1",
        "sft.eval_prompts=2",
        "sft.eval_max_new_tokens=8",
        "rm.epochs=1",
        "rl.steps=2",
        "rl.rollout.max_new_tokens=16",
        "rl.eval_prompts=2",
    ]
    cmd = [ray_bin, "job", "submit", "--address", url, "--working-dir", str(REPO), "--",
           sys.executable, "jobs/rl.py", "--config", "configs/demo.yaml", *overrides]  # fmt: skip
    for _ in range(12):  # the head's job agent can come up after `ray job list` already answers
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
        if "No available agent to submit job" not in proc.stdout + proc.stderr:
            break
        time.sleep(5)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "succeeded" in proc.stdout
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rl"]["steps"] == 2
    assert {"sft", "rm", "rl"} <= set(summary), "the job ran the missing SFT and RM stages first"
    rows = [
        json.loads(line) for line in (tmp_path / "demo" / "rl" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2 and all(r["rollout/samples"] == 16 for r in rows)
