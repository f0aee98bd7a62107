"""`empathy-ray data ...` sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from empathy_ray.data import samples
from empathy_ray.data.errors import DataError, Problem, format_problems
from empathy_ray.data.io import write_pairs, write_posts
from empathy_ray.data.psyqa import convert_psyqa, read_psyqa
from empathy_ray.data.validate import FileReport, check_file


def _summary(report: FileReport) -> str:
    if report.kind == "posts":
        answers = sum(len(row["answers"]) for row in report.rows)
        return f"OK {report.path}: {len(report.rows)} posts, {answers} answers"
    return f"OK {report.path}: {len(report.rows)} preference pairs"


def validate_main(args: argparse.Namespace) -> int:
    """Exit 0 and one OK line per file when everything is valid; else list the problems and exit 2."""
    problems: list[Problem] = []
    for path in args.paths:
        report = check_file(path)
        if report.problems:
            problems += report.problems
        else:
            print(_summary(report))
    if not problems:
        return 0
    print(format_problems(problems, args.max_problems))
    files = len({p.path for p in problems})
    print(f"{len(problems)} problems in {files} of {len(args.paths)} files", file=sys.stderr)
    return 2


def convert_psyqa_main(args: argparse.Namespace) -> int:
    try:
        posts, stats = convert_psyqa(read_psyqa(args.input), args.min_answer_chars, path=args.input)
        write_posts(args.output, posts)
    except DataError as e:
        print(f"data convert-psyqa: nothing written:\n{e}", file=sys.stderr)
        return 2
    print(f"{stats.summary()}; wrote {args.output}")
    return 0


def samples_main(args: argparse.Namespace) -> int:
    """Merge the packaged samples into OUT_DIR/posts.jsonl and OUT_DIR/preferences.jsonl."""
    try:
        posts, pairs = samples.load_sample_posts(), samples.load_sample_pairs()
    except DataError as e:
        print(f"data samples: the packaged samples are invalid:\n{e}", file=sys.stderr)
        return 2
    if not posts or not pairs:
        print(
            f"data samples: no posts-*.jsonl or preferences-*.jsonl in {samples.SAMPLES_DIR}", file=sys.stderr
        )
        return 2
    out = Path(args.out_dir)
    write_posts(out / "posts.jsonl", posts)
    write_pairs(out / "preferences.jsonl", pairs)
    print(
        f"wrote {len(posts)} posts to {out / 'posts.jsonl'} and {len(pairs)} pairs to {out / 'preferences.jsonl'}"
    )
    return 0
