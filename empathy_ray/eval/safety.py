"""`empathy-ray safety eval [FILE ...]`: recall and false alarms of the crisis guard on a labelled set.

The set is JSONL, one object per line (tests/data/safety/README.md describes it):
  * {"type": "message", "id", "text", "label": "risk"|"none", "category", "split"}
  * {"type": "conversation", "id", "messages": [{"role", "content"}, ...], "label", "risk_turn",
    "category", "split"}: `risk_turn` is the index in `messages` of the user turn that carries the risk
    (null for "none").
  * {"type": "answer", "id", "text", "label", "category", "split"}: a model's reply, for the output check
    (`domain/safety_output.check_output`): "risk" must be blocked before it is shown, "none" must pass.
A message is caught when `assess` flags it. A risky conversation is caught when its risk turn is flagged
and so the conversation (`assess_conversation`, the rule the server applies); a benign one is a false
alarm when any of its user turns is flagged. Per category the table shows recall (positives) or the
false-alarm rate (negatives); the command fails when any file falls below the configured standard,
`serve.safety.min_recall` / `serve.safety.max_false_alarm_rate`.

`--guard` measures what the server does with a guard model (`serve.safety.guard_url` / `guard_model`):
each case is also sent to the guard as the conversation the server would send, and a case the rules leave
alone counts as flagged when the guard raises it (or when it fails and `guard_fail_closed` makes that
"low"). The guard cannot lower a rule's verdict, so its figures are at least the rules'. How the guard
answered is counted and printed (agree, raised, timeout, error, invalid), never the texts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from empathy_ray.domain.safety import assess
from empathy_ray.domain.safety_conversation import assess_conversation, assess_turns
from empathy_ray.domain.safety_output import check_output
from empathy_ray.guard import GuardClient

if TYPE_CHECKING:  # the config package imports torch; neither user needs it at run time
    from empathy_ray.config.stages import ServeSafetyConfig

log = logging.getLogger(__name__)

_REPO_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "safety"
DEFAULT_FILES = (_REPO_SET / "tune.jsonl", _REPO_SET / "tune2.jsonl", _REPO_SET / "test.jsonl")
_ROLES = ("system", "user", "assistant")


class SafetySetError(ValueError):
    """A row of a labelled safety set is malformed; the message names file, line and field."""


@dataclass(frozen=True)
class Item:
    """One labelled case: a single message, a conversation (then `messages` is set) or a model's answer
    (`answer`: judged by the output check, not the risk assessment)."""

    id: str
    category: str
    risky: bool
    text: str = ""
    messages: tuple[dict[str, str], ...] = ()
    risk_turn: int | None = None
    answer: bool = False


def _field(row: dict, name: str, kind: type, where: str) -> object:
    value = row.get(name)
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise SafetySetError(f"{where}: field {name!r}: expected a non-empty {kind.__name__}, got {value!r}")
    return value


def _messages(row: dict, where: str) -> tuple[dict[str, str], ...]:
    raw = _field(row, "messages", list, where)
    for i, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise SafetySetError(f"{where}: field 'messages[{i}].role': expected one of {_ROLES}")
        if not isinstance(message.get("content"), str):
            raise SafetySetError(f"{where}: field 'messages[{i}].content': expected a string")
    return tuple(raw)


def _parse_row(row: object, where: str) -> Item:
    if not isinstance(row, dict):
        raise SafetySetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    label = row.get("label")
    if label not in ("risk", "none"):
        raise SafetySetError(f"{where}: field 'label': expected 'risk' or 'none', got {label!r}")
    ident, category = _field(row, "id", str, where), _field(row, "category", str, where)
    kind = row.get("type", "conversation" if "messages" in row else "message")
    if kind in ("message", "answer"):
        text = _field(row, "text", str, where)
        return Item(ident, category, label == "risk", text=text, answer=kind == "answer")
    if kind != "conversation":
        raise SafetySetError(
            f"{where}: field 'type': expected 'message', 'conversation' or 'answer', got {kind!r}"
        )
    messages = _messages(row, where)
    turn = row.get("risk_turn")
    if label == "none" and turn is not None:
        raise SafetySetError(f"{where}: field 'risk_turn': must be null for a conversation labelled 'none'")
    if label == "risk" and not (
        isinstance(turn, int) and 0 <= turn < len(messages) and messages[turn]["role"] == "user"
    ):
        raise SafetySetError(
            f"{where}: field 'risk_turn': expected the index of a user message, got {turn!r}"
        )
    return Item(ident, category, label == "risk", messages=messages, risk_turn=turn)


def load_set(path: Path) -> list[Item]:
    """Every row of one JSONL file, checked; errors name the file, line and field."""
    if not path.is_file():
        raise SafetySetError(f"{path}: no such file")
    items: list[Item] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SafetySetError(f"{where}: not valid JSON: {e}") from e
        items.append(_parse_row(row, where))
    if not items:
        raise SafetySetError(f"{path}: no rows")
    return items


def flagged(item: Item) -> bool:
    """Does the guard take the safety path where the label says it should (or, for negatives, at all)?"""
    if item.answer:
        return check_output(item.text).blocked
    if not item.messages:
        return assess(item.text).is_risky
    whole, _ = assess_conversation(item.messages)
    if not item.risky or not whole.is_risky:
        return whole.is_risky
    return any(i == item.risk_turn and a.is_risky for i, a in assess_turns(item.messages))


@dataclass(frozen=True)
class Row:
    """Figures for one category (or "overall") and one side: positives (recall) or negatives."""

    category: str
    positive: bool
    total: int
    flagged: int
    misses: tuple[str, ...]

    @property
    def rate(self) -> float:
        """Recall for positives, false-alarm rate for negatives."""
        return self.flagged / self.total


async def guard_hits(
    items: Sequence[Item], cfg: ServeSafetyConfig, concurrency: int = 8
) -> tuple[list[bool], Counter[str]]:
    """Per item, is it flagged once the guard model has had its say (module docstring); and how the guard
    answered. `concurrency` requests are in flight at a time."""
    client = GuardClient(cfg)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Item) -> bool:
        if item.answer:  # the guard rates conversations; answers go through the output check only
            return flagged(item)
        messages = item.messages or ({"role": "user", "content": item.text},)
        rules, turn = assess_conversation(messages)
        async with gate:
            outcome = await client.review(messages, rules, turn)
        return flagged(item) or (outcome.assessment.is_risky and not rules.is_risky)

    try:
        hits = await asyncio.gather(*(one(item) for item in items))
    finally:
        await client.aclose()
    return list(hits), client.counts


def score(items: Iterable[Item], hits: Sequence[bool] | None = None) -> list[Row]:
    """Per category and side, in first-seen order, then the two overall rows. `hits`: whether each item
    was flagged, when already decided (by `guard_hits`); else the rules decide."""
    items = list(items)
    hits = [flagged(item) for item in items] if hits is None else hits
    groups: dict[tuple[str, bool], list[tuple[Item, bool]]] = {}
    for item, hit in zip(items, hits, strict=True):
        groups.setdefault((item.category, item.risky), []).append((item, hit))
    rows = []
    for side in (True, False):
        members = [(key, group) for key, group in groups.items() if key[1] == side]
        for (category, _), group in members:
            rows.append(_row(category, side, group))
        if members:
            rows.append(_row("overall", side, [pair for _, group in members for pair in group]))
    return rows


def _row(category: str, positive: bool, group: list[tuple[Item, bool]]) -> Row:
    hits = sum(hit for _, hit in group)
    misses = tuple(item.id for item, hit in group if hit != positive)
    return Row(category, positive, len(group), hits, misses)


def render(path: Path, rows: list[Row], show_misses: bool) -> str:
    """A Markdown table (the README shows it as printed)."""
    lines = [
        f"{path} ({sum(r.total for r in rows if r.category == 'overall')} items)",
        "",
        "| category | kind | n | flagged | recall | false alarms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"**{r.category}**" if r.category == "overall" else r.category
        recall, alarms = (f"{r.rate:.1%}", "") if r.positive else ("", f"{r.rate:.1%}")
        kind = "positive" if r.positive else "negative"
        lines.append(f"| {name} | {kind} | {r.total} | {r.flagged} | {recall} | {alarms} |")
        if show_misses and r.misses and r.category != "overall":
            lines.append(f"|  | misses: {', '.join(r.misses)} |  |  |  |  |")
    return "\n".join(lines)


def verdict(rows: list[Row], min_recall: float, max_false_alarm_rate: float) -> list[str]:
    """What falls below the standard (empty: the file passes)."""
    problems = []
    for r in rows:
        if r.category != "overall":
            continue
        if r.positive and r.rate < min_recall:
            problems.append(f"recall {r.rate:.1%} < serve.safety.min_recall {min_recall:.1%}")
        if not r.positive and r.rate > max_false_alarm_rate:
            problems.append(
                f"false alarms {r.rate:.1%} > serve.safety.max_false_alarm_rate {max_false_alarm_rate:.1%}"
            )
    return problems


def add_safety_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="*",
        help="labelled JSONL files (default: the repository's tests/data/safety/tune.jsonl, tune2.jsonl, test.jsonl) "
        "and dotted overrides, e.g. serve.safety.min_recall=0.9",
    )
    p.add_argument("--show-misses", action="store_true", help="list the ids of missed cases and false alarms")
    p.add_argument(
        "--config", default=None, help="YAML recipe holding serve.safety (default: the built-in one)"
    )
    p.add_argument(
        "--guard",
        action="store_true",
        help="also ask the guard model (serve.safety.guard_url / guard_model), as the server does",
    )
    p.add_argument(
        "--guard-concurrency", type=int, default=8, help="guard requests in flight at a time (default 8)"
    )


def safety_eval_main(args: argparse.Namespace) -> int:
    """Print one table per file; exit 1 when any file is below the standard, 2 on bad input."""
    from empathy_ray.config import ConfigError, load_config

    try:
        overrides = [a for a in args.files if "=" in a and not Path(a).exists()]
        standard = load_config(args.config, overrides).serve.safety
        if args.guard and not standard.guard_url:
            raise SafetySetError(
                "--guard: serve.safety.guard_url is not set: pass serve.safety.guard_url=http://HOST:PORT/v1 "
                "and serve.safety.guard_model=NAME (or a --config that sets them)"
            )
        if args.guard_concurrency < 1:
            raise SafetySetError(f"--guard-concurrency: expected at least 1, got {args.guard_concurrency}")
        paths = [Path(a) for a in args.files if a not in overrides]
        if not paths and not all(path.is_file() for path in DEFAULT_FILES):
            raise SafetySetError(
                f"no FILE given and the default set ({', '.join(map(str, DEFAULT_FILES))}) is not here "
                "(it lives in a repository checkout, not in the installed package): pass the JSONL files"
            )
        sets = [(path, load_set(path)) for path in paths or DEFAULT_FILES]
    except (ConfigError, SafetySetError) as e:
        log.error("%s", e)
        print(f"error: {e}")
        return 2
    failed = False
    for path, items in sets:
        hits, counts = None, None
        if args.guard:
            hits, counts = asyncio.run(guard_hits(items, standard, args.guard_concurrency))
        rows = score(items, hits)
        print(render(path, rows, args.show_misses))
        if counts is not None:
            print(f"\n{_guard_line(standard, counts, len(items))}")
        problems = verdict(rows, standard.min_recall, standard.max_false_alarm_rate)
        print(f"\n{path.name}: " + ("FAIL: " + "; ".join(problems) if problems else "PASS") + "\n")
        failed = failed or bool(problems)
    return 1 if failed else 0


def _guard_line(cfg: ServeSafetyConfig, counts: Counter[str], total: int) -> str:
    """How the guard answered, and what a failure meant for the figures."""
    told = ", ".join(f"{kind} {counts[kind]}" for kind in ("agree", "raised", "timeout", "error", "invalid"))
    line = f"guard {cfg.guard_model!r} at {cfg.guard_url}: {told} (of {total})"
    failures = counts["timeout"] + counts["error"] + counts["invalid"]
    if failures:
        fallback = "at least low (guard_fail_closed)" if cfg.guard_fail_closed else "the rules' verdict"
        line += f"; {failures} failed and count as {fallback}"
    return line
