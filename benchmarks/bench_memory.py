"""Learner memory and step time, and LoRA sync bytes (issue 12's benchmark part).

    python benchmarks/bench_memory.py                       # 8 learner settings + sync bytes
    python benchmarks/bench_memory.py --lengths 256 --steps 1 --name smoke

Each learner setting runs in a fresh process: one `LearnerRank` (the real learner, one rank, ZeRO-2
unless `--zero 3`) on the `bench` preset (~100M parameters, the offline 6k-token vocabulary), a step
of one prompt x `--group` replies of exactly `--lengths` tokens in one micro-batch, fp32 or bf16, with
or without gradient checkpointing. On CPU torch keeps no allocator statistics, so memory is the
process's resident set from the kernel: `VmRSS` after the rank is set up, then `VmHWM` (the peak)
over the timed steps after resetting it through /proc/self/clear_refs. The peak therefore includes
the weights, AdamW's states, DeepSpeed's buffers and the step's activations and logits; the step's
own share is peak minus set-up. The first step is a warm-up, timed apart (it allocates AdamW).

Sync bytes: the same learner with LoRA, what `weights_for_sync()` ships (the merged full weights)
against what `tensors_for_sync()` ships with rl.sync_lora=adapter (the adapter alone), in fp32 and bf16; and
both counted from the module shapes of a Qwen2.5-7B-sized model built on the meta device (no
memory) with the 7B recipe's LoRA rank. Results: benchmarks/results/<date>-<host>-memory.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import REPO, loadavg, machine, model_dir, sample_prompts, stat  # noqa: E402

# Qwen2.5-7B-Instruct's shapes (its config.json) and configs/cluster-7b.yaml's learner LoRA rank
QWEN7B = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
          "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
          "tie_word_embeddings": False}  # fmt: skip
RECIPE_RANK = 64


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _learner(model: Path, overrides: list[str]):
    """One set-up learner rank on a one-rank gloo group, with the bench's RL settings."""
    from empathy_ray.actors.learner import LearnerRank
    from empathy_ray.config import load_config
    from empathy_ray.runtime.placement import free_port

    cfg = load_config(None, [f"model.path={model}", "rl.learner.num_workers=1", "rl.algo.kl_coef=0",
                             "rl.steps=100", *overrides])  # fmt: skip
    rank = LearnerRank(str(model), cfg.rl, rank=0, world_size=1, seed=0)
    rank.setup("127.0.0.1", free_port())
    return rank


