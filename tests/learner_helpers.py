"""What the in-process learner tests share (tests/test_learner.py, test_precision.py,
test_learner_adapter_sync.py): a small RL config, a step's items, and the plain HF definition of
per-token log-probs the learner must match. The one-rank process group and `make_rank` are fixtures
in conftest.py, defined once: DeepSpeed keeps the first process group it sees, so the session must
never build a second one."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from empathy_ray.config import AlgoConfig, LearnerConfig, LoraConfig, RLConfig, RolloutConfig


def rl_config(
    workers: int = 1,
    zero: int = 2,
    mbs: int = 2,
    lora: bool = False,
    inner_epochs: int = 1,
    kl_coef: float = 0.0,
    temperature: float = 1.0,
    agg: str = "token_mean",
    tis_cap: float = 2.0,
    **learner,
) -> RLConfig:
    """4 samples per step (2 prompts x 2), lr large enough for one step to show on a tiny model;
    `learner` sets further rl.learner keys."""
    return RLConfig(
        prompts_per_step=2,
        algo=AlgoConfig(group_size=2, kl_coef=kl_coef, agg=agg, tis_cap=tis_cap),
        rollout=RolloutConfig(max_new_tokens=8, temperature=temperature),
        learner=LearnerConfig(
            num_workers=workers,
            zero_stage=zero,
            micro_batch_size=mbs,
            lr=1e-2 if lora else 1e-3,
            inner_epochs=inner_epochs,
            lora=LoraConfig(enabled=lora, r=4, alpha=8),
            **learner,
        ),
    )


def step_items(advantages: list[float], ref: list[list[float]] | None = None) -> list[dict]:
    pairs = [
        ([3, 4, 5], [100, 101, 102, 103]),
        ([6, 7], [200, 201, 202]),
        ([8, 9, 10, 11], [300, 301]),
        ([12], [400]),
    ]
    return [
        {"prompt_ids": p, "response_ids": r, "advantage": a, "ref_logprobs": ref[i] if ref else []}
        for i, ((p, r), a) in enumerate(zip(pairs, advantages, strict=True))
    ]


def hf_logprobs(model: torch.nn.Module, pairs, temperature: float = 1.0) -> list[list[float]]:
    """One unpadded forward per row, float64 log_softmax at the sampling temperature: the definition
    the learner must match."""
    out = []
    with torch.no_grad():
        for p, r in pairs:
            logits = model(input_ids=torch.tensor([p + r])).logits[0].double()
            logp = torch.log_softmax(logits / temperature, dim=-1)
            out.append([float(logp[len(p) - 1 + j, tok]) for j, tok in enumerate(r)])
    return out


def hf_model(model_dir, state: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if state is not None:
        model.load_state_dict(state, strict=True)
    return model


def max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    assert [len(x) for x in a] == [len(x) for x in b]
    return max(
        (abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)), default=0.0
    )
