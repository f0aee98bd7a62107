"""One-GPU smoke run of the path a cluster user takes, sized to finish in minutes.

1. SFT and the RM as Ray Train jobs on the GPU, in bf16 with gradient checkpointing.
2. Three GRPO steps with the rollout worker, learner, reference and reward actor sharing the one GPU
   through fractional GPU resources (0.3 + 0.3 + 0.2 + 0.2), the learner in bf16.
Prints per-phase seconds, peak GPU memory per role and the learner's MFU (6 x params x tokens per
second against a bf16 matmul rate measured on the same card), and writes them to a JSON file.

On a lent GPU, whose image has torch and transformers but no Ray, vLLM or DeepSpeed, carry the wheels
from ../shared/tools/gpu-wheels.sh (plus opencc and pypinyin) as .whl/ and use the transformers
rollout engine (CUDA vLLM is too big to carry):
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_smoke.py --out $OUT/gpu_smoke.json
On CPU (CI runs this through tests/test_gpu_smoke.py so the script cannot rot):
    python benchmarks/gpu_smoke.py --tiny --out /tmp/gpu_smoke.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# the four RL roles' share of the one GPU
FRACTIONS = {"rollout": 0.3, "learner": 0.3, "reward": 0.2, "reference": 0.2}


def peak_flops(gpu: bool) -> float:
    """Measured matmul rate in FLOP/s: bf16 on the GPU, fp32 on CPU (the MFU denominator)."""
    n, iters = (8192, 20) if gpu else (512, 5)
    kw = {"device": "cuda", "dtype": torch.bfloat16} if gpu else {"dtype": torch.float32}
    a, b = torch.randn(n, n, **kw), torch.randn(n, n, **kw)
    a @ b
    if gpu:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    if gpu:
        torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - t0)


def overrides(work: Path, gpu: bool) -> list[str]:
    """The run's config: every stage on the GPU in bf16 with gradient checkpointing (fp32 on CPU,
    where DeepSpeed's bf16 path is slow), the rollout engine named explicitly."""
    dev = ["sft.num_gpus=1", "rm.num_gpus=1", "eval.num_gpus=1"] if gpu else []
    dev += [f"rl.{role}.num_gpus={share}" for role, share in FRACTIONS.items()] if gpu else []
    bf16 = [
        f"{key}.bf16={str(gpu).lower()}" for key in ("sft", "rm", "rl.learner", "rl.reference", "rl.reward")
    ]
    checkpointing = [f"{key}.gradient_checkpointing=true" for key in ("sft", "rm", "rl.learner")]
    return [
        f"run.output_root={work}",
        "run.name=smoke",
        "sft.epochs=2" if gpu else "sft.epochs=1",
        "sft.eval_engine=transformers",
        "sft.eval_prompts=2",
        "sft.eval_max_new_tokens=32",
        "rm.epochs=1",
        "data.max_prompt_tokens=128",
        "data.max_response_tokens=160",
        "rl.rollout.engine=transformers",
        "rl.rollout.num_workers=1",
        "rl.learner.num_workers=1",
        "rl.prompts_per_step=4",
        "rl.algo.group_size=4",
        "rl.learner.micro_batch_size=4",
        f"rl.rollout.max_new_tokens={128 if gpu else 16}",
        *dev,
        *bf16,
        *checkpointing,
    ]


