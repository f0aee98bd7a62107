"""Answers to posts from a saved model, generated in a Ray task of their own (SFT validity, eval).

A vLLM engine, or anything on a GPU, gets a worker process of its own (`max_calls=1`): the engine
starts there and the process exits afterwards, so engines and cached GPU memory never pile up in one
process, and the driver never imports vLLM. A CPU task without vLLM (transformers `generate`, RM
scoring) may run in a worker that an earlier such task of the run left idle, which has torch and
transformers imported already (~8 CPU-seconds a process start on this box). The task asks for the
device its caller's config names (`Demand`): on a cluster it lands on a GPU node, never on the GPU-less
head that runs the driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from empathy_ray.modeling.generation import Engine, Sampling
from empathy_ray.runtime.resources import Demand


@dataclass(frozen=True)
class Request:
    """Texts to answer with one sampling setting, `n` answers each (seeded per text: answer j of a
    text is drawn with seed + j)."""

    texts: list[str]
    sampling: Sampling
    n: int = 1


def sample_posts(
    model_dir: str,
    requests: list[Request],
    max_prompt_tokens: int,
    engine: Engine = "vllm",
    seed: int = 0,
    demand: Demand | None = None,
) -> list[list[list[str]]]:
    """For each request, for each of its texts, its n answers: one engine start serves every request,
    in a task asking `demand` (default: one CPU)."""
    args = (model_dir, requests, max_prompt_tokens, engine, seed)
    return run_model_task(_sample_task, demand, *args, fresh_process=engine == "vllm")


def sample_models(
    model_dirs: dict[str, str],
    requests: list[Request],
    max_prompt_tokens: int,
    engine: Engine,
    seed: int = 0,
    demand: Demand | None = None,
) -> dict[str, tuple[list[list[list[str]]], float]]:
    """`sample_posts` for each model, one after another in one task, with the seconds each took there
    (several only with transformers `generate`, which leaves no engine memory behind)."""
    args = (model_dirs, requests, max_prompt_tokens, engine, seed)
    return run_model_task(_sample_each_task, demand, *args, fresh_process=engine == "vllm")


def answer_posts(
    model_dir: str,
    post_texts: list[str],
    max_prompt_tokens: int,
    sampling: Sampling,
    engine: Engine = "vllm",
    seed: int = 0,
    demand: Demand | None = None,
) -> list[str]:
    """One answer text per post (in order), every post sampled with `seed`."""
    (groups,) = sample_posts(
        model_dir, [Request(post_texts, sampling)], max_prompt_tokens, engine, seed, demand
    )
    return [group[0] for group in groups]


def run_model_task(
    fn: Callable[..., Any], demand: Demand | None, *args: Any, fresh_process: bool = True
) -> Any:
    """`fn(*args)` in a Ray task that asks for `demand` (one CPU when None), in a worker process of its
    own when `fresh_process` or the task asks for a GPU."""
    import ray

    from empathy_ray.runtime.logs import LOG_FILE_ENV, role_log, tag_role

    demand = demand or Demand(1, 1.0)
    options = {"num_cpus": demand.cpus, "num_gpus": demand.gpus, "resources": demand.resources or None}
    options["max_calls"] = 1 if fresh_process or demand.gpus > 0 else 0
    log_file = role_log("generation")  # the engine's output: into the run's generation.log
    if log_file:
        options["runtime_env"] = {"env_vars": {LOG_FILE_ENV: log_file}}
    try:
        return ray.get(ray.remote(**options)(fn).remote(*args))
    except Exception as e:
        tag_role(e, "generation")
        raise


def _sample_task(
    model_dir: str, requests: list[Request], max_prompt_tokens: int, engine: Engine, seed: int
) -> list[list[list[str]]]:
    """Runs in the Ray worker: the model's own tokenizer builds the prompts, then one batched sample
    per request."""
    from transformers import AutoTokenizer

    from empathy_ray.modeling.chat import prompt_ids
    from empathy_ray.modeling.generation import make_generator
    from empathy_ray.runtime.process import setup_process

    setup_process()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    generator = make_generator(model_dir, engine, seed=seed)
    out = []
    for req in requests:
        prompts = [prompt_ids(tokenizer, t, max_prompt_tokens) for t in req.texts]
        groups = generator.sample(prompts, req.sampling, n=req.n, seeds=[seed] * len(prompts))
        out.append([[c.text for c in group] for group in groups])
    return out


def _sample_each_task(
    model_dirs: dict[str, str], requests: list[Request], max_prompt_tokens: int, engine: Engine, seed: int
) -> dict[str, tuple[list[list[list[str]]], float]]:
    out = {}
    for name, model_dir in model_dirs.items():
        t0 = time.perf_counter()
        answers = _sample_task(model_dir, requests, max_prompt_tokens, engine, seed)
        out[name] = (answers, round(time.perf_counter() - t0, 2))
    return out
