"""rl.rollout.compile reaches vLLM as enforce_eager: vLLM's own engine config (built, not started) is
eager with the key off, and compiled with it on; eager in the demo, compiled in the cluster recipes."""

from __future__ import annotations

import pytest

from empathy_ray.actors.rollout import _VllmBackend
from empathy_ray.config import RolloutConfig, load_config
from empathy_ray.modeling.generation import vllm_engine_args
from tests.helpers import REPO


@pytest.mark.parametrize("compile_", [False, True])
def test_the_key_sets_vllms_compilation(tiny_model_dir, compile_):
    from vllm import EngineArgs
    from vllm.config import CompilationMode

    args = vllm_engine_args(
        str(tiny_model_dir), 0, **_VllmBackend.engine_args(RolloutConfig(compile=compile_))
    )
    # explicit over the CPU defaults, which are eager
    assert args["enforce_eager"] is not compile_
    engine = EngineArgs(**args).create_engine_config()
    assert engine.model_config.enforce_eager is not compile_
    assert (engine.compilation_config.mode != CompilationMode.NONE) is compile_


def test_eager_in_the_demo_compiled_in_the_cluster_recipes(tmp_path):
    assert load_config(REPO / "configs" / "demo.yaml", []).rl.rollout.compile is False
    assert load_config(None, []).rl.rollout.compile is False  # tests and `empathy-ray demo`
    for recipe in ("cluster-7b.yaml", "single-node-7b.yaml"):
        cfg = load_config(REPO / "configs" / recipe, [f"model.path={tmp_path}"])
        assert cfg.rl.rollout.compile is True, recipe
