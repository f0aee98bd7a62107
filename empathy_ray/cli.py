"""The `empathy-ray` command line.

Each sub-command imports its implementation lazily so that `empathy-ray coe check` does not pay
for importing Ray, torch or vLLM.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# sub-command -> (module, function, help). The function takes the parsed argparse.Namespace and
# returns the process exit code.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "empathy_ray.pipeline.commands",
        "demo_main",
        "run the whole pipeline on the tiny model and sample data",
    ),
    "coe check": ("empathy_ray.domain.coe", "check_main", "validate a Chain-of-Empathy completion"),
    "data validate": ("empathy_ray.data.cli", "validate_main", "check Empathy-QA / preference files"),
    "data convert-psyqa": ("empathy_ray.data.cli", "convert_psyqa_main", "convert PsyQA JSON to Empathy-QA"),
    "data samples": ("empathy_ray.data.cli", "samples_main", "write the embedded sample data to a folder"),
    "model tiny": ("empathy_ray.modeling.tiny", "tiny_main", "build a random-weight tiny model offline"),
    "sft": ("empathy_ray.pipeline.commands", "sft_main", "CoE supervised fine-tuning as a Ray Train job"),
    "rm": ("empathy_ray.pipeline.commands", "rm_main", "reward-model training as a Ray Train job"),
    "rl": (
        "empathy_ray.pipeline.commands",
        "rl_main",
        "GRPO on Ray actors (runs SFT and RM first when their outputs are missing)",
    ),
    "eval": ("empathy_ray.eval.cli", "eval_main", "automatic metrics and Win@K of models on held-out posts"),
    "rank-ui": ("empathy_ray.eval.cli", "rank_ui_main", "web page for clinicians to rank eval answers"),
    "report": ("empathy_ray.eval.cli", "report_main", "write runs/<run>/report.html"),
    "safety eval": (
        "empathy_ray.eval.safety",
        "safety_eval_main",
        "recall and false alarms of the crisis guard on a labelled set",
    ),
    "safety train-classifier": (
        "empathy_ray.eval.safety_training",
        "train_main",
        "retrain the crisis guard's learned second opinion (safety_model.json) from the tuning sets",
    ),
    "serve": (
        "empathy_ray.serve.cli",
        "serve_main",
        "deploy a model on Ray Serve behind an OpenAI-compatible API (with the crisis-safety guard)",
    ),
}


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML recipe (default: the embedded demo recipe)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. sft.lr=2e-4")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="empathy-ray", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (_, _, help_) in _COMMANDS.items():
        words = name.split()
        if len(words) == 2:
            if words[0] not in groups:
                g = sub.add_parser(words[0], help=f"{words[0]} tools")
                groups[words[0]] = g.add_subparsers(dest="subcommand", required=True)
            p = groups[words[0]].add_parser(words[1], help=help_)
        else:
            p = sub.add_parser(name, help=help_)
        p.set_defaults(_target=name)
        _ARGS.get(name, _add_config_args)(p)
    return parser


def _coe_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default="-", help="file with the completion, or - for stdin")


def _data_validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="JSONL or Parquet files (posts or preference pairs)")
    p.add_argument("--max-problems", type=int, default=50, help="print at most this many problems")


def _convert_psyqa_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="PsyQA JSON (list) or JSONL file")
    p.add_argument("output", help="Empathy-QA output (.jsonl or .parquet)")
    p.add_argument(
        "--min-answer-chars", type=int, default=0, help="drop answers shorter than this (paper: 100)"
    )


def _samples_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", help="folder to write posts.jsonl and preferences.jsonl into")


def _tiny_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir", help="where to save the HF model directory")
    p.add_argument("--preset", default="demo", help="size preset (see empathy_ray.modeling.tiny.PRESETS)")
    p.add_argument("--seed", type=int, default=0)


def _pipeline_args(p: argparse.ArgumentParser) -> None:
    _add_config_args(p)
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show Ray, vLLM and DeepSpeed output live (tracking.verbose=true); else it goes to <run>/logs/",
    )


def _rl_args(p: argparse.ArgumentParser) -> None:
    _pipeline_args(p)
    p.add_argument("--resume", action="store_true", help="continue GRPO from the run's last checkpoint")


def _eval_args(name: str):
    """The eval commands' argument builders live beside them (imported lazily, like the commands)."""
    return lambda p: getattr(importlib.import_module("empathy_ray.eval.cli"), name)(p)


def _serve_args(p: argparse.ArgumentParser) -> None:
    _add_config_args(p)
    p.add_argument(
        "--model", default="", help="HF model directory (default: the run's GRPO, else SFT output)"
    )


_ARGS = {
    "serve": _serve_args,
    "demo": _pipeline_args,
    "sft": _pipeline_args,
    "rm": _pipeline_args,
    "rl": _rl_args,
    "eval": _eval_args("add_eval_args"),
    "rank-ui": _eval_args("add_rank_ui_args"),
    "safety eval": lambda p: importlib.import_module("empathy_ray.eval.safety").add_safety_eval_args(p),
    "safety train-classifier": lambda p: importlib.import_module(
        "empathy_ray.eval.safety_training"
    ).add_train_args(p),
    "report": _eval_args("add_report_args"),
    "coe check": _coe_check_args,
    "data validate": _data_validate_args,
    "data convert-psyqa": _convert_psyqa_args,
    "data samples": _samples_args,
    "model tiny": _tiny_args,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # argparse fills a trailing list positional (overrides, files) only up to the first option, so
    # `safety eval set.jsonl --guard serve.safety.guard_url=...` would reject the URL: words after an
    # option join that list instead; anything else unknown is still an error.
    args, extra = parser.parse_known_args(argv)
    trailing = next(
        (getattr(args, n) for n in ("overrides", "files") if isinstance(getattr(args, n, None), list)), None
    )
    if extra and (trailing is None or any(word.startswith("-") for word in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        trailing.extend(extra)
    module, func, _ = _COMMANDS[args._target]
    return int(getattr(importlib.import_module(module), func)(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
