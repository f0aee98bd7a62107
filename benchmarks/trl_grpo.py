"""TRL's GRPOTrainer on the settings `bench_e2e.py` gives it: the other side of the end-to-end comparison.

Runs with .venv's torch and transformers plus TRL from .cache/trl-site on PYTHONPATH (README.md), so
both sides use the same library versions. The reward is empathy-ray's own `RewardScorer` (rule terms,
no reward model), called on the same (post, completion) pairs as in the GRPO driver.

    PYTHONPATH=.:.cache/trl-site python -m benchmarks.trl_grpo SETTINGS.json OUT.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(settings_path: str, out_path: str) -> None:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from empathy_ray.actors.reward import RewardScorer
    from empathy_ray.config import RewardConfig

    s: dict[str, Any] = json.loads(Path(settings_path).read_text(encoding="utf-8"))
    scorer = RewardScorer(RewardConfig(**s["reward"]), None, s["max_prompt_tokens"], s["max_new_tokens"])

    def reward(prompts: list[str], completions: list[str], post: list[str], **_: Any) -> list[float]:
        return scorer.score(post, completions)["total"]

    class StepTimes(TrainerCallback):
        """Wall seconds from the start of each optimizer step (generation included) to its end."""

        def __init__(self) -> None:
            self.t0, self.seconds = 0.0, []

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds.append(time.perf_counter() - self.t0)

    data = Dataset.from_list([{"prompt": p, "post": post} for post, p in s["prompts"]])
    timer = StepTimes()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = GRPOConfig(
            output_dir=tmp,
            use_cpu=True,
            bf16=False,
            seed=s["seed"],
            max_steps=s["steps"],
            per_device_train_batch_size=s["prompts_per_step"] * s["group_size"],  # completions per step
            gradient_accumulation_steps=1,
            num_generations=s["group_size"],
            max_completion_length=s["max_new_tokens"],
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            learning_rate=s["lr"],
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=s["max_grad_norm"],
            beta=0.0,  # no KL term: no reference model, as kl_coef=0 on the empathy-ray side
            epsilon=s["clip"],
            loss_type="dapo",  # token mean over the whole batch, like rl.algo.agg=token_mean
            scale_rewards="group",  # (r - group mean) / group std, like rl.algo.estimator=grpo
            gradient_checkpointing=False,
            remove_unused_columns=False,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            model_init_kwargs={"dtype": torch.float32},
        )
        trainer = GRPOTrainer(model=s["model"], reward_funcs=reward, args=cfg, train_dataset=data)
        trainer.add_callback(timer)
        trainer.train()
    log = [h for h in trainer.state.log_history if "loss" in h]
    Path(out_path).write_text(
        json.dumps({"step_seconds": timer.seconds, "threads": torch.get_num_threads(), "log": log}),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
