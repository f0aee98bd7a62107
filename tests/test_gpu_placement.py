"""Every model-touching task of every stage asks for the device its config names and lands there.

A simulated cluster (`ray.cluster_utils.Cluster`): a head node with no accelerator, where the driver
lives, and one "GPU" node type. Fake GPUs cannot run NCCL or CUDA, so the node type is a custom
resource (`gpu_node`) that every role, trainer and eval task asks for, while the collectives stay on
gloo. Ray's state API then says where each actor and task ran. Runs in a subprocess: a process holds
one Ray connection, and the suite shares the session's single-node cluster.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers import LENGTH_RULE, run_cluster_script, short_run_overrides

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from ray.util.state import list_actors, list_tasks
    from empathy_ray.config import load_config
    from empathy_ray.pipeline.runner import run_stages
    from empathy_ray.runtime.placement import free_port
    from empathy_ray.runtime.process import setup_process, worker_env

    out, overrides = sys.argv[1], json.loads(sys.argv[2])
    setup_process()
    # the state API asks the head's dashboard: a port of its own, since the test session's Ray holds 8265
    head = {"num_cpus": 2, "include_dashboard": True, "dashboard_port": free_port()}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    gpu = cluster.add_node(num_cpus=8, resources={"gpu_node": 8})
    ray.init(address=cluster.address, runtime_env={"env_vars": worker_env()})
    cfg = load_config(None, overrides + [f"ray.address={cluster.address}"])
    summary = run_stages(cfg, ["sft", "rm", "rl", "eval"])
    result = {
        "gpu_node": gpu.node_id,
        "head_node": cluster.head_node.node_id,
        "status": {k: summary[k].get("status") for k in ("sft", "rm", "rl", "eval")},
        "actors": [(a.class_name, a.node_id) for a in list_actors(limit=10000, detail=True)],
        "tasks": [(t.func_or_class_name, t.node_id) for t in list_tasks(limit=10000, detail=True)],
    }
    (__import__("pathlib").Path(out) / "result.json").write_text(json.dumps(result))
    ray.shutdown()
    cluster.shutdown()
    """
)

ON_GPU = "{gpu_node: 1}"
# what touches a model: Ray Train workers (SFT, RM), the four RL roles, eval's generation (transformers:
# every system in one task) and RM tasks, SFT's validity generation
MODEL_ACTORS = ("RayTrainWorker", "RolloutEngine", "LearnerRank", "ReferencePolicy", "RewardScorer")
MODEL_TASKS = ("_sample_task", "_sample_each_task", "_score_task")


def test_every_model_touching_task_lands_on_the_gpu_node_type(tiny_model_dir, tmp_path):
    overrides = short_run_overrides(
        tmp_path,
        tiny_model_dir,
        "sft.epochs=1",
        "sft.eval_engine=transformers",
        f"sft.resources={ON_GPU}",
        f"rm.resources={ON_GPU}",
        *[f"rl.{role}.resources={ON_GPU}" for role in ("rollout", "learner", "reward", "reference")],
        "rl.steps=1",
        "rl.prompts_per_step=2",
        "rl.algo.group_size=2",
        "rl.learner.micro_batch_size=1",
        "rl.rollout.max_new_tokens=8",
        "rl.eval_prompts=0",
        f"eval.resources={ON_GPU}",
        "eval.engine=transformers",
        "eval.max_posts=2",
        "eval.max_new_tokens=8",
        "eval.baseline=false",
        "eval.bootstrap=10",
        *LENGTH_RULE[1:],  # the trained RM stays: eval scores with it in a task of its own
    )
    result = run_cluster_script(SCRIPT, tmp_path, str(tmp_path), json.dumps(overrides), timeout=900)
    assert result["status"] == {name: "done" for name in ("sft", "rm", "rl", "eval")}
    placed = [(name, node) for name, node in result["actors"] if name in MODEL_ACTORS]
    placed += [(name, node) for name, node in result["tasks"] if name in MODEL_TASKS]
    names = {name for name, _ in placed}
    assert names == set(MODEL_ACTORS) | set(MODEL_TASKS), (
        f"not seen: {set(MODEL_ACTORS + MODEL_TASKS) - names}"
    )
    off = [(name, node) for name, node in placed if node != result["gpu_node"]]
    assert not off, f"model work off the GPU node type: {off}"
