"""runs/<run>/report.html: one self-contained page about a run (opens offline, no scripts, no links).

Curves from each stage's metrics.jsonl (inline PNGs), where the time went (summary.json and the RL
step phases), the eval tables (eval/eval.md) with reviewers' rankings when there are any, and a CoE
viewer: for a few posts, every system's four layers side by side with its reply.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from empathy_ray.domain.coe import LAYER_TITLES, LAYERS
from empathy_ray.domain.files import atomic_write_text
from empathy_ray.runtime.run_dir import RunLayout
from empathy_ray.runtime.tracking import read_metrics

# stage -> (title, [(metrics key, label)]): the curves worth seeing, each in its own panel
CURVES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "sft": ("SFT", [("train/loss", "train loss"), ("eval/loss", "held-out loss")]),
    "rm": (
        "Reward model",
        [
            ("train/loss", "train loss"),
            ("train/accuracy", "train accuracy"),
            ("eval/pairwise_accuracy", "held-out accuracy"),
        ],
    ),
    "rl": (
        "GRPO",
        [
            ("reward/total_mean", "reward (total)"),
            ("reward/rm_mean", "RM reward"),
            ("train/kl", "KL to reference"),
            ("rollout/format_valid", "CoE validity"),
        ],
    ),
}
SAMPLE_POSTS = 3

_CSS = """
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2rem; color: #222; max-width: 1300px; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92em; }
th, td { border: 1px solid #ccd; padding: .25rem .5rem; vertical-align: top; }
td.num { text-align: right; }
.post { background: #f4f6f8; border-radius: 6px; padding: .6rem .9rem; white-space: pre-wrap; }
.coe td { white-space: pre-wrap; max-width: 18rem; }
.note { color: #666; font-size: .88em; }
img { max-width: 100%; }
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _curves(layout: RunLayout, stage: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title, wanted = CURVES[stage]
    path = layout.metrics(stage)
    rows = read_metrics(path) if path.is_file() else []
    panels = [
        (key, label, [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)])
        for key, label in wanted
    ]
    panels = [p for p in panels if p[2]]
    if not panels:
        return f'<p class="note">{title}: no metrics ({path} is missing or has none of {[k for k, _ in wanted]}).</p>'
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.8), squeeze=False)
    for ax, (_, label, points) in zip(axes[0], panels, strict=True):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title, y=1.04)
    out = _png(fig)
    plt.close(fig)
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any, tag: str) -> str:
        num = isinstance(v, int | float)
        text = f"{v:.2f}" if isinstance(v, float) else str(v)
        return f"<{tag}{' class=num' if num else ''}>{html.escape(text)}</{tag}>"

    lines = ["<table>", "<tr>" + "".join(cell(h, "th") for h in header) + "</tr>"]
    lines += ["<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows]
    return "\n".join(lines + ["</table>"])


def _markdown(md: str) -> str:
    """The markdown eval.md is made of (headings, pipe tables, paragraphs) as HTML."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):  # skip the |---|---:| rule
                table.append(cells)
            continue
        if table:
            out.append(_table(table[0], table[1:]))
            table = []
        if line.startswith("# "):
            continue  # the document title: the report's own section heading stands in for it
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)  # nested under the report's own h2
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out)


def _timings(summary: dict[str, Any], eval_result: dict | None) -> str:
    stages = [
        (name, summary[name].get("wall_s"))
        for name in ("sft", "rm", "rl")
        if isinstance(summary.get(name), dict)
    ]
    if eval_result:
        stages.append(("eval", eval_result.get("timings", {}).get("total_s")))
    rows = [[name, round(s, 1)] for name, s in stages if isinstance(s, int | float)]
    parts = (
        [_table(["stage", "wall seconds"], rows + [["whole run", summary.get("wall_s", "-")]])]
        if rows
        else []
    )
    phases = (summary.get("rl") or {}).get("mean_phase_seconds") or {}
    if phases:
        parts.append("<p>GRPO, mean seconds per step by phase (reward and reference run concurrently):</p>")
        parts.append(_table(["phase", "seconds / step"], [[k, round(v, 3)] for k, v in phases.items()]))
    if eval_result and eval_result.get("timings", {}).get("generate_s"):
        gen = eval_result["timings"]["generate_s"]
        parts.append("<p>Eval generation seconds per system:</p>")
        parts.append(_table(["system", "seconds"], [[k, v] for k, v in gen.items()]))
    return "\n".join(parts) or '<p class="note">No timings: summary.json has no stage results.</p>'


def _human(eval_dir: Path, eval_result: dict) -> str:
    from empathy_ray.eval.human import RankingStore, human_summaries
    from empathy_ray.eval.rank_ui import STORE_NAME
    from empathy_ray.eval.ranking import to_markdown

    if not (eval_dir / STORE_NAME).is_file():
        return '<p class="note">No reviewer rankings yet (empathy-ray rank-ui --eval RUN_DIR).</p>'
    k = len(eval_result["metrics"])
    found = human_summaries(RankingStore(eval_dir / STORE_NAME), k, 1000)
    parts = [f"## Reviewers: {key}\n\n{to_markdown(s)}" for key, s in found.items() if s is not None]
    return _markdown("\n".join(parts)) if parts else '<p class="note">No reviewer rankings yet.</p>'


def _coe_viewer(layout: RunLayout) -> str:
    """Sample posts with every system's layers and reply in one row each."""
    path = layout.eval_dir / "answers.jsonl"
    if path.is_file():
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()][
            :SAMPLE_POSTS
        ]
        samples = [(r["post"], r["systems"]) for r in rows]
    else:  # no eval yet: the SFT stage's held-out samples
        from empathy_ray.domain import coe

        path = layout.sft_samples
        if not path.is_file():
            return '<p class="note">No answers to show (no eval/answers.jsonl or sft/eval_samples.json).</p>'
        raw = json.loads(path.read_text(encoding="utf-8"))[:SAMPLE_POSTS]
        samples = []
        for s in raw:
            parsed = coe.parse(s["completion"])
            samples.append(
                (
                    s["post_id"],
                    {"sft": {"layers": parsed.layers, "answer": parsed.answer, "valid": parsed.valid}},
                )
            )
    header = ["system", *(f"{n} {LAYER_TITLES[n][0]}" for n in LAYERS), "reply", "CoE valid"]
    parts = []
    for post, systems in samples:
        rows = [
            [
                name,
                *(v["layers"].get(n, "—") for n in LAYERS),
                v["answer"] or "—",
                "yes" if v["valid"] else "no",
            ]
            for name, v in systems.items()
        ]
        parts.append(
            f'<div class="post">{html.escape(post)}</div>\n<div class="coe">{_table(header, rows)}</div>'
        )
    return "\n".join(parts)


