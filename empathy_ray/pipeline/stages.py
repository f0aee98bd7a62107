"""The five stages, declared: what each reads, the config keys its output depends on, its resources.

Which keys count is decided here, key by key, with the reason beside it. A key left out of every
stage (placement, logging, timeouts, retries, where the run lives) never retrains anything; a key
in a stage's fingerprint retrains that stage and every stage whose inputs reach it.
tests/test_pipeline_stages.py checks that every config key is decided somewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from empathy_ray.config import Config
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.eval.answers import eval_demand
from empathy_ray.pipeline.run import Run
from empathy_ray.pipeline.stage import Stage
from empathy_ray.runtime.resources import Demand, rl_role_demands
from empathy_ray.train.job import train_storage

# Where a run lives, which stages it runs and where its metrics and logs go: these never change what
# a stage produces.
RUN_WIDE_KEYS = ("run.name", "run.output_root", "ray", "pipeline", "tracking")

# SFT and RM are Ray Train jobs. Placement and logging only: the CPUs and custom resources a worker
# asks for, and how often it logs. Worker count, num_gpus, zero_stage and bf16 all count: the worker
# count sets the global batch and each rank's data shard, the device and ZeRO stage change the
# arithmetic (kernels, reduction order, partitioned optimizer), so the weights differ.
TRAINER_PLACEMENT_AND_LOGGING = ("num_cpus", "resources", "log_every")
# How often SFT and RM save their state: saving changes nothing in the run; a job that resumes continues
# the same schedule from the saved step (train/resume.py)
TRAINER_SAVING = ("checkpoint_every", "keep_checkpoints")

# RL roles. Placement only: CPUs, custom node resources, and how often Ray restarts a dead actor
# (its call is re-sent and gives the same answer). num_gpus counts: 0 or not picks CPU or CUDA
# arithmetic. Worker counts count too: learner ranks change the data-parallel gradient reduction and
# the micro-batch split; rollout workers change which prompts share an engine's batch, and batch
# composition changes vLLM's (and padded transformers') logits in the last bits, hence the samples,
# although actors/rollout.py seeds each prompt's samples the same on every worker. The reward and
# reference batch sizes count for the same reason: other padding, other matmul shapes.
RL_ROLES = ("rollout", "reward", "reference", "learner")
RL_PLACEMENT = tuple(
    f"rl.{role}.{key}" for role in RL_ROLES for key in ("num_cpus", "resources", "max_restarts")
)


def _uses_trained_rm(cfg: Config) -> bool:
    """GRPO scores with this run's reward model (not a given one, and not rule terms only)."""
    return cfg.rl.reward_model != "none" and cfg.rl.reward.rm_weight != 0 and not cfg.rl.reward_model


def _rl_inputs(cfg: Config) -> tuple[str, ...]:
    """The SFT export unless rl.policy_model names the policy; this run's RM when GRPO uses it."""
    return tuple(
        name for name, used in (("sft", not cfg.rl.policy_model), ("rm", _uses_trained_rm(cfg))) if used
    )


def ensure_base_model(run: Run) -> Path:
    base = run.layout.base_model
    if run.cfg.model.path:
        return base
    if not (base / "config.json").exists():
        from empathy_ray.modeling.tiny import build_tiny_model

        m = run.cfg.model
        build_tiny_model(base, m.tiny_preset, run.cfg.run.seed, m.tokenizer_vocab_size)
        run.record("base_model", {"model_dir": str(base), "preset": m.tiny_preset})
    return base


def _sft(run: Run, resume: bool) -> dict[str, Any]:
    from empathy_ray.train.sft import run_sft

    result = run_sft(run.cfg, ensure_base_model(run), run.layout.sft_model)
    samples = result.pop("_samples")
    atomic_write_text(run.layout.sft_samples, json.dumps(samples, ensure_ascii=False, indent=2))
    return result


def _rm(run: Run, resume: bool) -> dict[str, Any]:
    from empathy_ray.train.rm import run_rm

    if run.cfg.rm.base_model:
        base = Path(run.cfg.rm.base_model)
    elif (run.layout.sft_model / "config.json").exists():
        base = run.layout.sft_model
    else:
        base = ensure_base_model(run)
    return run_rm(run.cfg, base, run.layout.rm_model)


def _rl(run: Run, resume: bool) -> dict[str, Any]:
    from empathy_ray.rl.stage import run_rl

    layout = run.layout
    return run_rl(run.cfg, layout.dir, layout.sft_model, layout.rm_model, resume=resume)


