"""`empathy-ray eval` end to end on two tiny models: vLLM generation in Ray tasks, RM scores, RM judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from empathy_ray.cli import main
from empathy_ray.eval.ranking import ranks_from_scores

POSTS = 3


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory) -> Path:
    from empathy_ray.modeling.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-seed1", preset="test", seed=1)


def test_eval_cli_two_models_rm_judge(ray_cluster, tiny_model_dir, other_model_dir, rm_dir, tmp_path):
    out = tmp_path / "eval"
    args = ["eval", "--model", f"seed0={tiny_model_dir}", "--model", f"seed1={other_model_dir}"]
    args += ["--rm", str(rm_dir), "--split", "test", "--out", str(out)]
    args += [f"eval.max_posts={POSTS}", "eval.max_new_tokens=12", "eval.bootstrap=200"]
    assert main(args) == 0

    result = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert len(result["post_ids"]) == POSTS and result["engine"] == "vllm"
    assert set(result["metrics"]) == {"seed0", "seed1"}
    for row in result["metrics"].values():
        assert row["posts"] == POSTS and 0 <= row["coe_validity"] <= 1 and row["rm_score"] is not None
        assert 0 <= row["distinct_1"] <= 1 and row["mean_length"] >= 0

    rows = [json.loads(line) for line in (out / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    judgements = [
        json.loads(line) for line in (out / "judgements.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["post_id"] for r in rows] == [j["post_id"] for j in judgements] == result["post_ids"]
    for row, judged in zip(rows, judgements, strict=True):
        scores = {s: v["rm_score"] for s, v in row["systems"].items()}
        assert judged["ranks"] == ranks_from_scores(scores)  # the RM judge ranks by the RM scores
        assert row["systems"]["seed0"]["answer"] is not None and row["references"]
    # the mean RM score in the table is the mean of the per-answer scores
    mean0 = sum(r["systems"]["seed0"]["rm_score"] for r in rows) / POSTS
    assert result["metrics"]["seed0"]["rm_score"] == pytest.approx(mean0)

    judge = result["judge"]
    assert judge["kind"] == "rm" and judge["summary"]["judges"] == [f"rm:{rm_dir.resolve()}"]
    assert judge["summary"]["counts"]["judged"] == POSTS and judge["failures"] == []
    wins = judge["summary"]["systems"]
    assert wins["seed0"]["win@2"] == wins["seed1"]["win@2"] == 1.0  # two systems: always in the top 2
    md = (out / "eval.md").read_text(encoding="utf-8")
    assert "| seed0 |" in md and "Win@1" in md and "rm:" in md


def test_transformers_answers_every_system_in_one_task(ray_cluster, tiny_model_dir, other_model_dir):
    """transformers `generate` leaves no engine memory behind, so one task answers for every system:
    each gets the answers it gives in a task of its own."""
    from empathy_ray.config import load_config
    from empathy_ray.eval.answers import generate_answers, select_posts

    overrides = [
        "eval.engine=transformers",
        "eval.max_posts=2",
        "eval.max_new_tokens=12",
        "eval.temperature=1.0",
    ]
    cfg = load_config(None, overrides)
    posts = select_posts(cfg)
    together = generate_answers(cfg, {"seed0": tiny_model_dir, "seed1": other_model_dir}, posts)
    alone = generate_answers(cfg, {"seed1": other_model_dir}, posts)
    assert len(together.completions["seed1"]) == len(posts) == 2
    assert together.completions["seed1"] == alone.completions["seed1"]
    assert together.completions["seed0"] != together.completions["seed1"]
    assert set(together.seconds) == {"seed0", "seed1"} and all(s > 0 for s in together.seconds.values())
