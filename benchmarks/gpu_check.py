"""GPU check, for one H100/H200 with torch, transformers, peft, Ray and DeepSpeed (no vLLM needed).

    python benchmarks/gpu_check.py --out results.json

1. The SFT stage as a real Ray Train job on the GPU (1 worker, NCCL backend, DeepSpeed ZeRO-2, bf16)
   on the tiny demo model and the embedded samples: it must run and lower the loss.
2. The GRPO learner's update (`LearnerRank.train_step`: DeepSpeed ZeRO-2, bf16, chunked log-probs,
   clipped policy loss) on a Qwen2-0.5B-shaped random model: tokens/s and MFU against a bf16 matmul
   rate measured on the same card in the same run.
3. The reference actor's log-prob throughput on the same model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def matmul_tflops(n: int = 8192, iters: int = 20) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - t0) / 1e12


def qwen05_dir(root: Path) -> tuple[str, int]:
    """A Qwen2-0.5B-shaped random model (vocab 151,936) with the tiny tokenizer's files beside it."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from empathy_ray.modeling.tiny import build_tiny_model

    tiny = build_tiny_model(root / "tiny-test", preset="test")
    cfg = Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(cfg)
    out = root / "qwen05"
    model.save_pretrained(out)
    for f in tiny.glob("tokenizer*"):
        (out / f.name).write_bytes(f.read_bytes())
    return str(out), sum(p.numel() for p in model.parameters())


def sft_on_gpu(root: Path) -> dict:
    import ray

    from empathy_ray.config import load_config
    from empathy_ray.pipeline import run_stages
    from empathy_ray.runtime.process import setup_process, worker_env

    setup_process()
    ray.init(runtime_env={"env_vars": worker_env()}, include_dashboard=False)
    cfg = load_config(
        None,
        [f"run.output_root={root}", "run.name=gpu", "sft.num_gpus=1", "sft.num_workers=1", "sft.bf16=true",
         "sft.epochs=6", "sft.micro_batch_size=8", "sft.eval_engine=transformers", "sft.eval_prompts=4",
         "sft.eval_max_new_tokens=64"],
    )  # fmt: skip
    t0 = time.perf_counter()
    summary = run_stages(cfg, ["sft"])["sft"]
    ray.shutdown()
    keys = (
        "loss_first",
        "loss_last",
        "eval_loss_first",
        "eval_loss_last",
        "coe_validity",
        "eval_engine",
        "wall_s",
    )
    return {**{k: summary[k] for k in keys}, "stage_wall_s": time.perf_counter() - t0}


def learner_step(model_dir: str, n_params: int, peak: float, prompt: int = 256, response: int = 768) -> dict:
    from empathy_ray.actors.learner import LearnerRank
    from empathy_ray.config import AlgoConfig, LearnerConfig, RLConfig, RolloutConfig
    from empathy_ray.runtime.placement import free_port
    from empathy_ray.runtime.process import setup_process

    setup_process()  # what an actor of the learner group gets before LearnerRank starts

    cfg = RLConfig(
        prompts_per_step=2, algo=AlgoConfig(group_size=4), rollout=RolloutConfig(max_new_tokens=response),
        learner=LearnerConfig(num_workers=1, num_gpus=1, zero_stage=2, bf16=True, micro_batch_size=8, lr=1e-6),
    )  # fmt: skip
    rank = LearnerRank(model_dir, cfg, 0, 1)
    rank.setup("127.0.0.1", free_port())
    g = torch.Generator().manual_seed(0)
    items = [
        {
            "prompt_ids": torch.randint(100, 150000, (prompt,), generator=g).tolist(),
            "response_ids": torch.randint(100, 150000, (response,), generator=g).tolist(),
            "advantage": float(i % 2) - 0.5,
            "ref_logprobs": [],
        }
        for i in range(8)
    ]
    times = []
    for _ in range(5):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        stats = rank.train_step(items)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[1:])
    tokens = 8 * (prompt + response)
    # one extra no-grad forward for old log-probs only when inner_epochs > 1 (not here): 6*N*T flops
    mfu = 6 * n_params * tokens / step / (peak * 1e12)
    lp_times = []
    pairs = [(it["prompt_ids"], it["response_ids"]) for it in items]
    for _ in range(3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        rank.logprobs(pairs)
        torch.cuda.synchronize()
        lp_times.append(time.perf_counter() - t0)
    lp = statistics.median(lp_times[1:])
    return {
        "step_s_median": step,
        "step_s_all": times,
        "tokens_per_s": tokens / step,
        "mfu": mfu,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9,
        "policy_loss": stats["train/policy_loss"],
        "logprob_tokens_per_s": tokens / lp,
        "settings": "ZeRO-2 bf16, 1 rank, micro-batch 8 x (256 prompt + 768 response), no grad checkpointing",
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--skip-sft", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("EMPATHY_RAY_CACHE", tempfile.mkdtemp(prefix="er-cache-"))
    root = Path(tempfile.mkdtemp(prefix="er-gpu-"))
    result: dict = {"card": torch.cuda.get_device_name(0), "torch": torch.__version__}
    result["bf16_matmul_tflops"] = matmul_tflops()
    print(json.dumps(result), flush=True)
    if not args.skip_sft:
        result["sft_ray_train_gpu"] = sft_on_gpu(root)
        print(json.dumps(result["sft_ray_train_gpu"]), flush=True)
    model_dir, n_params = qwen05_dir(root)
    result["params"] = n_params
    result["learner_qwen05"] = learner_step(model_dir, n_params, result["bf16_matmul_tflops"])
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
