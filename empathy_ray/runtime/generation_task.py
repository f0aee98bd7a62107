"""Answers to posts from a saved model, generated in a Ray task of their own (SFT validity, eval).

One worker process per call (`max_calls=1`): the engine starts there and the process exits
afterwards, so engines never pile up in one process and the driver never imports vLLM. The task asks
for the device its caller's config names (`Demand`): on a cluster it lands on a GPU node, never on
the GPU-less head that runs the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from empathy_ray.modeling.generation import Engine, Sampling
from empathy_ray.runtime.resources import Demand


def answer_posts(
    model_dir: str,
    post_texts: list[str],
    max_prompt_tokens: int,
    sampling: Sampling,
    engine: Engine = "vllm",
    seed: int = 0,
    demand: Demand | None = None,
) -> list[str]:
    """One answer text per post (in order), every post sampled with `seed`, in a task asking `demand`
    (default: one CPU)."""
    return run_model_task(
        _answer_task, demand, model_dir, post_texts, max_prompt_tokens, sampling, engine, seed
    )


def run_model_task(fn: Callable[..., Any], demand: Demand | None, *args: Any) -> Any:
    """`fn(*args)` in a fresh Ray worker process that asks for `demand` (one CPU when None)."""
    import ray

    from empathy_ray.runtime.logs import LOG_FILE_ENV, role_log, tag_role

    demand = demand or Demand(1, 1.0)
    options = {"num_cpus": demand.cpus, "num_gpus": demand.gpus, "resources": demand.resources or None}
    log_file = role_log("generation")  # the engine's output: into the run's generation.log
    if log_file:
        options["runtime_env"] = {"env_vars": {LOG_FILE_ENV: log_file}}
    try:
        return ray.get(ray.remote(max_calls=1, **options)(fn).remote(*args))
    except Exception as e:
        tag_role(e, "generation")
        raise


def _answer_task(
    model_dir: str,
    post_texts: list[str],
    max_prompt_tokens: int,
    sampling: Sampling,
    engine: Engine,
    seed: int,
) -> list[str]:
    """Runs in the Ray worker: the model's own tokenizer builds the prompts, then one batched sample."""
    from transformers import AutoTokenizer

    from empathy_ray.modeling.chat import prompt_ids
    from empathy_ray.modeling.generation import make_generator
    from empathy_ray.runtime.process import setup_process

    setup_process()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [prompt_ids(tokenizer, t, max_prompt_tokens) for t in post_texts]
    generator = make_generator(model_dir, engine, seed=seed)
    groups = generator.sample(prompts, sampling, n=1, seeds=[seed] * len(prompts))
    return [group[0].text for group in groups]
