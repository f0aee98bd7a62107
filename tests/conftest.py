"""Shared, expensive fixtures: one local Ray cluster and tiny models built once per test session.

Caches (DeepSpeed's JIT ops, vLLM, inductor) go to the repo-ignored .cache/test folder so a second
test run reuses the compiled ops; Ray's session files go to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("EMPATHY_RAY_CACHE", str(REPO / ".cache" / "test"))
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session (4 logical CPUs: 2 trainer ranks + actors on 2 cores)."""
    import ray

    from empathy_ray.runtime import setup_process, worker_env

    setup_process()
    tmp = tempfile.mkdtemp(prefix="er-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray.init(num_cpus=4, _temp_dir=tmp, include_dashboard=False, runtime_env={"env_vars": worker_env()})
    yield ray
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The 'test' preset: a ~0.5M-parameter Qwen2 with the offline tokenizer."""
    from empathy_ray.modeling.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-test", preset="test", seed=0)