def _peak_memory(_self: object) -> int:
    """Runs inside a role's actor: peak GPU bytes allocated there, or peak RSS on CPU."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def grpo_steps(cfg, policy: str, rm: str, steps: int) -> dict:
    """`steps` GRPO steps on the real roles; per-step metrics and each role's peak memory."""
    import ray

    from empathy_ray.actors.roles import Roles
    from empathy_ray.rl.driver import GRPODriver
    from empathy_ray.rl.stage import build_prompts

    roles = Roles.create(cfg, policy, rm)
    try:
        prompts = build_prompts(cfg, policy, ("train",))
        driver = GRPODriver(cfg, Path(cfg.run.output_root) / cfg.run.name / "grpo-smoke", prompts, roles)
        metrics = [driver.run_step() for _ in range(steps)]
        groups = {
            "rollout": roles.rollout.actors,
            "learner": roles.learners.group.actors,
            "reward": roles.reward.actors,
            "reference": roles.reference.actors,
        }
        peaks = {
            role: max(ray.get([a.__ray_call__.remote(_peak_memory) for a in actors]))
            for role, actors in groups.items()
        }
        mean_prompt = sum(len(p.ids) for p in prompts) / len(prompts)
    finally:
        roles.shutdown()
    return {"metrics": metrics, "peak_bytes": peaks, "mean_prompt_tokens": mean_prompt}


def learner_mfu(step: dict, mean_prompt: float, n_params: int, flops: float) -> float:
    """6 x N x tokens / train seconds / measured peak: forward + backward of every trained token."""
    tokens = step["rollout/samples"] * (mean_prompt + step["rollout/response_len_mean"])
    return 6 * n_params * tokens / max(step["time/train_s"], 1e-9) / flops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="CPU, the test-sized model: a check that it runs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    gpu = not args.tiny
    if gpu and not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA device; use --tiny on CPU")
    with tempfile.TemporaryDirectory() as tmp:
        return run(Path(args.work or tmp), gpu, args.steps, args.out)


def run(work: Path, gpu: bool, steps: int, out: Path) -> int:
    import ray

    from empathy_ray.config import load_config
    from empathy_ray.modeling.tiny import build_tiny_model
    from empathy_ray.pipeline import run_stages
    from empathy_ray.runtime.process import setup_process, worker_env
    from empathy_ray.runtime.run_dir import RunLayout

    setup_process()
    model = build_tiny_model(work / "base", preset="demo" if gpu else "test")
    n_params = sum(t.numel() for t in _weights(model))
    cfg = load_config(None, [f"model.path={model}", *overrides(work, gpu)])
    # a Ray of its own (never a cluster already running here), with the config's logical CPUs: enough
    # for every role on a small box
    env = {"env_vars": worker_env()}
    ray.init(address="local", num_cpus=cfg.ray.num_cpus, runtime_env=env, include_dashboard=False)
    t0 = time.perf_counter()
    summary = run_stages(cfg, ["sft", "rm"])
    sft_s = time.perf_counter() - t0
    layout = RunLayout.of(cfg)
    grpo = grpo_steps(cfg, str(layout.sft_model), str(layout.rm_model), steps)
    ray.shutdown()
    flops = peak_flops(gpu)
    last = grpo["metrics"][-1]
    result = {
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "mode": "gpu" if gpu else "tiny-cpu",
        "params": n_params,
        "sft": {k: summary["sft"].get(k) for k in ("loss_first", "loss_last", "coe_validity", "wall_s")},
        "rm": {k: summary["rm"].get(k) for k in ("pairwise_accuracy", "wall_s")},
        "sft_and_rm_wall_s": round(sft_s, 2),
        "grpo_phase_s": [{k: v for k, v in m.items() if k.startswith("time/")} for m in grpo["metrics"]],
        "peak_memory_gib": {r: round(b / 2**30, 3) for r, b in grpo["peak_bytes"].items()},
        "peak_flops": flops,
        "learner_mfu": learner_mfu(last, grpo["mean_prompt_tokens"], n_params, flops),
        "run_dir": str(layout.dir),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(
        json.dumps(
            {k: result[k] for k in ("device", "grpo_phase_s", "peak_memory_gib", "learner_mfu")}, indent=1
        )
    )
    return 0


def _weights(model_dir: Path) -> list[torch.Tensor]:
    from safetensors.torch import load_file

    return list(load_file(str(model_dir / "model.safetensors")).values())


if __name__ == "__main__":
    sys.exit(main())
