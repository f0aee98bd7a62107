"""Rollout throughput: the vLLM rollout worker vs transformers `generate`, same model, same prompts.

Both sides are `RolloutEngine` (the class inside every rollout actor), so both return what the
learner needs: token ids and the sampling logprob of each token (temperature 1, top-p 1). Each
engine runs in its own process (vLLM lowers the torch thread count of the process it lives in);
one round starts both, one after the other, and the rounds repeat, so a busy spell on the machine
hits both sides alike. Tokens/s counts the tokens actually generated (an early EOS counts less).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import fmt, model_dir, run_json, sample_prompts, stat, target

SIZES = {
    "full": {"preset": "bench", "batches": (1, 16, 64), "new_tokens": 128},
    "tiny": {"preset": "test", "batches": (1, 4), "new_tokens": 8},
}
ENGINES = ("vllm", "transformers")


def worker(engine: str, model: str, batches: list[int], new_tokens: int) -> dict[str, Any]:
    """Start one engine, warm it up, then one timed call per batch size."""
    from empathy_ray.actors.rollout import RolloutEngine
    from empathy_ray.config import RolloutConfig

    t0 = time.perf_counter()
    eng = RolloutEngine(model, RolloutConfig(engine=engine, max_new_tokens=new_tokens, max_model_len=512))
    start_s = time.perf_counter() - t0
    prompts = [ids for _, ids in sample_prompts(Path(model), max(batches))]
    eng.generate(prompts[:2], 1, step=0)  # warm-up: first-call allocations
    out: dict[str, Any] = {"start_s": start_s}
    for b in batches:
        t0 = time.perf_counter()
        samples = eng.generate(prompts[:b], 1, step=b)
        secs = time.perf_counter() - t0
        out[str(b)] = {"seconds": secs, "tokens": sum(len(s.response_ids) for s in samples)}
    return out


def run(size: str, repeats: int, work: Path) -> dict[str, Any]:
    import sys

    s = SIZES[size]
    model = model_dir(work, s["preset"])
    batches = list(s["batches"])
    tps: dict[str, dict[int, list[float]]] = {e: {b: [] for b in batches} for e in ENGINES}
    starts: dict[str, list[float]] = {e: [] for e in ENGINES}
    ratios: dict[int, list[float]] = {b: [] for b in batches}
    for _ in range(repeats):
        got = {}
        for e in ENGINES:
            out = work / f"rollout-{e}.json"
            out.unlink(missing_ok=True)
            cmd = [sys.executable, "-m", "benchmarks.bench_rollout", "--engine", e, "--model", str(model),
                   "--batches", ",".join(map(str, batches)), "--new-tokens", str(s["new_tokens"]), "--out", str(out)]  # fmt: skip
            got[e] = run_json(cmd, out, timeout_s=1800)
            starts[e].append(got[e]["start_s"])
            for b in batches:
                tps[e][b].append(got[e][str(b)]["tokens"] / got[e][str(b)]["seconds"])
        for b in batches:
            ratios[b].append(tps["vllm"][b][-1] / tps["transformers"][b][-1])
    rows, series = [], {e: [] for e in ENGINES}
    for b in batches:
        v, h, q = stat(tps["vllm"][b]), stat(tps["transformers"][b]), stat(ratios[b])
        rows.append([b, fmt(v), fmt(h), fmt(q, 2)])
        series["vllm"].append(v)
        series["transformers"].append(h)
    check = 64 if 64 in batches else batches[-1]
    ratio = stat(ratios[check])
    return {
        "title": "Rollout: vLLM rollout worker vs transformers generate",
        "settings": {
            "model": f"tiny preset '{s['preset']}' (random Qwen2)",
            "new_tokens": s["new_tokens"],
            "temperature": 1.0,
            "dtype": "float32",
            "repeats": repeats,
            "engine_start_s": {e: round(stat(v)["median"], 1) for e, v in starts.items()},
        },  # fmt: skip
        "columns": ["batch", "vLLM tokens/s", "transformers tokens/s", "ratio (paired per round)"],
        "rows": rows,
        "plot": {
            "x": batches,
            "xlabel": "batch (sequences)",
            "ylabel": "generated tokens/s",
            "series": series,
            "bars": True,
        },  # fmt: skip
        "targets": [
            target(
                f"rollout vLLM / transformers at batch {check}",
                ">= 2x",
                f"{ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]",
                ratio["median"] >= 2.0,
            )  # fmt: skip
        ],
    }


if __name__ == "__main__":
    from empathy_ray.runtime.process import setup_process

    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=ENGINES, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", required=True)
    ap.add_argument("--new-tokens", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    setup_process()
    res = worker(a.engine, a.model, [int(b) for b in a.batches.split(",")], a.new_tokens)
    Path(a.out).write_text(json.dumps(res), encoding="utf-8")