def write_report(run_dir: Path) -> Path:
    """Write run_dir/report.html from what the run folder holds; returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"report: no run folder {run_dir}")
    layout = RunLayout(run_dir)
    summary = json.loads(layout.summary.read_text(encoding="utf-8")) if layout.summary.is_file() else {}
    eval_dir = layout.eval_dir
    eval_result = (
        json.loads(layout.eval_json.read_text(encoding="utf-8")) if layout.eval_json.is_file() else None
    )
    sections = [
        ("Training curves", "\n".join(_curves(layout, stage) for stage in CURVES)),
        ("Where the time went", _timings(summary, eval_result)),
    ]
    if eval_result is not None:
        md = (eval_dir / "eval.md").read_text(encoding="utf-8")
        sections.append(("Evaluation", _markdown(md) + _human(eval_dir, eval_result)))
    else:
        sections.append(("Evaluation", '<p class="note">No eval in this run (empathy-ray eval ...).</p>'))
    sections.append(("CoE viewer", _coe_viewer(layout)))
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{content}" for t, content in sections)
    page = (
        f'<!doctype html>\n<html lang="zh"><head><meta charset="utf-8"><title>empathy-ray run {html.escape(run_dir.name)}</title>'
        f"<style>{_CSS}</style></head><body>\n<h1>Run {html.escape(run_dir.name)}</h1>\n"
        f'<p class="note">{html.escape(str(run_dir.resolve()))}</p>\n{body}\n</body></html>\n'
    )
    out = layout.report
    atomic_write_text(out, page)
    return out
