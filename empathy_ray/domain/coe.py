"""The Chain-of-Empathy (CoE) completion format: parse, validate, render.

A completion is four reasoning layers inside `<empathy_think>` followed by the reply in `<answer>`.
The parser never raises: training needs a 0/1 format reward for any model output and the serve app
needs the best guess at the reply even when the model broke the format, so `parse` collects every
broken rule as a reason (`"code: explanation"`, the code before the colon is stable) and still
extracts what it can.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

LAYERS = ("L1", "L2", "L3", "L4")
THINK = "empathy_think"
ANSWER = "answer"
# (Chinese, English) title of each layer; the Chinese one is shown to reviewers.
LAYER_TITLES: dict[str, tuple[str, str]] = {
    "L1": ("情绪与处境", "emotions and situation"),
    "L2": ("原因与信念", "causes and beliefs"),
    "L3": ("求助意图", "support sought"),
    "L4": ("回应策略", "response strategy"),
}

_TAG = re.compile(r"<(/?)(empathy_think|answer|L[1-4])>")
_SNIPPET_CHARS = 30


@dataclass(frozen=True)
class CoE:
    """A parsed completion; `reasons` is empty exactly when the text follows the format."""

    layers: dict[str, str]
    answer: str
    reasons: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.reasons


@dataclass(eq=False)
class _Element:
    name: str
    open_at: int
    body_start: int
    parent: _Element | None
    in_think: bool
    direct: list[str] = field(default_factory=list)
    body_end: int | None = None  # start of the closing tag; None while (or if never) closed
    end: int | None = None  # index just after the closing tag

    def content(self, text: str) -> str:
        if self.body_end is None:
            return "".join(self.direct).strip()
        return strip_tags(text[self.body_start : self.body_end]).strip()

    def real_parent(self) -> _Element | None:
        """The enclosing element that was properly closed; an unclosed one does not really contain
        what follows its opening tag, so its children count as its siblings."""
        parent = self.parent
        while parent is not None and parent.end is None:
            parent = parent.parent
        return parent


def has_coe_tags(text: str) -> bool:
    """True if `text` contains any CoE tag (opening or closing)."""
    return _TAG.search(text) is not None


def strip_tags(text: str) -> str:
    return _TAG.sub("", text)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[:_SNIPPET_CHARS] + "…"


def _scan(text: str) -> tuple[list[_Element], list[tuple[int, str]], list[str]]:
    """Build the element list with a stack; returns (elements, top-level text pieces, reasons)."""
    elements: list[_Element] = []
    top: list[tuple[int, str]] = []
    reasons: list[str] = []
    stack: list[_Element] = []

    def add_text(start: int, end: int) -> None:
        if start < end:
            if stack:
                stack[-1].direct.append(text[start:end])
            else:
                top.append((start, text[start:end]))

    pos = 0
    for m in _TAG.finditer(text):
        add_text(pos, m.start())
        pos = m.end()
        closing, name = m.group(1) == "/", m.group(2)
        if not closing:
            in_think = any(e.name == THINK for e in stack)
            el = _Element(name, m.start(), m.end(), stack[-1] if stack else None, in_think)
            elements.append(el)
            stack.append(el)
            continue
        idx = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].name == name), None)
        if idx is None:
            reasons.append(f"stray_close: </{name}> has no matching <{name}>")
            continue
        for el in stack[idx + 1 :]:
            reasons.append(f"unclosed_tag: <{el.name}> is never closed")
        stack[idx].body_end, stack[idx].end = m.start(), m.end()
        del stack[idx:]
    add_text(pos, len(text))
    reasons += [f"unclosed_tag: <{el.name}> is never closed" for el in stack]
    return elements, top, reasons


def _duplicates(kind: str, name: str, found: list[_Element]) -> list[str]:
    return [f"duplicate_{kind}: {name} appears {len(found)} times"] if len(found) > 1 else []


def _structure_reasons(text: str, elements: list[_Element], top: list[tuple[int, str]]) -> list[str]:
    reasons: list[str] = []
    by_name = {name: [e for e in elements if e.name == name] for name in (THINK, ANSWER, *LAYERS)}
    thinks, answers = by_name[THINK], by_name[ANSWER]

    if not thinks:
        reasons.append("missing_think: no <empathy_think> block")
    reasons += _duplicates("think", "<empathy_think>", thinks)
    for think in thinks:
        stray = "".join(think.direct).strip()
        if stray:
            reasons.append(
                f"outside_text: text inside <empathy_think> but outside the layers: '{_snippet(stray)}'"
            )

    for name in LAYERS:
        found = by_name[name]
        if not found:
            reasons.append(f"missing_layer: {name} is missing")
            continue
        reasons += _duplicates("layer", name, found)
        if not found[0].content(text):
            reasons.append(f"empty_layer: {name} is empty")
        if any(not e.in_think for e in found):
            reasons.append(f"layer_outside_think: {name} is outside <empathy_think>")
    present = [name for name in LAYERS if by_name[name]]
    for before, after in zip(present, present[1:], strict=False):
        if by_name[after][0].open_at < by_name[before][0].open_at:
            reasons.append(f"out_of_order: {after} comes before {before}")

    if not answers:
        reasons.append("missing_answer: no <answer> after </empathy_think>")
    else:
        reasons += _duplicates("answer", "<answer>", answers)
        if not answers[0].content(text):
            reasons.append("empty_answer: <answer> is empty")
        if thinks and answers[0].open_at < thinks[0].open_at:
            reasons.append("answer_before_think: <answer> comes before <empathy_think>")

    for el in elements:
        parent = el.real_parent()
        if parent is not None and not (parent.name == THINK and el.name in LAYERS):
            reasons.append(f"nested_tag: <{el.name}> is inside <{parent.name}>")

    answer_end = answers[0].end if answers and answers[0].end is not None else None
    for start, piece in top:
        if not piece.strip():
            continue
        if answer_end is not None and start >= answer_end:
            reasons.append(f"text_after_answer: text after </answer>: '{_snippet(piece)}'")
        else:
            reasons.append(f"outside_text: text outside the tags: '{_snippet(piece)}'")
    return reasons


def _best_answer(text: str, answers: list[_Element]) -> str:
    """The reply as well as it can be told: <answer>, else what follows </empathy_think>, else all."""
    if answers:
        return answers[0].content(text)
    think_closes = [m for m in _TAG.finditer(text) if m.group(1) and m.group(2) == THINK]
    if think_closes:
        return strip_tags(text[think_closes[-1].end() :]).strip()
    return strip_tags(text).strip()


def parse(text: str) -> CoE:
    """Best-effort parse of a completion; never raises."""
    elements, top, scan_reasons = _scan(text)
    reasons = scan_reasons + _structure_reasons(text, elements, top)
    layers: dict[str, str] = {}
    for el in elements:
        if el.name in LAYERS and el.name not in layers:
            layers[el.name] = el.content(text)
    layers = {name: layers[name] for name in LAYERS if name in layers}
    answer = _best_answer(text, [e for e in elements if e.name == ANSWER])
    return CoE(layers, answer, tuple(dict.fromkeys(reasons)))


def validate(text: str) -> list[str]:
    """Every broken format rule of `text`, empty when the completion is well-formed."""
    return list(parse(text).reasons)


def format_reward(text: str) -> float:
    return 1.0 if parse(text).valid else 0.0


def _clean(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if has_coe_tags(value):
        raise ValueError(f"{name} must not contain CoE tags, got {_snippet(value)!r}")
    return value.strip()


def render(layers: dict[str, str], answer: str) -> str:
    """The canonical completion (the SFT target); raises ValueError on anything `parse` would reject."""
    if set(layers) != set(LAYERS):
        raise ValueError(f"render needs exactly the layers {', '.join(LAYERS)}; got {sorted(layers)}")
    lines = [f"<{THINK}>"]
    lines += [f"<{name}>{_clean(name, layers[name])}</{name}>" for name in LAYERS]
    lines += [f"</{THINK}>", f"<{ANSWER}>{_clean('answer', answer)}</{ANSWER}>"]
    return "\n".join(lines)


def render_display(coe: CoE) -> str:
    """A plain-text view for human reviewers, one block per layer, format problems listed last."""
    blocks = [f"【{name} {LAYER_TITLES[name][0]}】{coe.layers.get(name) or '（缺失）'}" for name in LAYERS]
    blocks.append(f"【回答】{coe.answer or '（缺失）'}")
    if coe.reasons:
        blocks.append("【格式问题】\n" + "\n".join(f"- {r}" for r in coe.reasons))
    return "\n".join(blocks)


def check_main(args: argparse.Namespace) -> int:
    """`empathy-ray coe check FILE`: print the parse as JSON; exit 0 valid, 1 invalid, 2 unreadable."""
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"coe check: file not found: {args.file}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print(f"coe check: cannot read {args.file}: {e}", file=sys.stderr)
        return 2
    coe = parse(text)
    report = {"valid": coe.valid, "reasons": list(coe.reasons), "layers": coe.layers, "answer": coe.answer}
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if coe.valid else 1
