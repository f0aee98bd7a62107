"""The cluster recipe is consistent with cluster.yaml: every stage fits the node types it names."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from empathy_ray.config import ConfigError, load_config
from empathy_ray.pipeline import check_stages, planned_stages
from empathy_ray.runtime.resources import Demand

REPO = Path(__file__).resolve().parent.parent


def _nodes(cluster_yaml: Path) -> list[dict[str, float]]:
    """The nodes `ray up` starts at least: the head plus min_workers of each worker type."""
    spec = yaml.safe_load(cluster_yaml.read_text())
    types = spec["available_node_types"]
    nodes = [dict(types[spec["head_node_type"]]["resources"])]
    for name, t in types.items():
        if name != spec["head_node_type"]:
            nodes += [dict(t["resources"]) for _ in range(t["min_workers"])]
    return nodes


@pytest.fixture
def recipe(tmp_path):
    model = tmp_path / "Qwen2.5-7B-Instruct"
    model.mkdir()  # the recipe's /shared path does not exist here; everything else is as written
    return load_config(REPO / "configs" / "cluster-7b.yaml", [f"model.path={model}"])


def test_every_stage_of_the_7b_recipe_fits_the_cluster(recipe):
    nodes = _nodes(REPO / "cluster.yaml")
    assert planned_stages(recipe) == ["sft", "rm", "rl", "eval", "serve"]
    check_stages(recipe, planned_stages(recipe), nodes)
    # GRPO uses every GPU: 3 engines x 2 + reward + reference on the rollout node, 8 learner ranks
    rl = recipe.rl
    rollout_gpus = rl.rollout.num_workers * rl.rollout.num_gpus + rl.reward.num_gpus + rl.reference.num_gpus
    assert (rollout_gpus, rl.learner.num_workers * rl.learner.num_gpus) == (8, 8)
    assert recipe.rl.sync == "nccl" and recipe.rl.learner.zero_stage == 3
    assert recipe.rl.rollout.tensor_parallel_size == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rl.rollout.num_workers=4", "GPU: needs 18, cluster has 16"),
        ("rl.learner.resources={learner_node: 2}", "learner_node: needs 16, cluster has 8"),
        ("sft.num_workers=17", "GPU: needs 17, cluster has 16"),
        ("serve.num_replicas=9", "GPU: needs 18, cluster has 16"),
        # sft and serve speak the same resource vocabulary as the RL roles: custom node resources too
        ("sft.resources={learner_node: 1}", "learner_node: needs 16, cluster has 8"),
        ("serve.resources={edge_node: 1}", "serve: one actor needs .*'edge_node': 1.0"),
    ],
)
def test_a_recipe_that_does_not_fit_names_the_stage(recipe, tmp_path, override, message):
    cfg = load_config(REPO / "configs" / "cluster-7b.yaml", [f"model.path={recipe.model.path}", override])
    with pytest.raises(ConfigError, match=message):
        check_stages(cfg, planned_stages(cfg), _nodes(REPO / "cluster.yaml"))


def test_serve_and_sft_can_be_pinned_to_a_node_type(recipe):
    pins = ["serve.resources={rollout_node: 1}", "sft.num_workers=8", "sft.resources={learner_node: 1}"]
    cfg = load_config(REPO / "configs" / "cluster-7b.yaml", [f"model.path={recipe.model.path}", *pins])
    check_stages(cfg, ["sft", "serve"], _nodes(REPO / "cluster.yaml"))
    assert Demand.of_serve(cfg.serve).bundle() == {"CPU": 4.0, "GPU": 2.0, "rollout_node": 1.0}
    assert Demand.of_trainer(cfg.sft).bundle() == {"CPU": 4.0, "GPU": 1.0, "learner_node": 1.0}
    cpu_only = ["serve.num_gpus=0", "serve.tensor_parallel_size=1", "serve.resources={}"]
    cfg = load_config(REPO / "configs" / "cluster-7b.yaml", [f"model.path={recipe.model.path}", *cpu_only])
    assert Demand.of_serve(cfg.serve).bundle() == {"CPU": 4.0}, "zero amounts are left out for Ray"


def test_tensor_parallel_must_match_the_gpus_of_an_engine(recipe):
    with pytest.raises(ConfigError, match="rl.rollout.num_gpus=4 but rl.rollout.tensor_parallel_size=2"):
        load_config(
            REPO / "configs" / "cluster-7b.yaml", [f"model.path={recipe.model.path}", "rl.rollout.num_gpus=4"]
        )


def _launcher_checked(spec: dict) -> None:
    """What `ray up` does with the file before it starts a node: fill in the provider's defaults,
    then validate against Ray's own cluster schema (ray/autoscaler/ray-schema.json)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(spec)))


def test_cluster_yaml_passes_rays_own_schema_and_names_a_published_image():
    import jsonschema
    import ray

    spec = yaml.safe_load((REPO / "cluster.yaml").read_text())
    _launcher_checked(spec)
    # the plain Ray image at the installed Ray version, in the documented {version}-py{XY}-gpu form
    # (ray-ml images stopped after 2.49)
    assert spec["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    assert any("[gpu,trackers]" in c and "$HOME" in c for c in spec["setup_commands"])
    broken = copy.deepcopy(spec)
    broken["available_node_types"]["head"]["resourcez"] = {"CPU": 16}  # a typo `ray up` would refuse
    with pytest.raises(jsonschema.ValidationError, match="'resourcez' was unexpected"):
        _launcher_checked(broken)
