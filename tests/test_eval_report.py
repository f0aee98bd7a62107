"""report.html: self-contained (inline PNGs, no scripts or links), with curves, timings, eval and CoE viewer."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from empathy_ray.domain import coe
from empathy_ray.eval.human import CRITERIA, RankingStore
from empathy_ray.eval.rank_ui import STORE_NAME
from empathy_ray.eval.report import write_report
from empathy_ray.runtime.tracking import MetricsWriter
from tests.eval_sample import ANSWERS, LAYERS, write_sample_eval

PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _metrics(folder: Path, rows: list[tuple[int, dict]]) -> None:
    writer = MetricsWriter(folder, tensorboard=False)
    for step, values in rows:
        writer.log(step, values)
    writer.close()


def _self_contained(page: str) -> list[bytes]:
    assert "<script" not in page and "href=" not in page and not re.search(r'src="(?!data:)', page)
    images = [base64.b64decode(m) for m in PNG.findall(page)]
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    return images


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    run = tmp_path / "demo"
    _metrics(run / "sft", [(2, {"train/loss": 3.0}), (4, {"train/loss": 2.0}), (4, {"eval/loss": 2.5})])
    _metrics(
        run / "rm", [(1, {"train/loss": 0.7, "train/accuracy": 0.5}), (2, {"eval/pairwise_accuracy": 0.75})]
    )
    _metrics(
        run / "rl",
        [
            (s, {"reward/total_mean": 0.1 * s, "train/kl": 0.01 * s, "rollout/format_valid": 0.5})
            for s in (1, 2, 3)
        ],
    )
    summary = {
        "sft": {"wall_s": 12.5},
        "rm": {"wall_s": 7.5},
        "rl": {"wall_s": 30.0, "mean_phase_seconds": {"rollout": 1.5, "reward": 0.25}},
        "wall_s": 55.0,
    }
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    write_sample_eval(run / "eval")
    return run


def test_full_run_report(run_dir):
    store = RankingStore(run_dir / "eval" / STORE_NAME)
    store.add("dr.li", "p0", {key: {"sft": 1, "rl": 2, "base": 3} for key, _ in CRITERIA})
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    assert len(_self_contained(page)) == 3  # one figure per stage: SFT, RM, GRPO

    # timings: stage wall seconds, GRPO phases, eval generation per system
    for cell in (
        "<td class=num>12.50</td>",
        "<td class=num>7.50</td>",
        "<td>rollout</td>",
        "<td class=num>1.50</td>",
        "<td class=num>3.50</td>",
    ):
        assert cell in page
    # the eval tables come from eval.md: rl row with CoE valid 1.00, Win@1 100% by the RM judge
    assert re.search(r"<td>rl</td><td>1\.00</td>", page) and re.search(r"<td>base</td><td>0\.00</td>", page)
    assert re.search(r"<td>rl</td><td>100\.0% \[100\.0, 100\.0\]</td>", page)
    assert "judge: rm:test" in page
    # the reviewer's ranking shows up too: sft first on p0
    assert "Reviewers: overall" in page and re.search(
        r"<td>sft</td><td>100\.0% \[100\.0, 100\.0\]</td>", page
    )
    # CoE viewer: layers side by side with the reply; base has no layers
    assert f"<td>{LAYERS['L1']}</td>" in page and f"<td>{ANSWERS['rl']}</td>" in page
    assert "<td>base</td><td>—</td><td>—</td>" in page


def test_report_of_a_partial_run(tmp_path):
    run = tmp_path / "only-sft"
    _metrics(run / "sft", [(2, {"train/loss": 3.0}), (4, {"train/loss": 2.0})])
    sample = {"post_id": "eqa-1", "completion": coe.render(LAYERS, "我听见了。"), "reasons": []}
    (run / "sft" / "eval_samples.json").write_text(json.dumps([sample]), encoding="utf-8")
    page = write_report(run).read_text(encoding="utf-8")
    assert len(_self_contained(page)) == 1
    assert "Reward model: no metrics" in page and "GRPO: no metrics" in page and "No eval in this run" in page
    assert (
        "<td>sft</td><td>焦虑不安</td>" in page and "<td>我听见了。</td>" in page
    )  # SFT samples as fallback


def test_missing_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folder"):
        write_report(tmp_path / "nope")


def test_report_on_a_trained_run(trained_run):
    """The curves read the metric names the real SFT and RM stages write."""
    _, _, run = trained_run
    page = write_report(run).read_text(encoding="utf-8")
    assert len(_self_contained(page)) == 2  # SFT and RM; no GRPO stage in this run
    assert "<td>sft</td>" in page and "<td>rm</td>" in page and "GRPO: no metrics" in page
