"""Adapter-only weight sync (rl.sync_lora=adapter): a vLLM rollout worker loads the base once and gets
only a LoRA learner's adapter at each sync, and samples what the learner's merged model scores."""

from __future__ import annotations

import pytest
import torch

from empathy_ray.actors.group import ActorGroup, Pending
from empathy_ray.actors.rollout import RolloutEngine
from empathy_ray.actors.weight_sync import ObjectStoreSync
from empathy_ray.config import ConfigError, RolloutConfig, load_config
from tests.learner_helpers import hf_logprobs, hf_model, max_diff, step_items


def test_adapter_sync_is_the_default_only_where_it_works(tiny_model_dir):
    def rl(*overrides: str):
        return load_config(None, ["rl.learner.lora.enabled=true", *overrides]).rl

    assert rl().adapter_sync and not rl("rl.sync_lora=merged").adapter_sync
    assert not rl("rl.rollout.engine=transformers").adapter_sync and not rl("rl.sync=gloo").adapter_sync
    assert not load_config(None, []).rl.adapter_sync  # no LoRA learner: full weights, as always
    with pytest.raises(ConfigError, match=r"rl.sync_lora=adapter needs rl.rollout.engine=vllm .*rl.sync="):
        rl("rl.sync_lora=adapter", "rl.rollout.engine=transformers", "rl.sync=gloo")
    with pytest.raises(ConfigError, match=r"needs a LoRA learner \(rl.learner.lora.enabled=true\)"):
        load_config(None, ["rl.sync_lora=adapter"])


def test_zero3_gathers_the_whole_adapter_under_peft_names(make_rank, tiny_model_dir):
    """Under ZeRO-3 the adapter's live parameters are shards: the sync gathers them (and only them)."""
    rank = make_rank(lora=True, zero=3)
    rank.train_step(step_items([1.0, -1.0, 0.5, -0.5]))
    adapter, merged = rank.tensors_for_sync(), rank.weights_for_sync()
    base = hf_model(tiny_model_dir).state_dict()
    assert len(adapter) == 2 * 7 * sum(1 for k in base if k.endswith("self_attn.q_proj.weight"))
    name = "base_model.model.model.layers.1.mlp.down_proj"
    a, b = adapter[f"{name}.lora_A.weight"], adapter[f"{name}.lora_B.weight"]
    w = base["model.layers.1.mlp.down_proj.weight"]
    assert a.shape == (4, w.shape[1]) and b.shape == (w.shape[0], 4)  # whole, not ZeRO-3 shards
    delta = merged["model.layers.1.mlp.down_proj.weight"] - w
    assert delta.abs().max() > 0 and torch.allclose(delta, 2.0 * b @ a, atol=1e-7)  # alpha / r = 8 / 4


def _forget_adapter(engine: RolloutEngine) -> None:
    """Put a live engine where a restart by Ray leaves it: the base alone, version 0 (tests/test_sync.py
    restarts real workers; a second vLLM start here would cost ~20 s)."""
    slot = engine._backend.adapter
    engine._backend.llm.llm_engine.remove_lora(slot.request.lora_int_id)
    slot.request, engine.weight_version = None, 0


def test_vllm_worker_takes_only_the_adapter_and_samples_the_learners_policy(
    ray_cluster,
    tiny_model_dir,
    make_rank,
):
    ray = ray_cluster
    rank = make_rank(lora=True)  # r=4, alpha=8; vLLM rollouts, object store: adapter sync
    assert rank.cfg.adapter_sync
    cfg = RolloutConfig(num_workers=1, num_cpus=1, max_new_tokens=8, max_model_len=128)
    group = ActorGroup.start(
        "rollout", RolloutEngine, cfg, (str(tiny_model_dir), cfg, 0, rank.cfg.learner.lora), 1
    )
    try:
        group.wait_ready(timeout_s=600)
        worker = group.actors[0]
        sync = ObjectStoreSync(group.actors, lambda: Pending(rank.tensors_for_sync))
        adapter = {n: p for n, p in rank.engine.module.named_parameters() if "lora_" in n}
        adapter_bytes = sum(p.numel() * p.element_size() for p in adapter.values())
        model_bytes = sum(
            t.numel() * t.element_size() for t in hf_model(tiny_model_dir).state_dict().values()
        )
        prompts = [[3, 4, 5, 6], [7, 8, 9]]
        previous = None
        for version, advantages in ((1, [1.0, -1.0, 0.5, -0.5]), (2, [-1.0, 1.0, 1.0, -1.0])):
            rank.train_step(step_items(advantages))
            stats = sync.publish(version).result()
            assert stats.version == version and stats.bytes == adapter_bytes
            if version == 2:  # a restarted worker has the base alone; resync gives it the newest adapter
                ray.get(worker.__ray_call__.remote(_forget_adapter))
                assert ray.get(worker.get_weight_version.remote()) == 0
                sync.resync(0)
            samples = ray.get(worker.generate.remote(prompts, 2, 0))
            assert {s.weight_version for s in samples} == {version}
            pairs = [(s.prompt_ids, s.response_ids) for s in samples]
            merged = hf_logprobs(hf_model(tiny_model_dir, rank.weights_for_sync()), pairs)
            gap = max_diff([s.logprobs for s in samples], merged)
            print(
                f"v{version}: {stats.bytes} adapter bytes of {model_bytes}; vLLM vs merged HF max {gap:.2e}"
            )
            assert gap < 1e-4
            if previous is not None:  # the second adapter moved the policy: the same tokens score otherwise
                assert max_diff(hf_logprobs(previous, pairs), merged) > 1e-3
            previous = hf_model(tiny_model_dir, rank.weights_for_sync())
        assert adapter_bytes < model_bytes / 10
    finally:
        group.shutdown()
