"""`empathy-ray eval`, `empathy-ray rank-ui` and `empathy-ray report`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from empathy_ray.config import ConfigError, load_config
from empathy_ray.runtime.run_dir import RunLayout

log = logging.getLogger(__name__)


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", action="append", required=True, metavar="NAME=DIR", help="a system to evaluate (repeat)"
    )
    p.add_argument("--rm", default=None, metavar="DIR", help="reward model: mean RM score and the RM judge")
    p.add_argument("--data", default=None, metavar="PATH", help="posts file (sets data.posts)")
    p.add_argument("--split", default=None, choices=("train", "val", "test"), help="sets eval.split")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: <run dir>/eval)")
    p.add_argument("--config", default=None, help="YAML recipe (default: the embedded demo recipe)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. eval.max_posts=8 eval.judge=none")


def add_rank_ui_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval", required=True, metavar="DIR", help="a run folder or its eval folder (eval.json)")
    p.add_argument("--port", type=int, default=8765)


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the run folder (runs/<name>)")


def parse_models(specs: list[str]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--model {spec!r}: expected NAME=DIR, e.g. --model sft=runs/demo/sft/model")
        if name in models:
            raise ConfigError(f"--model {spec!r}: the name {name!r} is given twice")
        models[name] = Path(path)
    return models


def eval_main(args: argparse.Namespace) -> int:
    from empathy_ray.eval.run import run_eval
    from empathy_ray.runtime.process import setup_process

    setup_process()
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.posts={args.data}")
    if args.split:
        overrides.append(f"eval.split={args.split}")
    try:
        cfg = load_config(args.config, overrides)
        models = parse_models(args.model)
        out = Path(args.out) if args.out else RunLayout.of(cfg).eval_dir
        run_eval(cfg, models, out, Path(args.rm) if args.rm else None)
    except ConfigError as e:
        log.error("%s", e)
        return 2
    print((out / "eval.md").read_text(encoding="utf-8"))
    print(f"written: {out / 'eval.json'}")
    return 0


def rank_ui_main(args: argparse.Namespace) -> int:
    from empathy_ray.eval.rank_ui import find_eval_dir, serve
    from empathy_ray.runtime.process import setup_process

    setup_process()
    try:
        eval_dir = find_eval_dir(Path(args.eval))
    except FileNotFoundError as e:
        log.error("%s", e)
        return 2
    serve(eval_dir, port=args.port)
    return 0


def report_main(args: argparse.Namespace) -> int:
    from empathy_ray.eval.report import write_report

    print(write_report(Path(args.run_dir)))
    return 0
