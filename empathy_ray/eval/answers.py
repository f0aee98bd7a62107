"""The evaluation posts and every system's answers to them.

All systems answer the same posts with the same sampling seed, so their differences come from the
models alone. They generate in Ray tasks (`runtime.generation_task`): one per model with vLLM, one for
all of them with transformers `generate`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from empathy_ray.config import Config, ConfigError, EvalConfig
from empathy_ray.data import dataset
from empathy_ray.data.records import Post
from empathy_ray.domain import coe
from empathy_ray.domain.safety import assess
from empathy_ray.modeling.generation import Sampling
from empathy_ray.runtime.generation_task import Request, sample_models
from empathy_ray.runtime.resources import Demand

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalPost:
    """A held-out post as the evaluation needs it."""

    id: str
    text: str
    references: list[str]  # every answer the data holds for the post (multi-reference BLEU/chrF)
    flagged: bool  # marked crisis in the data, or the safety guard finds risk in the post

    @classmethod
    def from_post(cls, post: Post) -> EvalPost:
        return cls(
            post.id, post.text, [a.text for a in post.answers], post.crisis or assess(post.text).is_risky
        )


def select_posts(cfg: Config) -> list[EvalPost]:
    """The first `eval.max_posts` posts of split `eval.split` (0: all), in data order."""
    posts = [p for p in dataset.load_posts(cfg.data) if dataset.post_split(p, cfg.data) == cfg.eval.split]
    if cfg.eval.max_posts > 0:
        posts = posts[: cfg.eval.max_posts]
    if not posts:
        source = cfg.data.posts or "the embedded samples"
        raise ConfigError(
            f"eval.split={cfg.eval.split!r}: no posts of {source} fall in that split "
            f"(data.split_fractions={list(cfg.data.split_fractions)}); choose another split or more data"
        )
    return [EvalPost.from_post(p) for p in posts]


def eval_demand(ev: EvalConfig) -> Demand:
    """What one eval task (a system's generation, the RM scoring) asks Ray for: eval.num_cpus,
    eval.num_gpus, eval.resources."""
    return Demand(1, float(ev.num_cpus), float(ev.num_gpus), dict(ev.resources))


@dataclass
class Answers:
    """Every system's answers: one per post (in post order), the crisis samples (per flagged post, in
    post order, eval.crisis_samples each) and the seconds each system's generation took."""

    completions: dict[str, list[str]] = field(default_factory=dict)
    crisis: dict[str, list[list[str]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def task_groups(ev: EvalConfig, models: dict[str, Path]) -> list[dict[str, Path]]:
    """The systems that share a generation task. vLLM: one each (one engine start each, one after
    another: on a CPU box two engines would only fight over the cores); transformers `generate` leaves
    no engine memory behind: all of them, one process start."""
    return [models] if ev.engine == "transformers" else [{name: d} for name, d in models.items()]


def generate_answers(cfg: Config, models: dict[str, Path], posts: list[EvalPost]) -> Answers:
    """Each system of `models` (one of `task_groups`) answers every post, and samples
    eval.crisis_samples answers to each flagged post, in one Ray task."""
    for name, model_dir in models.items():
        if not (Path(model_dir) / "config.json").is_file():
            raise ConfigError(f"model {name!r}: no HF model at {model_dir} (config.json missing)")
    ev = cfg.eval
    requests = [Request([p.text for p in posts], Sampling(ev.max_new_tokens, ev.temperature))]
    flagged = [p.text for p in posts if p.flagged]
    if ev.crisis_samples and flagged:
        requests.append(
            Request(flagged, Sampling(ev.max_new_tokens, ev.crisis_temperature), ev.crisis_samples)
        )
    for name in models:
        log.info("eval: %s generates %d answers (engine %s)", name, len(posts), ev.engine)
    dirs = {name: str(d) for name, d in models.items()}
    results = sample_models(dirs, requests, cfg.data.max_prompt_tokens, ev.engine, ev.seed, eval_demand(ev))
    out = Answers()
    for name, (answers, seconds) in results.items():
        out.completions[name] = [group[0] for group in answers[0]]
        if len(answers) > 1:
            out.crisis[name] = answers[1]
        out.seconds[name] = seconds
    return out


def answer_rows(
    posts: list[EvalPost], completions: dict[str, list[str]], rm_scores: dict[str, list[float]] | None
) -> list[dict]:
    """One JSON-ready row per post with every system's completion parsed (for the rank UI and report)."""
    rows = []
    for i, post in enumerate(posts):
        systems = {}
        for name, texts in completions.items():
            parsed = coe.parse(texts[i])
            systems[name] = {
                "completion": texts[i],
                "answer": parsed.answer,
                "layers": parsed.layers,
                "valid": parsed.valid,
                "rm_score": rm_scores[name][i] if rm_scores else None,
            }
        rows.append(
            {
                "post_id": post.id,
                "post": post.text,
                "references": post.references,
                "flagged": post.flagged,
                "systems": systems,
            }
        )
    return rows
