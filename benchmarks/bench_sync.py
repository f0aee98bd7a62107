"""Weight sync: what the real GRPO steps of the demo recipe spend publishing the learner's weights.

The demo recipe as is (demo model, 2 vLLM rollout workers, 2 DeepSpeed learner ranks, reference
actor, object-store sync), only with the rule reward instead of a trained reward model. Each step's
sync (learner state dict -> one `ray.put` -> every worker loads it into vLLM) is timed by the driver;
beside it, a plain in-memory copy of the same number of bytes in this process is the floor.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import fmt, grpo_steps, model_dir, stat, target

SIZES = {
    "full": {"preset": "demo", "overrides": []},
    "tiny": {"preset": "test", "overrides": ["rl.prompts_per_step=2", "rl.algo.group_size=2",
             "rl.rollout.max_new_tokens=8", "rl.rollout.num_workers=1", "rl.learner.num_workers=1"]},
}  # fmt: skip


def raw_copy_seconds(nbytes: int, repeats: int) -> list[float]:
    """torch copy of nbytes between two preallocated CPU buffers (after one untimed copy)."""
    import torch

    src = torch.randint(0, 255, (nbytes,), dtype=torch.uint8)
    dst = torch.empty_like(src)
    dst.copy_(src)
    out = []
    for _ in range(max(repeats, 5)):
        t0 = time.perf_counter()
        dst.copy_(src)
        out.append(time.perf_counter() - t0)
    return out


def run(size: str, repeats: int, work: Path) -> dict[str, Any]:
    from empathy_ray.config import load_config

    s = SIZES[size]
    model = model_dir(work, s["preset"])
    scratch = Path(tempfile.mkdtemp(prefix="sync-", dir=work))
    cfg = load_config(
        None,
        [f"run.output_root={scratch}", f"model.path={model}", f"rl.policy_model={model}",
         "rl.reward_model=none", "rl.reward.rm_weight=0", "rl.checkpoint_every=0", *s["overrides"]],
    )  # fmt: skip
    hist = grpo_steps(cfg, model, max(repeats, 3) + 1)["history"][1:]  # first step: warm-up
    nbytes = int(hist[0]["sync/bytes"])
    sync_s = stat([h["sync/seconds"] for h in hist])
    step_s = stat([h["time/step_s"] for h in hist])
    share = stat([h["sync/seconds"] / h["time/step_s"] for h in hist])
    raw = stat(raw_copy_seconds(nbytes, repeats))
    gbps = stat([nbytes / t / 1e9 for t in sync_s["values"]])
    raw_gbps = stat([nbytes / t / 1e9 for t in raw["values"]])
    w = cfg.rl.rollout.num_workers
    return {
        "title": "Weight sync (object store) on the demo recipe",
        "settings": {
            "model": f"tiny preset '{s['preset']}'",
            "rollout_workers": w,
            "learner_ranks": cfg.rl.learner.num_workers,
            "transport": cfg.rl.sync,
            "B": cfg.rl.prompts_per_step,
            "G": cfg.rl.algo.group_size,
            "max_new_tokens": cfg.rl.rollout.max_new_tokens,
            "measured_steps": len(hist),
        },  # fmt: skip
        "columns": ["what", "bytes", "seconds", "GB/s"],
        "rows": [
            [f"sync to {w} workers", f"{nbytes / 1e6:.1f} MB", fmt(sync_s, 3), fmt(gbps, 3)],
            ["raw in-memory copy", f"{nbytes / 1e6:.1f} MB", fmt(raw, 5), fmt(raw_gbps, 2)],
            ["GRPO step", "", fmt(step_s, 2), ""],
        ],
        "notes": [
            f"Sync share of step time: {fmt(share, 3)} (fraction); sync is "
            f"{sync_s['median'] / raw['median']:.0f}x the raw copy of the same bytes."
        ],  # fmt: skip
        "targets": [
            target(
                "sync time / step time (demo model)",
                "<= 5 %",
                f"{100 * share['median']:.2f} %",
                share["median"] <= 0.05,
            )  # fmt: skip
        ],
        "history": hist,
    }
