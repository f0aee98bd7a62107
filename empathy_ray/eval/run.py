"""The evaluation run: answers from every system, automatic metrics, the judge's Win@K, files.

out_dir/
  eval.json         settings, per-system metrics, the judge's Win@K / mean rank summary, timings
  eval.md           the same as markdown tables
  answers.jsonl     one row per post: the post, references, and every system's parsed completion
  judgements.jsonl  one row per post: the judge's ranks, or its failure and why
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from empathy_ray.actors.reward import RewardScorer
from empathy_ray.config import Config, ConfigError, RewardConfig
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.eval.answers import (
    Answers,
    EvalPost,
    answer_rows,
    eval_demand,
    generate_answers,
    select_posts,
    task_groups,
)
from empathy_ray.eval.judge import EndpointJudge, endpoint_rankings, rm_rankings
from empathy_ray.eval.ranking import Ranking, summarise, to_markdown
from empathy_ray.eval.scores import (
    crisis_regressions,
    metrics_markdown,
    regressions_markdown,
    sampled_crisis_path_rate,
    system_metrics,
)
from empathy_ray.runtime import console
from empathy_ray.runtime.generation_task import run_model_task
from empathy_ray.runtime.process import init_ray

log = logging.getLogger(__name__)


def _check(cfg: Config, models: dict[str, Path], rm_dir: Path | None) -> None:
    if not models:
        raise ConfigError("eval: no models given; pass at least one NAME=DIR")
    if cfg.eval.judge == "rm" and rm_dir is None and len(models) > 1:
        raise ConfigError(
            "eval.judge=rm needs a reward model (rm_dir / --rm DIR); or set eval.judge=endpoint or none"
        )
    if rm_dir is not None and not (Path(rm_dir) / "config.json").is_file():
        raise ConfigError(f"eval: no reward model at {rm_dir} (config.json missing)")


def _markdown(result: dict[str, Any]) -> str:
    judge = result["judge"]
    parts = [
        "# Evaluation\n",
        f"{len(result['post_ids'])} posts of split `{result['split']}`, engine {result['engine']}, "
        f"temperature {result['temperature']}, seed {result['seed']}, max {result['max_new_tokens']} new tokens.\n",
        "## Automatic metrics\n",
        metrics_markdown(result["metrics"]),
    ]
    crisis = result.get("crisis_regression")
    if crisis and crisis["flagged_posts"]:
        parts.append(
            regressions_markdown(
                crisis["regressions"],
                crisis["tolerance"],
                crisis["flagged_posts"],
                crisis.get("samples_per_post", 0),
            )
        )
    if judge is not None:
        parts += [f"## Win@K and mean rank (judge: {', '.join(judge['summary']['judges'])})\n"]
        parts += [to_markdown(judge["summary"])]
    return "\n".join(parts)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_outputs(
    out_dir: Path, result: dict[str, Any], rows: list[dict], rankings: list[Ranking] | None
) -> None:
    """eval.json, eval.md, answers.jsonl and judgements.jsonl (each written atomically)."""
    _write_jsonl(out_dir / "answers.jsonl", rows)
    if rankings is not None:
        _write_jsonl(
            out_dir / "judgements.jsonl",
            [
                {
                    "post_id": r.post_id,
                    "judge": r.judge,
                    "ranks": dict(r.ranks),
                    "failed": r.failed,
                    "error": r.error,
                }
                for r in rankings
            ],
        )
    atomic_write_text(out_dir / "eval.md", _markdown(result))
    atomic_write_text(out_dir / "eval.json", json.dumps(result, ensure_ascii=False, indent=2))


def _rm_scores(cfg: Config, rm_dir: Path, posts: list[EvalPost], completions: dict[str, list[str]]):
    """Every system's RM scores, computed in a Ray task on the eval device (never in the driver: on a
    cluster the driver sits on the GPU-less head)."""
    texts = [p.text for p in posts]
    lengths = (cfg.data.max_prompt_tokens, cfg.data.max_response_tokens)
    args = (str(rm_dir), lengths, texts, completions)
    return run_model_task(_score_task, eval_demand(cfg.eval), *args, fresh_process=False)


def _score_task(
    rm_dir: str, lengths: tuple[int, int], texts: list[str], completions: dict[str, list[str]]
) -> dict[str, list[float]]:
    from empathy_ray.runtime.process import setup_process

    setup_process()
    scorer = RewardScorer(RewardConfig(), rm_dir, *lengths)
    return {name: scorer.score(texts, comps)["rm"] for name, comps in completions.items()}


def _crisis_regression(cfg: Config, posts: list[EvalPost], metrics: dict[str, dict]) -> dict[str, Any]:
    """Did training lower the share of flagged posts answered with a pointer to help? Logged as a
    warning (the console shows it) and kept for eval.md, the report and the run summary."""
    regressions = crisis_regressions(
        metrics, cfg.eval.crisis_start, cfg.eval.crisis_trained, cfg.eval.crisis_tolerance
    )
    for r in regressions:
        log.warning(
            "crisis-path regression: %s points %.2f of flagged posts to help, %s %.2f (tolerance %.2f)",
            r["system"],
            r["rate"],
            r["start"],
            r["start_rate"],
            cfg.eval.crisis_tolerance,
        )
    return {
        "start": cfg.eval.crisis_start,
        "tolerance": cfg.eval.crisis_tolerance,
        "flagged_posts": sum(p.flagged for p in posts),
        "regressions": regressions,
    }


def score_answers(
    cfg: Config,
    posts: list[EvalPost],
    completions: dict[str, list[str]],
    rm_scores: dict[str, list[float]] | None,
    rm_judge: str = "rm",
    crisis_samples: dict[str, list[list[str]]] | None = None,
) -> tuple[dict[str, Any], list[dict], list[Ranking] | None]:
    """Metrics, answer rows and the judge's rankings for given completions (no generation here).

    `rm_judge` names the RM judge in the output (the reward model's path). With `crisis_samples` (per
    system, per flagged post, its sampled answers) the crisis-path rate is taken over those answers and
    the greedy one is kept as crisis_path_greedy. Returns the core of eval.json (settings, metrics,
    judge summary), the answers.jsonl rows and the rankings.
    """
    metrics = {
        name: system_metrics(posts, comps, rm_scores[name] if rm_scores else None)
        for name, comps in completions.items()
    }
    per_post = cfg.eval.crisis_samples if crisis_samples else 0  # 0: the greedy answer decides
    for name, samples in (crisis_samples or {}).items():
        rate, answers = sampled_crisis_path_rate(samples)
        metrics[name] |= {"crisis_path_greedy": metrics[name]["crisis_path_rate"], "crisis_path_rate": rate}
        metrics[name]["crisis_path_answers"] = answers
    rows = answer_rows(posts, completions, rm_scores)
    rankings: list[Ranking] | None = None
    if cfg.eval.judge == "rm" and len(completions) > 1:
        if rm_scores is None:
            raise ConfigError(
                "eval.judge=rm needs reward-model scores; pass a reward model or eval.judge=none"
            )
        rankings = rm_rankings([p.id for p in posts], rm_scores, rm_judge)
    elif cfg.eval.judge == "endpoint" and len(completions) > 1:
        rankings = endpoint_rankings(EndpointJudge.from_config(cfg.eval), rows)
    judge = None
    if rankings is not None:
        summary = summarise(rankings, len(completions), cfg.eval.bootstrap, seed=cfg.eval.seed)
        failures = [{"post_id": r.post_id, "error": r.error} for r in rankings if r.failed]
        judge = {"kind": cfg.eval.judge, "summary": summary, "failures": failures}
    result = {
        "split": cfg.eval.split,
        "post_ids": [p.id for p in posts],
        "engine": cfg.eval.engine,
        "temperature": cfg.eval.temperature,
        "seed": cfg.eval.seed,
        "max_new_tokens": cfg.eval.max_new_tokens,
        "metrics": metrics,
        "crisis_regression": _crisis_regression(cfg, posts, metrics) | {"samples_per_post": per_post},
        "judge": judge,
    }
    return result, rows, rankings


def run_eval(
    cfg: Config, models: dict[str, Path], out_dir: Path, rm_dir: Path | None = None
) -> dict[str, Any]:
    """Evaluate `models` (system name -> HF directory) on the posts of `cfg.eval.split`.

    `rm_dir` is the reward model for the mean RM score and, with eval.judge=rm, the ranking judge.
    Joins or starts Ray (`cfg.ray`) for the generation tasks. Writes out_dir/eval.json, eval.md,
    answers.jsonl, judgements.jsonl and returns what eval.json holds.
    """
    _check(cfg, models, rm_dir)
    t0 = time.perf_counter()
    init_ray(cfg.ray)
    posts = select_posts(cfg)
    answers = Answers()
    with console.progress(len(posts) * len(models), "[eval] answers", unit="post") as bar:
        for group in task_groups(cfg.eval, models):  # the bar moves per task
            one = generate_answers(cfg, group, posts)
            answers.completions |= one.completions
            answers.crisis |= one.crisis
            answers.seconds |= one.seconds
            bar.update(len(posts) * len(group))
    completions, gen_s = answers.completions, answers.seconds
    t_rm = time.perf_counter()
    rm_scores = _rm_scores(cfg, rm_dir, posts, completions) if rm_dir is not None else None
    t_judge = time.perf_counter()
    rm_judge = f"rm:{Path(rm_dir).resolve()}" if rm_dir is not None else "rm"
    result, rows, rankings = score_answers(cfg, posts, completions, rm_scores, rm_judge, answers.crisis)
    result["models"] = {name: str(Path(d).resolve()) for name, d in models.items()}
    result["reward_model"] = str(Path(rm_dir).resolve()) if rm_dir is not None else None
    result["timings"] = {
        "generate_s": gen_s,
        "rm_score_s": round(t_judge - t_rm, 2),
        "metrics_and_judge_s": round(time.perf_counter() - t_judge, 2),
        "total_s": round(time.perf_counter() - t0, 2),
    }
    write_outputs(Path(out_dir), result, rows, rankings)
    log.info("eval written to %s (%.1f s)", out_dir, result["timings"]["total_s"])
    return result
