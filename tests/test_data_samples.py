"""Packaged samples (still being written by others: checked loosely, but any present must be valid)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from empathy_ray.data import samples
from empathy_ray.data.errors import DataError
from empathy_ray.data.validate import check_file

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGED = sorted(samples.SAMPLES_DIR.glob("posts-*.jsonl")) + sorted(
    samples.SAMPLES_DIR.glob("preferences-*.jsonl")
)


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_packaged_sample_file_is_valid(path):
    report = check_file(str(path))
    assert [str(p) for p in report.problems] == []
    assert report.kind == ("posts" if path.name.startswith("posts-") else "pairs")


def test_packaged_samples_load_together():
    posts, pairs = samples.load_sample_posts(), samples.load_sample_pairs()
    assert len({p.id for p in posts}) == len(posts)
    assert len({p.id for p in pairs}) == len(pairs)
    assert all(p.answers for p in posts)


def fake_samples(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "posts_good.jsonl", tmp_path / "posts-b.jsonl")
    (tmp_path / "posts-a.jsonl").write_text(
        (FIXTURES / "posts_good.jsonl").read_text(encoding="utf-8").replace('"fx-', '"a-'), encoding="utf-8"
    )
    shutil.copy(FIXTURES / "pairs_good.jsonl", tmp_path / "preferences-a.jsonl")
    (tmp_path / "notes.jsonl").write_text("not a sample\n", encoding="utf-8")
    return tmp_path


def test_files_are_merged_in_name_order(tmp_path):
    folder = fake_samples(tmp_path)
    posts = samples.load_sample_posts(folder)
    assert [p.id for p in posts] == ["a-1", "a-2", "a-3", "fx-1", "fx-2", "fx-3"]
    assert [p.id for p in samples.load_sample_pairs(folder)] == ["fxp-1", "fxp-2"]


def test_ids_must_be_unique_across_files(tmp_path):
    folder = fake_samples(tmp_path)
    shutil.copy(FIXTURES / "posts_good.jsonl", folder / "posts-c.jsonl")
    with pytest.raises(DataError) as info:
        samples.load_sample_posts(folder)
    assert [str(p) for p in info.value.problems][0] == (
        f"{folder / 'posts-c.jsonl'}: id: id 'fx-1' is already used in posts-b.jsonl; ids must be unique across sample files"
    )
    assert len(info.value.problems) == 3
