"""The cluster path a user takes: `ray start --head`, then `ray job submit ... -- python jobs/rl.py`.

One head for the module and one run folder: a job stopped in GRPO, then the same command submitted
again, which resumes and serves (the deployment stays up on the head after the job: that is the point).

The head runs in its own process group (`ray start --block`) so that stopping it cannot touch the
session's test cluster (a plain `ray stop` would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
import pytest

from tests.console_lines import foreign_lines

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    ray_bin = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="er-head-", dir="/tmp")
    dash = _free_port()
    # Ray 2.60 turns token auth on for `ray start` once ~/.ray/auth_token exists (any local ray.init
    # writes it), but the CLI only sends the token in token mode: use token mode with our own token.
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    # A stopped node first drains for up to 30 s, waiting on what still runs there (the deployment the
    # test leaves up): nothing here needs a graceful drain (measured with a live actor: 32 s -> 2 s).
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--num-cpus", "4", "--port", str(_free_port()),
         "--dashboard-port", str(dash), "--include-dashboard=true", "--temp-dir", temp,
         # Agent ports default to fixed numbers (52365 ...) that the session's test cluster holds.
         "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port",
         str(_free_port()), "--metrics-export-port", str(_free_port()), "--runtime-env-agent-port",
         str(_free_port())],
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
    # SIGTERM to `ray start` alone, which stops its processes in order (sent to the whole group, it also
    # stopped the GCS at once, and the drain's call to the GCS then waited 30 s for an answer)
    head.terminate()
    try:
        head.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # whatever the head left behind


def _submit(ray_head, overrides: list[str], *flags: str) -> subprocess.CompletedProcess:
    ray_bin, url, env = ray_head
    cmd = [ray_bin, "job", "submit", "--address", url, "--working-dir", str(REPO), *flags, "--",
           sys.executable, "jobs/rl.py", "--config", "configs/demo.yaml", *overrides]  # fmt: skip
    # The head's job agent can come up well after `ray job list` answers (seconds to a minute).
    deadline = time.time() + 120
    while True:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
        if "No available agent to submit job" not in proc.stdout + proc.stderr or time.time() > deadline:
            break
        time.sleep(5)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def _small(tmp_path: Path, model_dir: Path, *extra: str) -> list[str]:
    return [
        f"run.output_root={tmp_path}",
        f"model.path={model_dir}",
        "data.max_prompt_tokens=128",
        "sft.epochs=1",
        "sft.eval_prompts=2",
        "sft.eval_max_new_tokens=8",
        "rm.epochs=1",
        "rl.rollout.max_new_tokens=16",
        "rl.eval_prompts=2",
        *extra,
    ]


def _job_console(ray_head, job_id: str) -> list[str]:
    """The job's whole output, as `ray job logs` shows it, without the lines Ray's job manager and
    supervisor add (a user sees those too, but Ray writes them)."""
    ray_bin, url, env = ray_head
    proc = subprocess.run(
        [ray_bin, "job", "logs", job_id, "--address", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the job manager's timestamped lines, and the supervisor's "Running entrypoint for job <id>: <cmd>"
    ray_own = re.compile(
        r"\d{4}-\d\d-\d\d [\d:,]+\s+\w+ \w+\.py:\d+ -- .*|Running entrypoint for job \S+: .*"
    )
    return [ln for ln in proc.stdout.splitlines() if not ray_own.fullmatch(ln)]


def _own_console(ray_head, job_id: str) -> list[str]:
    """The job's console, which holds only the project's own lines (the libraries wrote to the log files)."""
    console = _job_console(ray_head, job_id)
    assert foreign_lines("\n".join(console)) == [] and len(console) <= 60, "\n".join(console)
    return console


def _summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "demo" / "summary.json").read_text(encoding="utf-8"))


def test_a_killed_job_resubmitted_reuses_sft_rm_resumes_grpo_and_serves(ray_head, tiny_model_dir, tmp_path):
    """One run folder, two submissions of the same command: the first is stopped in GRPO (after SFT, RM and
    a checkpoint); the second skips SFT and RM, resumes GRPO at the step after its last checkpoint, serves,
    and leaves the deployment answering on the cluster after the job ends. Each job's console holds only
    the project's own lines."""
    ray_bin, url, env = ray_head
    # 10 short steps (a checkpoint each, ~2-4 s apart on 2 cores), the last 2 kept: the job is still in
    # GRPO (8+ steps to go) when the first checkpoint appears and the stop reaches it
    port = _free_port()
    extra = ["rl.steps=10", "rl.checkpoint_every=1", "rl.keep_checkpoints=2", "pipeline.serve=true",
             f"serve.port={port}", "serve.default_max_tokens=16", "serve.smoke_test=true"]  # fmt: skip
    overrides = _small(tmp_path, tiny_model_dir, *extra)
    first_id, second_id = (f"er-{secrets.token_hex(4)}" for _ in range(2))
    _submit(ray_head, overrides, "--no-wait", "--submission-id", first_id)
    checkpoints = tmp_path / "demo" / "rl" / "checkpoints"
    deadline = time.time() + 600
    while not list(checkpoints.glob("step_*")) and time.time() < deadline:
        time.sleep(1)
    assert list(checkpoints.glob("step_*")), "GRPO never wrote its first checkpoint"
    subprocess.run(
        [ray_bin, "job", "stop", "--address", url, first_id], check=True, env=env, capture_output=True
    )
    killed = _summary(tmp_path)
    assert killed["rl"]["status"] == "running", "the job should have been stopped during GRPO"
    sft_stamp = (tmp_path / "demo" / "sft" / "model" / "config.json").stat().st_mtime_ns
    done_steps = max(int(p.name.split("_")[1]) for p in checkpoints.glob("step_*"))
    starts = [ln for ln in _job_console(ray_head, first_id) if ln.endswith("] started")]
    assert starts == ["[sft] started", "[rm] started", "[rl] started"]

    proc = _submit(ray_head, overrides, "--submission-id", second_id)
    assert "succeeded" in proc.stdout
    console = _own_console(ray_head, second_id)
    stages = re.compile(r"\[(sft|rm|rl|serve)\] (started|resuming|skipped)")
    assert [ln for ln in console if stages.match(ln)] == [
        "[sft] skipped: its output matches its config",
        "[rm] skipped: its output matches its config",
        "[rl] resuming from its last checkpoint",
        "[serve] started",
    ], console
    assert sum(ln.startswith("[serve] crisis message: risk ") for ln in console) == 1
    summary = _summary(tmp_path)
    assert summary["run"]["ran"] == ["rl", "serve"], "SFT and RM outputs match their config and are reused"
    assert (tmp_path / "demo" / "sft" / "model" / "config.json").stat().st_mtime_ns == sft_stamp
    assert summary["rl"]["resumed"] is True and summary["rl"]["steps"] == 10
    rows = [json.loads(x) for x in (tmp_path / "demo" / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11)), f"resumed after step {done_steps}: each step once"
    assert all(r["rollout/samples"] == 16 and r["rollout/weight_version"] == r["step"] - 1 for r in rows)
    assert sorted(p.name for p in checkpoints.glob("step_*")) == ["step_000009", "step_000010"]
    # the RL actors' CPUs were free again before serving
    assert summary["rl"]["free_after"]["CPU"] == summary["rl"]["free_before"]["CPU"]
    assert summary["serve"]["running"] is True
    assert summary["serve"]["model_dir"] == str(tmp_path.resolve() / "demo" / "rl" / "model")
    # the job has ended; the deployment it made keeps answering on the cluster
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=2)
    reply = client.chat.completions.create(
        model="empathy-ray", messages=[{"role": "user", "content": "最近考试压力很大，晚上总是睡不着。"}]
    )
    assert reply.choices[0].message.content is not None and reply.usage.completion_tokens > 0
    assert reply.model_extra["safety"]["path"] == "model"
