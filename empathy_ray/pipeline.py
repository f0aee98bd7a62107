"""The pipeline's stages and the run folder they share.

runs/<name>/
  base_model/   the tiny random model (only when model.path is empty)
  sft/model/    SFT export (HF directory) + sft/metrics.jsonl, sft/tb/
  rm/model/     reward model export + rm/metrics.jsonl, rm/tb/
  rl/model/     GRPO policy export + rl/metrics.jsonl, rl/tb/, rl/checkpoints/
  summary.json  one key per stage: what it produced, its headline numbers and paths
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.config import Config, ConfigError, load_config, to_dict
from empathy_ray.io_utils import atomic_write_text
from empathy_ray.runtime import init_ray, setup_process

log = logging.getLogger(__name__)


class Run:
    """Paths of one run and its summary.json (rewritten atomically after every stage)."""

    def __init__(self, cfg: Config, resume: bool = False) -> None:
        self.cfg = cfg
        self.resume = resume  # GRPO continues from its last checkpoint
        self.dir = cfg.run.dir.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.summary_path = self.dir / "summary.json"
        self.summary: dict[str, Any] = (
            json.loads(self.summary_path.read_text(encoding="utf-8")) if self.summary_path.exists() else {}
        )

    @property
    def base_model(self) -> Path:
        return Path(self.cfg.model.path).resolve() if self.cfg.model.path else self.dir / "base_model"

    @property
    def sft_model(self) -> Path:
        return self.dir / "sft" / "model"

    @property
    def rm_model(self) -> Path:
        return self.dir / "rm" / "model"

    def record(self, stage: str, result: dict[str, Any]) -> None:
        self.summary[stage] = result
        self.summary["config"] = to_dict(self.cfg)
        atomic_write_text(
            self.summary_path, json.dumps(self.summary, ensure_ascii=False, indent=2, default=str)
        )


def ensure_base_model(run: Run) -> Path:
    if run.cfg.model.path:
        return run.base_model
    if not (run.base_model / "config.json").exists():
        from empathy_ray.modeling.tiny import build_tiny_model

        build_tiny_model(
            run.base_model, run.cfg.model.tiny_preset, run.cfg.run.seed, run.cfg.model.tokenizer_vocab_size
        )
        run.record("base_model", {"model_dir": str(run.base_model), "preset": run.cfg.model.tiny_preset})
    return run.base_model


def stage_sft(run: Run) -> dict[str, Any]:
    from empathy_ray.train.sft import run_sft

    result = run_sft(run.cfg, ensure_base_model(run), run.sft_model)
    samples = result.pop("_samples")
    atomic_write_text(
        run.dir / "sft" / "eval_samples.json", json.dumps(samples, ensure_ascii=False, indent=2)
    )
    run.record("sft", result)
    return result


def stage_rm(run: Run) -> dict[str, Any]:
    from empathy_ray.train.rm import run_rm

    if run.cfg.rm.base_model:
        base = Path(run.cfg.rm.base_model)
    elif (run.sft_model / "config.json").exists():
        base = run.sft_model
    else:
        base = ensure_base_model(run)
    result = run_rm(run.cfg, base, run.rm_model)
    run.record("rm", result)
    return result


def stage_rl(run: Run) -> dict[str, Any]:
    from empathy_ray.rl import run_rl

    result = run_rl(run.cfg, run.dir, run.sft_model, run.rm_model, resume=run.resume)
    run.record("rl", result)
    return result


STAGES = {"sft": stage_sft, "rm": stage_rm, "rl": stage_rl}


def missing_prerequisites(run: Run) -> list[str]:
    """Stages GRPO needs whose outputs are not in the run folder (and not given in the config)."""
    todo = []
    if not run.cfg.rl.policy_model and not (run.sft_model / "config.json").exists():
        todo.append("sft")
    wants_rm = run.cfg.rl.reward_model != "none" and run.cfg.rl.reward.rm_weight != 0
    if wants_rm and not run.cfg.rl.reward_model and not (run.rm_model / "config.json").exists():
        todo.append("rm")
    return todo


def run_stages(cfg: Config, stages: list[str], resume: bool = False) -> dict[str, Any]:
    run = Run(cfg, resume)
    init_ray(cfg.ray)
    t0 = time.perf_counter()
    if "rl" in stages and "sft" not in stages:
        stages = [*missing_prerequisites(run), *stages]
    for name in stages:
        log.info("=== stage %s ===", name)
        STAGES[name](run)
    run.summary["wall_s"] = round(time.perf_counter() - t0, 1)
    run.record("run", {"dir": str(run.dir), "stages": stages})
    return run.summary


def _load(args) -> Config | None:
    setup_process()
    try:
        return load_config(args.config, args.overrides)
    except ConfigError as e:
        log.error("%s", e)
        return None


def _stage_main(args, stage: str) -> int:
    cfg = _load(args)
    if cfg is None:
        return 2
    summary = run_stages(cfg, [stage], resume=getattr(args, "resume", False))
    print(json.dumps(summary[stage], ensure_ascii=False, indent=2, default=str))
    return 0


def sft_main(args) -> int:
    return _stage_main(args, "sft")


def rm_main(args) -> int:
    return _stage_main(args, "rm")


def rl_main(args) -> int:
    return _stage_main(args, "rl")


def demo_main(args) -> int:
    cfg = _load(args)
    if cfg is None:
        return 2
    summary = run_stages(cfg, list(STAGES))
    _print_demo(summary, cfg)
    return 0


def _print_demo(summary: dict[str, Any], cfg: Config) -> None:
    sft, rm, rl = summary.get("sft", {}), summary.get("rm", {}), summary.get("rl", {})
    print()
    print(f"run folder: {cfg.run.dir.resolve()}")
    print(
        f"SFT : loss {sft.get('loss_first', float('nan')):.3f} -> {sft.get('loss_last', float('nan')):.3f}, "
        f"held-out CoE validity {sft.get('coe_validity', 0):.2f} ({sft.get('eval_prompts')} prompts, greedy)"
    )
    print(
        f"RM  : held-out pairwise accuracy {rm.get('pairwise_accuracy', 0):.3f} on {rm.get('eval_pairs')} pairs"
    )
    if rl:
        b, a = rl.get("held_out_before", {}), rl.get("held_out_after", {})
        print(
            f"GRPO: {rl.get('steps')} steps, held-out reward {b.get('total_mean', float('nan')):.3f} -> "
            f"{a.get('total_mean', float('nan')):.3f}, format {b.get('format_mean', float('nan')):.2f} -> "
            f"{a.get('format_mean', float('nan')):.2f}, KL {rl.get('kl_last') or 0:.4f}"
        )
    print(f"summary: {cfg.run.dir.resolve() / 'summary.json'}  ({summary.get('wall_s')} s)")
