"""The pipeline's stages and the run folder they share.

runs/<name>/
  base_model/   the tiny random model (only when model.path is empty)
  sft/model/    SFT export (HF directory) + sft/metrics.jsonl, sft/tb/
  rm/model/     reward model export + rm/metrics.jsonl, rm/tb/
  rl/model/     GRPO policy export + rl/metrics.jsonl, rl/tb/, rl/checkpoints/
  summary.json  one key per stage: what it produced, its headline numbers and paths
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.config import Config, ConfigError, load_config, to_dict
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.runtime.process import init_ray, setup_process
from empathy_ray.runtime.resources import check_stages, cluster_nodes

log = logging.getLogger(__name__)


class Run:
    """Paths of one run and its summary.json (rewritten atomically after every stage)."""

    def __init__(self, cfg: Config, resume: bool = False) -> None:
        self.cfg = cfg
        self.resume = resume  # GRPO continues from its last checkpoint
        self.cluster_outlives_us = False  # joined a cluster: a Serve app stays up after we exit
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

    @property
    def rl_model(self) -> Path:
        return self.dir / "rl" / "model"

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
    return result


def stage_rm(run: Run) -> dict[str, Any]:
    from empathy_ray.train.rm import run_rm

    if run.cfg.rm.base_model:
        base = Path(run.cfg.rm.base_model)
    elif (run.sft_model / "config.json").exists():
        base = run.sft_model
    else:
        base = ensure_base_model(run)
    return run_rm(run.cfg, base, run.rm_model)


def stage_rl(run: Run) -> dict[str, Any]:
    from empathy_ray.rl.stage import run_rl

    return run_rl(run.cfg, run.dir, run.sft_model, run.rm_model, resume=run.resume)


def stage_eval(run: Run) -> dict[str, Any]:
    """Base model (floor), SFT and GRPO models on the held-out split; Win@K by the judge."""
    from empathy_ray.eval.run import run_eval

    models: dict[str, Path] = {"base": ensure_base_model(run)} if run.cfg.eval.baseline else {}
    for name, path in (("sft", run.sft_model), ("rl", run.rl_model)):
        if (path / "config.json").exists():
            models[name] = path
    rm = run.rm_model if (run.rm_model / "config.json").exists() else None
    result = run_eval(run.cfg, models, run.dir / "eval", rm)
    judged = (result.get("judge") or {}).get("summary", {}).get("systems", {})
    return {
        "dir": str(run.dir / "eval"),
        "posts": len(result["post_ids"]),
        "judge": (result.get("judge") or {}).get("kind"),
        "systems": {
            name: {
                "coe_validity": m["coe_validity"],
                "rm_score": m.get("rm_score"),
                "win@1": judged.get(name, {}).get("win@1"),
                "mean_rank": judged.get(name, {}).get("mean_rank"),
            }
            for name, m in result["metrics"].items()
        },
    }


def stage_serve(run: Run) -> dict[str, Any]:
    from empathy_ray.serve.cli import resolve_model, serve_stage

    return serve_stage(run.cfg, resolve_model(run.cfg), run.cluster_outlives_us)


STAGES = {"sft": stage_sft, "rm": stage_rm, "rl": stage_rl, "eval": stage_eval, "serve": stage_serve}


def planned_stages(cfg: Config) -> list[str]:
    """The stages `pipeline.*` asks for; SFT/RM only when no ready model directory is given."""
    p = cfg.pipeline
    wants_rm = cfg.rl.reward_model != "none" and cfg.rl.reward.rm_weight != 0
    plan = [
        ("sft", p.sft and not cfg.rl.policy_model),
        ("rm", p.reward_model and wants_rm and not cfg.rl.reward_model),
        ("rl", p.rl),
        ("eval", p.eval),
        ("serve", p.serve),
    ]
    return [name for name, on in plan if on]


def fingerprint(cfg: Config, stage: str) -> str:
    """Hash of every config value the stage's output depends on, upstream stages included.

    A re-submitted job skips a stage whose recorded fingerprint matches and whose output exists,
    so a failed job resumes at the failed stage while any change that matters retrains.
    """
    c = to_dict(cfg)
    base = {"seed": c["run"]["seed"], "model": c["model"], "data": c["data"]}
    parts: dict[str, Any] = {
        "sft": {**base, "sft": c["sft"]},
    }
    parts["rm"] = {**base, "rm": c["rm"], "from_sft": None if cfg.rm.base_model else parts["sft"]}
    parts["rl"] = {**base, "rl": c["rl"], "sft": parts["sft"], "rm": parts["rm"]}
    parts["eval"] = {"eval": c["eval"], "rl": parts["rl"]}
    blob = json.dumps(parts[stage], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _output(run: Run, stage: str) -> Path:
    return {
        "sft": run.sft_model / "config.json",
        "rm": run.rm_model / "config.json",
        "rl": run.rl_model / "config.json",
        "eval": run.dir / "eval" / "eval.json",
    }[stage]


def _state(run: Run, stage: str) -> str:
    """'done' (output there, same config), 'interrupted' (started with the same config), or 'todo'."""
    if stage == "serve":
        return "todo"
    rec = run.summary.get(stage, {})
    if rec.get("fingerprint") != fingerprint(run.cfg, stage):
        return "todo"
    if rec.get("status") == "done" and _output(run, stage).exists():
        return "done"
    return "interrupted" if rec.get("status") == "running" else "todo"


def _free_resources() -> dict[str, float]:
    import ray

    return {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}


def _wait_released(before: dict[str, float], timeout_s: float = 60.0) -> dict[str, float]:
    """Wait until what a stage held (Ray Train workers, RL actors, eval tasks) is free again."""
    deadline = time.monotonic() + timeout_s
    now = _free_resources()
    while any(now.get(k, 0.0) < v - 1e-6 for k, v in before.items()) and time.monotonic() < deadline:
        time.sleep(0.5)
        now = _free_resources()
    if any(now.get(k, 0.0) < v - 1e-6 for k, v in before.items()):
        log.warning("resources not released after %gs: free %s, before the stage %s", timeout_s, now, before)
    return now


def run_stages(cfg: Config, stages: list[str], resume: bool = False, force: bool = True) -> dict[str, Any]:
    """Run `stages` in order. force=False skips finished stages and resumes an interrupted GRPO."""
    run = Run(cfg, resume)
    run.cluster_outlives_us = init_ray(cfg.ray)
    t0 = time.perf_counter()
    states = {name: "todo" if force else _state(run, name) for name in stages}
    # every stage still to run must fit the cluster: fail now, not after an hour of SFT
    check_stages(cfg, [n for n, st in states.items() if st != "done"], cluster_nodes())
    ran = []
    for name in stages:
        state = states[name]
        if state == "done":
            log.info("=== stage %s: output %s matches its config; skipped ===", name, _output(run, name))
            continue
        if name == "rl":
            run.resume = resume or state == "interrupted"
        log.info("=== stage %s%s ===", name, " (resuming)" if name == "rl" and run.resume else "")
        if name != "serve":
            run.record(name, {"status": "running", "fingerprint": fingerprint(cfg, name)})
        before = _free_resources()
        result = STAGES[name](run)
        after = _wait_released(before) if name != "serve" else _free_resources()
        extra = {"status": "done", "fingerprint": fingerprint(cfg, name)} if name != "serve" else {}
        run.record(name, {**result, **extra, "free_before": before, "free_after": after})
        ran.append(name)
        if name in ("rl", "eval") or (name == stages[-1] and name != "serve"):
            _report(run)
    run.summary["wall_s"] = round(time.perf_counter() - t0, 1)
    run.record("run", {"dir": str(run.dir), "stages": stages, "ran": ran})
    return run.summary


def _report(run: Run) -> None:
    from empathy_ray.eval.report import write_report

    log.info("report: %s", write_report(run.dir))


def run_pipeline(cfg: Config, resume: bool = False) -> dict[str, Any]:
    """The stages `pipeline.*` names; finished ones are skipped, an interrupted GRPO resumes."""
    return run_stages(cfg, planned_stages(cfg), resume=resume, force=False)


def _load(args) -> Config | None:
    setup_process()
    try:
        return load_config(args.config, args.overrides)
    except ConfigError as e:
        log.error("%s", e)
        return None


def _stage_main(args, stage: str) -> int:
    """`empathy-ray sft` / `rm`: run that one stage now, whatever the run folder holds."""
    cfg = _load(args)
    if cfg is None:
        return 2
    summary = run_stages(cfg, [stage])
    print(json.dumps(summary[stage], ensure_ascii=False, indent=2, default=str))
    return 0


def sft_main(args) -> int:
    return _stage_main(args, "sft")


def rm_main(args) -> int:
    return _stage_main(args, "rm")


def rl_main(args) -> int:
    """`jobs/rl.py` / `empathy-ray rl`: the whole pipeline as `pipeline.*` configures it."""
    cfg = _load(args)
    if cfg is None:
        return 2
    summary = run_pipeline(cfg, resume=args.resume)
    _print_summary(summary, cfg)
    return 0


# The demo is the default pipeline plus evaluation, and a server that answers two messages and stops.
DEMO_OVERRIDES = [
    "pipeline.eval=true",
    "pipeline.serve=true",
    "serve.keep_running=false",
    "serve.smoke_test=true",
]


def demo_main(args) -> int:
    args.overrides = [*DEMO_OVERRIDES, *args.overrides]
    cfg = _load(args)
    if cfg is None:
        return 2
    _print_summary(run_pipeline(cfg), cfg)
    return 0


def _print_summary(summary: dict[str, Any], cfg: Config) -> None:
    sft, rm, rl = summary.get("sft", {}), summary.get("rm", {}), summary.get("rl", {})
    print()
    print(f"run folder: {cfg.run.dir.resolve()}")
    if sft:
        print(
            f"SFT : loss {sft.get('loss_first', float('nan')):.3f} -> {sft.get('loss_last', float('nan')):.3f}, "
            f"held-out CoE validity {sft.get('coe_validity', 0):.2f} ({sft.get('eval_prompts')} prompts, greedy)"
        )
    if rm:
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
    for name, e in summary.get("eval", {}).get("systems", {}).items():
        win = e.get("win@1")
        print(
            f"eval: {name:<5} CoE validity {e['coe_validity']:.2f}, RM score {e.get('rm_score') or 0:.3f}"
            + (f", Win@1 {win:.2f}, mean rank {e['mean_rank']:.2f}" if win is not None else "")
        )
    if (cfg.run.dir / "report.html").exists():
        print(f"report : {cfg.run.dir.resolve() / 'report.html'}")
    if "serve" in summary:
        print(
            f"serve  : {summary['serve']['url']} ({'running' if summary['serve'].get('running') else 'stopped'})"
        )
    ran = summary.get("run", {}).get("ran", [])
    print(
        f"summary: {cfg.run.dir.resolve() / 'summary.json'}  (stages run now: {', '.join(ran) or 'none'}; {summary.get('wall_s')} s)"
    )
