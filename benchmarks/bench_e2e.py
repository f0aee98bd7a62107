"""End to end: empathy-ray GRPO steps vs TRL's GRPOTrainer on identical settings, same machine, same run.

Same model folder, same training prompts (the chat prompt ids, decoded for TRL), B prompts x G
answers, max new tokens, learning rate, clip, group-normalised advantages, token-mean loss, one
learner, no KL term, and the same reward code (`RewardScorer`, rule terms only). empathy-ray runs its
roles as Ray actors (vLLM rollout worker, DeepSpeed ZeRO-2 learner, reward actor, object-store weight
sync); TRL runs everything in one process with transformers `generate`. The first step of each
side is a warm-up and is not counted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, TRL_SITE, fmt, grpo_steps, model_dir, run_json, stat, target

SIZES = {
    "full": {"preset": "demo", "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 128},
    "tiny": {"preset": "test", "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 8},
}
RULE_REWARD = {"rm_weight": 0.0, "format_weight": 0.0, "length_weight": 1.0, "length_target": 200}
THREADS = 2  # CPUs each side may use for compute: TRL's process; our rollout worker and learner each


def _overrides(s: dict[str, Any], model: Path, out: Path) -> list[str]:
    return [
        f"run.output_root={out}",
        f"model.path={model}",
        f"rl.policy_model={model}",
        "rl.reward_model=none",
        *[f"rl.reward.{k}={v}" for k, v in RULE_REWARD.items()],
        f"rl.prompts_per_step={s['prompts_per_step']}",
        f"rl.algo.group_size={s['group_size']}",
        "rl.algo.kl_coef=0",
        f"rl.rollout.max_new_tokens={s['max_new_tokens']}",
        "rl.rollout.num_workers=1",
        f"rl.rollout.num_cpus={THREADS}",
        "rl.learner.num_workers=1",
        f"rl.learner.num_cpus={THREADS}",
        f"rl.learner.micro_batch_size={s['prompts_per_step'] * s['group_size']}",  # one pass, like TRL
        "rl.checkpoint_every=0",
    ]


def _trl(cfg, s: dict[str, Any], model: Path, steps: int, work: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from empathy_ray.rl.stage import build_prompts

    if not (TRL_SITE / "trl").is_dir():
        raise RuntimeError(f"TRL is not installed in {TRL_SITE}; see benchmarks/README.md (one pip command)")
    tok = AutoTokenizer.from_pretrained(model)
    prompts = [(p.text, tok.decode(p.ids)) for p in build_prompts(cfg, str(model), ("train",))]
    settings = {
        **s,
        "model": str(model),
        "prompts": prompts,
        "steps": steps,
        "seed": cfg.run.seed,
        "lr": cfg.rl.learner.lr,
        "max_grad_norm": cfg.rl.learner.max_grad_norm,
        "clip": cfg.rl.algo.clip_low,
        "max_prompt_tokens": cfg.data.max_prompt_tokens,
        "reward": asdict(cfg.rl.reward),
    }
    (work / "trl-settings.json").write_text(json.dumps(settings), encoding="utf-8")
    out = work / "trl-out.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benchmarks.trl_grpo", str(work / "trl-settings.json"), str(out)]
    env = {"PYTHONPATH": f"{REPO}:{TRL_SITE}", "OMP_NUM_THREADS": str(THREADS)}
    return run_json(cmd, out, timeout_s=3600, env=env)


def run(size: str, repeats: int, work: Path) -> dict[str, Any]:
    from empathy_ray.config import load_config

    s = SIZES[size]
    model = model_dir(work, s["preset"])
    steps = max(repeats, 3) + 1
    n = s["prompts_per_step"] * s["group_size"]
    scratch = Path(tempfile.mkdtemp(prefix="e2e-", dir=work))
    cfg = load_config(None, _overrides(s, model, scratch))
    ours = grpo_steps(cfg, model, steps, always_reference=False)  # TRL with beta=0 has no reference pass
    step_s = [h["time/step_s"] for h in ours["history"][1:]]
    rows = [["empathy-ray GRPO", fmt(stat(step_s), 2), fmt(stat([n / t for t in step_s]), 2)]]
    series = {"samples/s": [stat([n / t for t in step_s])]}
    phases = {
        p: round(stat([h[f"time/{p}_s"] for h in ours["history"][1:]])["median"], 3)
        for p in ("rollout", "reward", "train", "sync")
    }
    notes = [
        f"empathy-ray: roles start in {ours['start_s']:.0f} s (not counted); median phase seconds {phases}."
    ]
    tgt = target("end-to-end samples/s vs TRL", ">= 2x", "TRL side did not run", None)
    try:
        trl = _trl(cfg, s, model, steps, scratch)
        trl_s = trl["step_seconds"][1:]
        rows.append(["TRL GRPOTrainer", fmt(stat(trl_s), 2), fmt(stat([n / t for t in trl_s]), 2)])
        series["samples/s"].append(stat([n / t for t in trl_s]))
        ratio = stat(trl_s)["median"] / stat(step_s)["median"]  # samples/s ours over TRL's
        tgt = target("end-to-end samples/s vs TRL", ">= 2x", f"{ratio:.2f}x", ratio >= 2.0)
        notes.append(f"TRL ran with {trl['threads']} torch threads; {len(trl_s)} measured steps.")
    except Exception as e:  # the table says so; our side's numbers stay valid
        notes.append(f"TRL side failed: {e}")
    return {
        "title": "End to end: empathy-ray GRPO vs TRL GRPOTrainer",
        "settings": {
            "model": f"tiny preset '{s['preset']}'",
            "B": s["prompts_per_step"],
            "G": s["group_size"],
            "max_new_tokens": s["max_new_tokens"],
            "lr": cfg.rl.learner.lr,
            "learner_ranks": 1,
            "reward": "rule terms via RewardScorer " + json.dumps(RULE_REWARD),
            "kl": "none",
            "threads_per_side": THREADS,
            "measured_steps": steps - 1,
        },  # fmt: skip
        "columns": ["system", "s/step", "samples/s"],
        "rows": rows,
        "plot": {
            "x": ["empathy-ray", "TRL"][: len(series["samples/s"])],
            "xlabel": "system",
            "ylabel": "samples/s",
            "series": series,
            "bars": True,
        },  # fmt: skip
        "targets": [tgt],
        "notes": notes,
        "ours_history": ours["history"],
    }
