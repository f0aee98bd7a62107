"""`empathy-ray data validate | convert-psyqa | samples` through the real dispatcher."""

from __future__ import annotations

import json
import os
from pathlib import Path

from empathy_ray.cli import main
from empathy_ray.data import io, samples

FIXTURES = Path(__file__).parent / "fixtures"
POSTS, PAIRS = str(FIXTURES / "posts_good.jsonl"), str(FIXTURES / "pairs_good.jsonl")


def test_validate_ok(capsys):
    assert main(["data", "validate", POSTS, PAIRS]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"OK {POSTS}: 3 posts, 4 answers",
        f"OK {PAIRS}: 2 preference pairs",
    ]


def test_validate_lists_problems_capped(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    rows = [json.dumps({"id": f"p{n}", "answers": []}) for n in range(5)]
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["data", "validate", POSTS, str(bad), "--max-problems", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"OK {POSTS}: 3 posts, 4 answers",
        f"{bad}:1: topic: missing required field",
        f"{bad}:1: subtopic: missing required field",
        f"{bad}:1: question: missing required field",
        "... and 22 more problems",
    ]
    assert captured.err.strip() == "25 problems in 1 of 2 files"


def test_validate_missing_file(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "x.jsonl")]) == 2
    assert capsys.readouterr().out.splitlines() == [f"{tmp_path / 'x.jsonl'}: file: file not found"]


def test_convert_psyqa_to_parquet(tmp_path, capsys):
    out = tmp_path / "psyqa.parquet"
    assert (
        main(
            [
                "data",
                "convert-psyqa",
                str(FIXTURES / "psyqa_small.json"),
                str(out),
                "--min-answer-chars",
                "100",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("4 PsyQA records -> 2 posts with 2 answers")
    assert [p.topic for p in io.read_posts(out)] == ["人际", "职场"]


def test_convert_psyqa_bad_input_writes_nothing(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"question": "q"}\n', encoding="utf-8")
    assert main(["data", "convert-psyqa", str(src), str(tmp_path / "out.jsonl")]) == 2
    assert f"{src}:1: question: each record needs" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["in.jsonl"]


def test_samples_writes_merged_files(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "posts-a.jsonl").write_bytes((FIXTURES / "posts_good.jsonl").read_bytes())
    (folder / "preferences-a.jsonl").write_bytes((FIXTURES / "pairs_good.jsonl").read_bytes())
    monkeypatch.setattr(samples, "SAMPLES_DIR", folder)
    out = tmp_path / "out" / "data"
    assert main(["data", "samples", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["posts.jsonl", "preferences.jsonl"]
    assert io.read_posts(out / "posts.jsonl") == io.read_posts(FIXTURES / "posts_good.jsonl")
    assert io.read_pairs(out / "preferences.jsonl") == io.read_pairs(FIXTURES / "pairs_good.jsonl")
    assert "wrote 3 posts" in capsys.readouterr().out


def test_samples_without_sample_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(samples, "SAMPLES_DIR", tmp_path)
    assert main(["data", "samples", str(tmp_path / "out")]) == 2
    assert "no posts-*.jsonl or preferences-*.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