def _eval(run: Run, resume: bool) -> dict[str, Any]:
    """Base model (floor), SFT and GRPO models on the held-out split; Win@K by the judge."""
    from empathy_ray.eval.run import run_eval

    layout = run.layout
    models: dict[str, Path] = {"base": ensure_base_model(run)} if run.cfg.eval.baseline else {}
    for name, path in (("sft", layout.sft_model), ("rl", layout.rl_model)):
        if (path / "config.json").exists():
            models[name] = path
    rm = layout.rm_model if (layout.rm_model / "config.json").exists() else None
    result = run_eval(run.cfg, models, layout.eval_dir, rm)
    judged = (result.get("judge") or {}).get("summary", {}).get("systems", {})
    return {
        "dir": str(layout.eval_dir),
        "posts": len(result["post_ids"]),
        "judge": (result.get("judge") or {}).get("kind"),
        "crisis_regressions": result["crisis_regression"]["regressions"],
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


def _serve(run: Run, resume: bool) -> dict[str, Any]:
    from empathy_ray.serve.cli import resolve_model, serve_stage

    return serve_stage(run.cfg, resolve_model(run.cfg), run.cluster_outlives_us)


SFT = Stage(
    name="sft",
    role="sft",  # its Ray Train workers (logs/sft.log)
    execute=_sft,
    demands=lambda cfg: {"sft": Demand.of_trainer(cfg.sft)},
    planned=lambda cfg: cfg.pipeline.sft and not cfg.rl.policy_model,
    keys=("run.seed", "model", "data", "sft"),
    # data.pairs: the RM's data. sft.eval_*: the greedy CoE-validity check after training measures
    # the model, it does not change it (the record says how many prompts and which engine it used).
    ignore=("data.pairs", "sft.eval_prompts", "sft.eval_max_new_tokens", "sft.eval_engine")
    + tuple(f"sft.{k}" for k in TRAINER_PLACEMENT_AND_LOGGING + TRAINER_SAVING),
    output=lambda layout: layout.sft_model / "config.json",
    checkpoints=lambda layout: train_storage(layout, "sft"),  # a killed or failed SFT continues
)

RM = Stage(
    name="rm",
    role="rm",  # its Ray Train workers (logs/rm.log)
    execute=_rm,
    demands=lambda cfg: {"rm": Demand.of_trainer(cfg.rm)},
    planned=lambda cfg: cfg.pipeline.reward_model and _uses_trained_rm(cfg),
    inputs=lambda cfg: () if cfg.rm.base_model else ("sft",),  # starts from the SFT export
    keys=("run.seed", "model", "data", "rm"),
    ignore=("data.posts", "data.min_answer_chars")
    + tuple(f"rm.{k}" for k in TRAINER_PLACEMENT_AND_LOGGING + TRAINER_SAVING),
    output=lambda layout: layout.rm_model / "config.json",
    checkpoints=lambda layout: train_storage(layout, "rm"),
)

RL = Stage(
    name="rl",
    execute=_rl,
    demands=lambda cfg: rl_role_demands(cfg.rl),
    planned=lambda cfg: cfg.pipeline.rl,
    inputs=_rl_inputs,
    keys=("run.seed", "data", "rl"),
    # rl.eval_prompts counts: the held-out score before training is measured once and reused when
    # the stage resumes, so before and after must be measured on the same prompts.
    ignore=(
        "data.pairs",
        *RL_PLACEMENT,
        "rl.reward.timeout_s",  # a slow call is retried: the same answer, later
        "rl.reward.retries",
        "rl.reference.timeout_s",  # as the reward's: a retried call gives the same log-probs
        "rl.reference.retries",
        "rl.learner.max_rebuilds",  # a rebuilt learner group restores its checkpoint exactly
        "rl.max_nonfinite_steps",  # whether a diverged run stops, not what a finished one holds
        "rl.checkpoint_every",  # saving is exact (tests/test_resume.py): how often does not matter
        "rl.keep_checkpoints",
        "rl.sync",  # every transport delivers the learner's tensors bit for bit
        "rl.rollout.simulated_step_delay_s",  # the benchmark engine's speed
    ),
    output=lambda layout: layout.rl_model / "config.json",
    checkpoints=lambda layout: layout.rl_checkpoints,
    # The learner's LR is constant (actors/learner.py) and each step's prompts and seeds follow from
    # the step number, so N steps are the first N of N + k: more steps resume, fewer restart.
    grows_with=("rl.steps",),
)

EVAL = Stage(
    name="eval",
    role="generation",  # the generation tasks that answer the posts
    execute=_eval,
    demands=lambda cfg: {"eval": eval_demand(cfg.eval)},  # its tasks run one model at a time
    planned=lambda cfg: cfg.pipeline.eval,
    inputs=lambda cfg: ("sft", "rm", "rl"),  # every model there is, judged by the RM
    keys=("model", "data", "eval"),  # model: the untrained base is the floor
    # how long to wait for an endpoint judge and how often to ask again: a judge failure is counted
    # as one, never as a win, so these change the answer only when the judge is down
    # (where its tasks run does not change what they compute either)
    ignore=("data.pairs", "eval.judge_timeout_s", "eval.judge_retries", "eval.judge_api_key_env")
    + ("eval.num_cpus", "eval.num_gpus", "eval.resources"),
    output=lambda layout: layout.eval_json,
)

SERVE = Stage(
    name="serve",
    execute=_serve,
    demands=lambda cfg: {"serve": Demand.of_serve(cfg.serve)},
    planned=lambda cfg: cfg.pipeline.serve,
    keys=("serve",),  # recorded only: a server is started on every run (output None)
    keeps_resources=True,
    in_report=False,
)

STAGES: dict[str, Stage] = {s.name: s for s in (SFT, RM, RL, EVAL, SERVE)}