def learner_setting(model: Path, length: int, group: int, bf16: bool, checkpointing: bool,
                    steps: int, zero: int) -> dict[str, Any]:  # fmt: skip
    """Peak resident memory and step time of one learner setting (run in its own process)."""
    import torch

    prompts = sample_prompts(model, 1, max_tokens=256)
    rank = _learner(
        model,
        # the replies as `group` one-answer prompts: the estimator (not used here) then accepts 1
        [f"rl.prompts_per_step={group}", "rl.algo.group_size=1", "rl.algo.estimator=reinforce_pp",
         f"rl.learner.micro_batch_size={group}",
         f"rl.learner.bf16={str(bf16).lower()}", f"rl.learner.zero_stage={zero}",
         f"rl.learner.gradient_checkpointing={str(checkpointing).lower()}"],
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    items = [
        {"prompt_ids": prompts[0][1], "advantage": 1.0 if i % 2 == 0 else -1.0, "ref_logprobs": [],
         "response_ids": torch.randint(200, 5000, (length,), generator=gen).tolist()}
        for i in range(group)
    ]  # fmt: skip
    warmup_s, first = None, None
    if steps > 0:  # a warm-up step first: it allocates AdamW's states
        t0 = time.perf_counter()
        first = rank.train_step(items)
        warmup_s = time.perf_counter() - t0
    rest_kib = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    times = []
    for _ in range(max(steps, 1)):  # steps=0: the first step alone, AdamW's allocation included
        t0 = time.perf_counter()
        st = rank.train_step(items)
        times.append(time.perf_counter() - t0)
    peak_kib = _status_kib("VmHWM")
    return {
        "reply_tokens": length,
        "prompt_tokens": len(prompts[0][1]),
        "samples": group,
        "dtype": "bf16" if bf16 else "fp32",
        "gradient_checkpointing": checkpointing,
        "zero_stage": zero,
        "rss_before_timed_mib": rest_kib / 1024,
        "peak_rss_mib": peak_kib / 1024,
        "step_peak_over_rest_mib": (peak_kib - rest_kib) / 1024,
        "warmup_step_s": warmup_s,
        "step_s": stat(times),
        "tokens_per_s": stat([group * (length + len(prompts[0][1])) / t for t in times]),
        "loss_finite": all(math.isfinite(x["train/pg_loss"]) for x in (first or st, st)),
        "torch_threads": torch.get_num_threads(),
    }


def _nbytes(state: dict) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def sync_bytes(model: Path, rank_r: int) -> dict[str, Any]:
    """Merged vs adapter-only bytes of a LoRA learner on the bench model, fp32 and bf16 (measured): what
    `weights_for_sync()` (merged sync) and `tensors_for_sync()` with rl.sync_lora=adapter ship."""
    out = {}
    for bf16 in (False, True):
        rank = _learner(
            model,
            ["rl.prompts_per_step=1", "rl.algo.group_size=2", "rl.learner.micro_batch_size=2",
             f"rl.learner.bf16={str(bf16).lower()}", "rl.learner.lora.enabled=true",
             f"rl.learner.lora.r={rank_r}", f"rl.learner.lora.alpha={2 * rank_r}",
             "rl.rollout.engine=vllm", "rl.sync=object_store", "rl.sync_lora=adapter"],
        )  # fmt: skip
        t0 = time.perf_counter()
        merged = rank.weights_for_sync()
        merge_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        adapter = rank.tensors_for_sync()
        adapter_s = time.perf_counter() - t0
        out["bf16" if bf16 else "fp32"] = {
            "merged_bytes": _nbytes(merged),
            "adapter_bytes": _nbytes(adapter),
            "adapter_tensors": len(adapter),
            "merge_gather_s": merge_s,
            "adapter_gather_s": adapter_s,
        }
        del rank
    return {"lora_r": rank_r, "by_dtype": out}


def counted_7b(rank_r: int, targets: list[str]) -> dict[str, Any]:
    """Merged vs adapter bytes of a Qwen2.5-7B-sized model, counted from its modules' shapes (meta)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**QWEN7B))
    params = sum(p.numel() for p in model.parameters())
    adapter = sum(
        rank_r * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets
    )
    return {"params": params, "adapter_params": adapter, "lora_r": rank_r, "targets": targets,
            "merged_bytes_bf16": 2 * params, "adapter_bytes_bf16": 2 * adapter}  # fmt: skip


def _child(args: argparse.Namespace) -> dict[str, Any]:
    from empathy_ray.config import LoraConfig
    from empathy_ray.runtime.process import setup_process

    setup_process()
    model = model_dir(Path(args.work), "bench")
    if args.child == "sync":
        return {"bench": sync_bytes(model, args.lora_r),
                "qwen2.5-7b": counted_7b(RECIPE_RANK, LoraConfig().target_modules)}  # fmt: skip
    length, dtype, gc = args.child.split(":")
    return learner_setting(model, int(length), args.group, dtype == "bf16", gc == "gc", args.steps, args.zero)


def _run_child(args: argparse.Namespace, child: str, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", child, "--child-out", str(out), "--work", args.work,
           "--steps", str(args.steps), "--group", str(args.group), "--zero", str(args.zero),
           "--lora-r", str(args.lora_r)]  # fmt: skip
    load, t0 = loadavg(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        part = {"error": "\n".join(proc.stderr.splitlines()[-15:])}
    else:
        part = json.loads(out.read_text(encoding="utf-8"))
    part |= {"wall_s": time.perf_counter() - t0, "loadavg_before": load, "loadavg_after": loadavg()}
    print(f"[{child}] {part['wall_s']:.0f} s{' FAILED' if 'error' in part else ''}", flush=True)
    return part


def _replies(n: int) -> str:
    return "1 reply" if n == 1 else f"{n} replies"


def _timed(steps: int) -> str:
    if steps == 0:
        return "the first step alone, timed and measured (AdamW allocates its states in it)"
    return f"{steps} timed steps after a warm-up step"


def _markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Learner memory and step time, LoRA sync bytes ({results['started']})",
        "",
        f"Machine: {m['cpu_model']}, {m['cpus_usable']} usable cores, {m['ram_gib']} GiB, GPU {m['gpu']}; "
        f"torch {m['versions']['torch']}, deepspeed {m['versions']['deepspeed']}, commit {m['git_commit']}. "
        f"Load average {results['loadavg_start']} at the start (the cores are shared: read times against it).",
        "",
        f"`bench` preset, one learner rank (ZeRO-{results['zero']}), {_replies(results['group'])} to one prompt in "
        f"one micro-batch; {_timed(results['steps'])}. Memory: the process's resident set in MiB: VmRSS "
        "before the timed steps (weights, DeepSpeed's buffers and, after a warm-up, AdamW's states), "
        "VmHWM over them, and the difference (gradients, activations, logits).",
        "",
        "| reply tokens | dtype | grad. ckpt | RSS before | peak RSS | peak over before | step s | tokens/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results["learner"].items():
        if "error" in r:
            lines.append(f"| {key} | failed: {r['error'].splitlines()[-1][:80]} |||||||")
            continue
        lines.append(
            f"| {r['reply_tokens']} | {r['dtype']} | {'on' if r['gradient_checkpointing'] else 'off'} | "
            f"{r['rss_before_timed_mib']:.0f} | {r['peak_rss_mib']:.0f} | {r['step_peak_over_rest_mib']:.0f} | "
            f"{r['step_s']['median']:.1f} [{r['step_s']['min']:.1f}–{r['step_s']['max']:.1f}] | "
            f"{r['tokens_per_s']['median']:.0f} |"
        )
    sync = results.get("sync", {})
    if "bench" in sync:
        lines += ["", f"Sync bytes per step, LoRA r={sync['bench']['lora_r']} on the bench model (measured):", "",
                  "| dtype | merged (rl.sync_lora=merged) | adapter (rl.sync_lora=adapter) | ratio | gather+merge s | adapter gather s |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for dtype, s in sync["bench"]["by_dtype"].items():
            lines.append(f"| {dtype} | {s['merged_bytes']:,} | {s['adapter_bytes']:,} | "
                         f"{s['merged_bytes'] / s['adapter_bytes']:.1f}x | {s['merge_gather_s']:.2f} | {s['adapter_gather_s']:.2f} |")  # fmt: skip
        q = sync["qwen2.5-7b"]
        lines += ["", f"Qwen2.5-7B shapes, LoRA r={q['lora_r']} on {', '.join(q['targets'])} (counted, bf16): "
                  f"merged {q['merged_bytes_bf16'] / 1e9:.2f} GB, adapter {q['adapter_bytes_bf16'] / 1e9:.3f} GB, "
                  f"{q['merged_bytes_bf16'] / q['adapter_bytes_bf16']:.0f}x."]  # fmt: skip
    elif "error" in sync:
        lines += ["", f"Sync bytes: failed: {sync['error'].splitlines()[-1]}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="256,1024", help="reply lengths in tokens")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up; 0: the first step")
    ap.add_argument("--group", type=int, default=2, help="replies per step (one micro-batch)")
    ap.add_argument("--zero", type=int, choices=[2, 3], default=2)
    ap.add_argument("--lora-r", type=int, default=8, help="LoRA rank of the sync-bytes measurement")
    ap.add_argument("--no-sync", action="store_true", help="skip the sync-bytes part")
    ap.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--name", default="", help="results file stem; default <date>-<host>-memory")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        Path(args.child_out).write_text(json.dumps(_child(args), indent=1), encoding="utf-8")
        return 0
    from empathy_ray.domain.files import atomic_write_text

    started = dt.datetime.now()
    results: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
                               "loadavg_start": loadavg(), "steps": args.steps, "group": args.group,
                               "zero": args.zero, "learner": {}}  # fmt: skip
    settings = [
        f"{n}:{d}:{g}" for n in args.lengths.split(",") for d in ("fp32", "bf16") for g in ("nogc", "gc")
    ]
    stem = args.name or f"{started:%Y-%m-%d}-{socket.gethostname()}-memory"
    out_dir = Path(args.out_dir)
    with tempfile.TemporaryDirectory(prefix="er-mem-") as tmp:
        for child in [*([] if args.no_sync else ["sync"]), *settings]:
            part = _run_child(args, child, Path(tmp) / "part.json")
            if child == "sync":
                results["sync"] = part
            else:
                results["learner"][child] = part
            results["loadavg_end"] = loadavg()
            # after every setting, so an interrupted run keeps what it measured
            atomic_write_text(out_dir / f"{stem}.json", json.dumps(results, indent=1))
            atomic_write_text(out_dir / f"{stem}.md", _markdown(results))
    print(out_dir / f"{stem}.md")
    return 1 if any("error" in p for p in [*results["learner"].values(), results.get("sync", {})]) else 0


if __name__ == "__main__":
    sys.exit(main())
