"""Answers to posts from a saved model, generated in a Ray task of their own (SFT validity, eval).

One worker process per call (`max_calls=1`): the engine starts there and the process exits
afterwards, so engines never pile up in one process and the driver never imports vLLM.
"""

from __future__ import annotations

from empathy_ray.modeling.generation import Engine, Sampling


def answer_posts(
    model_dir: str,
    post_texts: list[str],
    max_prompt_tokens: int,
    sampling: Sampling,
    engine: Engine = "vllm",
    seed: int = 0,
    num_gpus: float = 0,
) -> list[str]:
    """One answer text per post (in order), every post sampled with `seed`."""
    import ray

    task = ray.remote(num_cpus=1, num_gpus=num_gpus, max_calls=1)(_answer_task)
    return ray.get(task.remote(model_dir, post_texts, max_prompt_tokens, sampling, engine, seed))


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
