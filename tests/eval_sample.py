"""A small eval folder made by the real scoring code from hand-written completions (no model needed)."""

from __future__ import annotations

from pathlib import Path

from empathy_ray.config import load_config
from empathy_ray.domain import coe
from empathy_ray.eval.answers import EvalPost
from empathy_ray.eval.run import score_answers, write_outputs

LAYERS = {"L1": "焦虑不安", "L2": "担心考不好", "L3": "想被安慰", "L4": "先共情再建议"}
POSTS = [
    EvalPost(f"p{i}", f"第{i}个帖子\n我最近压力很大，睡不着。", ["你辛苦了，先照顾好自己。"], flagged=False)
    for i in range(3)
]
ANSWERS = {"base": "嗯嗯嗯", "sft": "听起来你最近很辛苦。", "rl": "你已经很努力了，试着每天留点时间放松。"}
RM_SCORES = {"base": [0.0] * 3, "sft": [1.0] * 3, "rl": [2.0] * 3}  # rl always first, base always last


def write_sample_eval(out_dir: Path) -> Path:
    """eval.json, eval.md, answers.jsonl, judgements.jsonl for 3 posts x 3 systems, RM-judged."""
    cfg = load_config(None, ["eval.bootstrap=50"])
    completions = {
        "base": [ANSWERS["base"]] * 3,  # no CoE at all
        "sft": [coe.render(LAYERS, ANSWERS["sft"])] * 3,
        "rl": [coe.render(LAYERS, ANSWERS["rl"])] * 3,
    }
    result, rows, rankings = score_answers(cfg, POSTS, completions, RM_SCORES, "rm:test")
    result["timings"] = {"generate_s": {"base": 1.5, "sft": 2.5, "rl": 3.5}, "total_s": 9.0}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_outputs(out_dir, result, rows, rankings)
    return out_dir
