"""Role placement on a simulated multi-node cluster (`ray.cluster_utils.Cluster`).

Runs in a subprocess: a process can hold only one Ray connection, and the rest of the suite shares
the session's single-node cluster. Placement does not depend on the engine, so the rollout workers run
transformers `generate` (four vLLM engines would take most of the test's time; test_gpu_placement.py
places vLLM workers).
"""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import run_cluster_script

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from empathy_ray.config import load_config
    from empathy_ray.rl.driver import GRPODriver
    from empathy_ray.actors.roles import Roles
    from empathy_ray.rl.stage import build_prompts
    from empathy_ray.runtime.process import setup_process, worker_env

    model, out = sys.argv[1], sys.argv[2]
    setup_process()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"head_node": 1}})
    rollout_nodes = [cluster.add_node(num_cpus=3, resources={"rollout_node": 3}) for _ in range(2)]
    learner_node = cluster.add_node(num_cpus=2, resources={"learner_node": 2})
    ray.init(address=cluster.address, runtime_env={"env_vars": worker_env()})

    def node_of(actor):
        return ray.get(actor.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()))

    result = {"rollout_nodes": [n.node_id for n in rollout_nodes], "learner_node": learner_node.node_id,
              "head_node": cluster.head_node.node_id}
    for workers in (1, 3):
        cfg = load_config(None, [
            f"run.output_root={out}", f"rl.policy_model={model}", f"model.path={model}",
            "rl.reward_model=none", "rl.reward.rm_weight=0", "rl.reward.length_weight=1",
            f"rl.rollout.num_workers={workers}", "rl.rollout.resources={rollout_node: 1}",
            "rl.learner.resources={learner_node: 1}", "rl.reward.resources={head_node: 0.1}",
            "rl.reference.resources={head_node: 0.1}", "rl.rollout.engine=transformers",
            "rl.prompts_per_step=4", "rl.algo.group_size=2", "rl.learner.micro_batch_size=2",
            "rl.rollout.max_new_tokens=8", "data.max_prompt_tokens=128",
        ])
        roles = Roles.create(cfg, model, None)
        try:
            driver = GRPODriver(cfg, __import__("pathlib").Path(out) / f"rl{workers}", build_prompts(cfg, model, ("train",)), roles)
            metrics = driver.run_step()
            result[f"workers_{workers}"] = {
                "samples": metrics["rollout/samples"],
                "rollout_on": [node_of(w) for w in roles.rollout.actors],
                "learners_on": [node_of(a) for a in roles.learners.group.actors],
                "reward_on": node_of(roles.reward.actors[0]),
                "reference_on": node_of(roles.reference.actors[0]),
            }
        finally:
            roles.shutdown()
    # a file, not stdout: Ray workers' log lines are interleaved into this process's stdout
    (__import__("pathlib").Path(out) / "result.json").write_text(json.dumps(result))
    ray.shutdown()
    cluster.shutdown()
    """
)


def test_roles_land_on_their_node_types(tiny_model_dir, tmp_path):
    result = run_cluster_script(SCRIPT, tmp_path, str(tiny_model_dir), str(tmp_path), timeout=600)
    for workers in (1, 3):
        r = result[f"workers_{workers}"]
        assert len(r["rollout_on"]) == workers
        assert set(r["rollout_on"]) <= set(result["rollout_nodes"]), "rollout workers land on rollout nodes"
        assert set(r["learners_on"]) == {result["learner_node"]}, "learners land on the learner node"
        assert r["reward_on"] == r["reference_on"] == result["head_node"], "reward and reference on the head"
    # the number of rollout workers changes nothing else: same samples per step
    assert result["workers_1"]["samples"] == result["workers_3"]["samples"] == 4 * 2
