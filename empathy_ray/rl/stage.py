"""The GRPO stage: which models to start from, the prompts, the run loop, and its summary."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.actors.roles import Roles
from empathy_ray.config import Config, ConfigError
from empathy_ray.data import dataset
from empathy_ray.data.records import Post
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.rl.driver import GRPODriver, Prompt
from empathy_ray.rl.prompt_pool import PoolStats, is_crisis_post, oversample, pool_stats
from empathy_ray.runtime.run_dir import RunLayout

log = logging.getLogger(__name__)


def resolve_models(cfg: Config, sft_model: Path, rm_model: Path) -> tuple[str, str | None]:
    """The policy to start from and the reward model (None: rule terms only)."""
    policy = cfg.rl.policy_model or str(sft_model)
    if not (Path(policy) / "config.json").exists():
        raise ConfigError(
            f"rl.policy_model: no model at {policy}; run the sft stage first or set rl.policy_model"
        )
    if cfg.rl.reward_model == "none" or cfg.rl.reward.rm_weight == 0:
        return policy, None
    rm = cfg.rl.reward_model or str(rm_model)
    if not (Path(rm) / "config.json").exists():
        raise ConfigError(
            f"rl.reward_model: no model at {rm}; run the rm stage first, set rl.reward_model, or 'none'"
        )
    return policy, rm


def split_posts(cfg: Config, splits: tuple[str, ...]) -> list[Post]:
    return [p for p in dataset.load_posts(cfg.data) if dataset.post_split(p, cfg.data) in splits]


def training_pool(cfg: Config) -> list[Post]:
    """The training-split posts GRPO draws from, crisis posts repeated up to `rl.crisis_share`
    (rl/prompt_pool.py says why); never a held-out post."""
    return oversample(split_posts(cfg, ("train",)), is_crisis_post, cfg.rl.crisis_share)


def prompts_of(cfg: Config, model_dir: str, posts: list[Post]) -> list[Prompt]:
    """One Prompt per entry of `posts`; a repeated post shares one tokenised Prompt."""
    from transformers import AutoTokenizer

    from empathy_ray.modeling.chat import prompt_ids

    tok = AutoTokenizer.from_pretrained(model_dir)
    made: dict[str, Prompt] = {}
    for p in posts:
        if p.id not in made:
            made[p.id] = Prompt(p.id, p.text, prompt_ids(tok, p.text, cfg.data.max_prompt_tokens))
    return [made[p.id] for p in posts]


def build_prompts(cfg: Config, model_dir: str, splits: tuple[str, ...]) -> list[Prompt]:
    """Every post of `splits` once, in data order (no oversampling: see training_pool)."""
    return prompts_of(cfg, model_dir, split_posts(cfg, splits))


# Sampling seeds come from (run seed, step, prompt index). Training steps are numbered from 0, so the
# two held-out evaluations take seed spaces no training step can have: their samples never repeat a
# training step's, and the same run draws the same held-out answers before and after a resume.
HELD_OUT_BEFORE = -1
HELD_OUT_AFTER = -2


def evaluate(driver: GRPODriver, prompts: list[Prompt], seed_space: int) -> dict[str, Any]:
    """Held-out prompts through the current policy (sampled like training), scored by the reward actor;
    `seed_space` is HELD_OUT_BEFORE or HELD_OUT_AFTER."""
    samples = driver.rollout(prompts, step=seed_space)
    posts = [prompts[s.prompt_index].text for s in samples]
    terms = driver.roles.score(posts, [s.text for s in samples]).result()
    out = {f"{k}_mean": sum(v) / len(v) for k, v in terms.items()}
    out["response_len_mean"] = sum(len(s.response_ids) for s in samples) / len(samples)
    # the sampled token ids, hashed: two runs drew the same answers exactly when the digests agree
    tokens = json.dumps([s.response_ids for s in samples]).encode()
    out["samples_sha256"] = hashlib.sha256(tokens).hexdigest()[:16]
    return out


def _held_out_before(driver: GRPODriver, held: list[Prompt], out_dir: Path, resumed: bool) -> dict:
    """The starting policy's held-out scores, kept on disk so a resumed run still reports them."""
    path = out_dir / "held_out_before.json"
    if resumed and path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if not held or resumed:
        return {}
    before = evaluate(driver, held, HELD_OUT_BEFORE)
    atomic_write_text(path, json.dumps(before))
    return before


def _training_prompts(cfg: Config, policy: str) -> tuple[list[Prompt], PoolStats]:
    pool = training_pool(cfg)
    if not pool:
        raise ConfigError("data: no training prompts for RL (check data.posts and data.split_fractions)")
    stats = pool_stats(pool)
    log.info(
        "GRPO prompt pool: %d entries from %d training posts; %d crisis posts make %.2f of it "
        "(rl.crisis_share=%.2f)",
        stats.entries,
        stats.posts,
        stats.crisis_posts,
        stats.crisis_share,
        cfg.rl.crisis_share,
    )
    return prompts_of(cfg, policy, pool), stats


def run_rl(
    cfg: Config, run_dir: Path, sft_model: Path, rm_model: Path, resume: bool = False
) -> dict[str, Any]:
    policy, rm = resolve_models(cfg, sft_model, rm_model)
    train_prompts, stats = _training_prompts(cfg, policy)
    held = build_prompts(cfg, policy, dataset.HELD_OUT)[: cfg.rl.eval_prompts]
    layout = RunLayout(run_dir)
    out_dir = layout.stage_dir("rl")
    t0 = time.perf_counter()
    roles = Roles.create(cfg, policy, rm)
    driver = GRPODriver(cfg, out_dir, train_prompts, roles)
    try:
        resumed = resume and driver.resume()
        before = _held_out_before(driver, held, out_dir, resumed)
        history = driver.train(cfg.rl.steps)
        after = evaluate(driver, held, HELD_OUT_AFTER) if held else {}
        final = driver.export_policy(layout.rl_model)
    finally:
        driver.writer.close()
        roles.shutdown()
    phases = ("rollout", "reward", "reference", "train", "sync", "step")
    timings = {p: sum(h.get(f"time/{p}_s", 0.0) for h in history) / max(len(history), 1) for p in phases}
    summary = {
        "model_dir": str(final),
        "policy_start": policy,
        "reward_model": rm,
        "steps": driver.step,
        "resumed": bool(resumed),
        "held_out_before": before,
        "held_out_after": after,
        "reward_first": history[0]["reward/total_mean"] if history else None,
        "reward_last": history[-1]["reward/total_mean"] if history else None,
        "format_valid_first": history[0]["rollout/format_valid"] if history else None,
        "format_valid_last": history[-1]["rollout/format_valid"] if history else None,
        "kl_last": history[-1].get("train/kl") if history else None,
        "mean_phase_seconds": timings,
        "prompt_pool": {**dataclasses.asdict(stats), "crisis_share": round(stats.crisis_share, 4)},
        "rollout_workers": cfg.rl.rollout.num_workers,
        "rollout_engine": cfg.rl.rollout.engine,
        "learner_ranks": cfg.rl.learner.num_workers,
        "zero_stage": cfg.rl.learner.zero_stage,
        "reference": "learner" if cfg.rl.reference_in_learner else "actor",
        "counters": dict(roles.counters),
        "wall_s": time.perf_counter() - t0,
    }
    log.info(
        "GRPO done: %d steps, reward %.3f -> %.3f, held-out reward %s -> %s",
        driver.step,
        summary["reward_first"] or float("nan"),
        summary["reward_last"] or float("nan"),
        before.get("total_mean"),
        after.get("total_mean"),
    )
    return summary
