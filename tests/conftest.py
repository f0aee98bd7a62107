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

from tests.helpers import REPO, short_run_overrides

os.environ.setdefault("EMPATHY_RAY_CACHE", str(REPO / ".cache" / "test"))
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("WANDB_MODE", "offline")  # tracker tests keep W&B runs in the run folder


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session: 8 logical CPUs (every RL role has its own actor) on 2 cores."""
    import ray

    from empathy_ray.runtime.process import setup_process, worker_env

    setup_process()
    tmp = tempfile.mkdtemp(prefix="er-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray.init(num_cpus=8, _temp_dir=tmp, include_dashboard=False, runtime_env={"env_vars": worker_env()})
    yield ray
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The 'test' preset: a ~0.5M-parameter Qwen2 with the offline tokenizer."""
    from empathy_ray.modeling.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-test", preset="test", seed=0)


@pytest.fixture(scope="session")
def hub_models() -> dict[str, Path]:
    """Qwen2.5- and Llama-3-layout folders with the cl100k vocabulary (tests/hub_models.py): built
    once into the test cache (~10 s), reused by later sessions."""
    from tests.hub_models import BUILDERS, build

    root = Path(os.environ["EMPATHY_RAY_CACHE"]) / "hub-models"
    return {kind: build(kind, root) for kind in BUILDERS}


@pytest.fixture(scope="session")
def rm_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A tiny reward model: the test LM with a fresh scalar head (random, fixed once saved)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("models") / "tiny-rm"
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def trained_run(ray_cluster, tiny_model_dir, tmp_path_factory):
    """SFT then RM (ZeRO-2, 2 Ray Train workers) once per session: (config, summary, run folder)."""
    from empathy_ray.config import load_config
    from empathy_ray.pipeline import run_stages

    root = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, short_run_overrides(root, tiny_model_dir))
    summary = run_stages(cfg, ["sft", "rm"])
    return cfg, summary, root / "t"


@pytest.fixture(scope="session")
def process_group():
    """One gloo process group of one rank for the session's in-process learners (test_learner.py,
    test_precision.py, test_learner_adapter_sync.py): DeepSpeed keeps the first group it saw, so there
    is never a second one. The RANK/... variables are undone at the end."""
    import torch.distributed as dist

    from empathy_ray.runtime.placement import free_port

    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "RANK": "0",
            "LOCAL_RANK": "0",
            "WORLD_SIZE": "1",
            "MASTER_ADDR": "127.0.0.1",
        }.items():
            mp.setenv(key, value)
        port = free_port()
        mp.setenv("MASTER_PORT", str(port))
        yield "127.0.0.1", port
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture
def make_rank(tiny_model_dir, process_group):
    """In-process learner ranks (one-rank group, tiny model); keyword arguments go to `rl_config`."""
    from empathy_ray.actors.learner import LearnerRank
    from tests.learner_helpers import rl_config

    def make(**kw) -> LearnerRank:
        rank = LearnerRank(str(tiny_model_dir), rl_config(**kw), rank=0, world_size=1, seed=0)
        rank.setup(*process_group)
        return rank

    return make
