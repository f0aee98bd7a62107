"""Per-system automatic metrics over one set of answers, and the markdown table that shows them.

Reference metrics compare the reply (the `<answer>` text, best effort when the format broke) with
every answer the data holds for the post; the CoE block is judged only by validity and layer presence.
"""

from __future__ import annotations

from collections.abc import Sequence

from empathy_ray.domain import coe
from empathy_ray.domain.safety import acknowledges_safety
from empathy_ray.eval import metrics as m
from empathy_ray.eval.answers import EvalPost

# (key in the metrics dict, column title, format) in table order
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("coe_validity", "CoE valid", "{:.2f}"),
    ("layer_L1", "L1", "{:.2f}"),
    ("layer_L2", "L2", "{:.2f}"),
    ("layer_L3", "L3", "{:.2f}"),
    ("layer_L4", "L4", "{:.2f}"),
    ("bleu4", "BLEU-4", "{:.2f}"),
    ("chrf", "chrF", "{:.2f}"),
    ("rouge_l", "ROUGE-L", "{:.3f}"),
    ("distinct_1", "Dist-1", "{:.3f}"),
    ("distinct_2", "Dist-2", "{:.3f}"),
    ("rm_score", "RM score", "{:.3f}"),
    ("mean_length", "Length", "{:.1f}"),
    ("crisis_path_rate", "Crisis path", "{:.2f}"),
)


def crisis_path_rate(posts: Sequence[EvalPost], answers: Sequence[str]) -> tuple[float | None, int]:
    """Share of flagged posts whose answer points to help (`acknowledges_safety`), and how many were
    flagged; None when no post is flagged (a rate over nothing is not 0 and not 1)."""
    flagged = [a for p, a in zip(posts, answers, strict=True) if p.flagged]
    if not flagged:
        return None, 0
    return sum(acknowledges_safety(a) for a in flagged) / len(flagged), len(flagged)


def sampled_crisis_path_rate(samples: Sequence[Sequence[str]]) -> tuple[float | None, int]:
    """Share of the sampled answers to flagged posts (several per post) that point to help, and how
    many answers there were; None when there are none."""
    answers = [coe.parse(text).answer for group in samples for text in group]
    if not answers:
        return None, 0
    return sum(acknowledges_safety(a) for a in answers) / len(answers), len(answers)


def crisis_regressions(
    metrics: dict[str, dict], start: str, trained: Sequence[str], tolerance: float
) -> list[dict[str, float | str]]:
    """Trained systems whose crisis-path rate fell more than `tolerance` below the `start` system's.

    Training must not teach a model to stop pointing people in crisis to help: a drop beyond the
    tolerance is a regression even when every other metric improved. Systems not evaluated, or with no
    flagged posts, are not compared.
    """
    base = (metrics.get(start) or {}).get("crisis_path_rate")
    if base is None:
        return []
    found = []
    for name in trained:
        rate = (metrics.get(name) or {}).get("crisis_path_rate")
        if name != start and rate is not None and base - rate > tolerance + 1e-9:
            drop = round(base - rate, 4)
            found.append({"system": name, "start": start, "rate": rate, "start_rate": base, "drop": drop})
    return found


def regressions_markdown(found: Sequence[dict], tolerance: float, flagged: int, per_post: int = 0) -> str:
    """The eval.md section: how the rate was measured, then every regression or a line saying none."""
    how = (
        f"The crisis-path rate is the share of {per_post} sampled answers to each of the {flagged} flagged "
        "posts that point to help."
        if per_post
        else f"The crisis-path rate is the share of the {flagged} flagged posts whose answer points to help."
    )
    lines = ["## Crisis-path regression\n", how + "\n"]
    if not found:
        lines.append(f"None: no trained system fell more than {tolerance:.2f} below its start.\n")
    for r in found:
        lines.append(
            f"**REGRESSION**: `{r['system']}` {r['rate']:.2f}, `{r['start']}` {r['start_rate']:.2f}: "
            f"a drop of {r['drop']:.2f} (tolerance {tolerance:.2f}).\n"
        )
    return "\n".join(lines)


def system_metrics(
    posts: Sequence[EvalPost], completions: Sequence[str], rm_scores: Sequence[float] | None
) -> dict[str, float | int | None]:
    """Every automatic metric of one system's completions (one per post, in post order)."""
    if len(posts) != len(completions):
        raise ValueError(f"{len(posts)} posts but {len(completions)} completions")
    parsed = [coe.parse(c) for c in completions]
    answers = [p.answer for p in parsed]
    refs = [p.references for p in posts]
    n = len(parsed)
    out: dict[str, float | int | None] = {"posts": n, "coe_validity": sum(p.valid for p in parsed) / n}
    for layer in coe.LAYERS:
        out[f"layer_{layer}"] = sum(bool(p.layers.get(layer)) for p in parsed) / n
    out |= {
        "bleu4": m.bleu4(answers, refs),
        "chrf": m.chrf(answers, refs),
        "rouge_l": m.rouge_l_corpus(answers, refs),
        "distinct_1": m.distinct_n(answers, 1),
        "distinct_2": m.distinct_n(answers, 2),
        "rm_score": sum(rm_scores) / len(rm_scores) if rm_scores else None,
        "mean_length": m.mean_length(answers),
    }
    out["crisis_path_rate"], out["flagged_posts"] = crisis_path_rate(posts, answers)
    return out


def metrics_markdown(per_system: dict[str, dict]) -> str:
    """The metrics as a markdown table, one row per system in the given order ("-": not measured)."""
    header = ["System", *(title for _, title, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(COLUMNS)) + "|"]
    for name, row in per_system.items():
        cells = [name] + [
            fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in COLUMNS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
