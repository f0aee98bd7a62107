"""Results of one suite run as JSON, a markdown report and one small PNG per part with a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from empathy_ray.domain.files import atomic_write_text


def _machine_lines(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return [
        f"- Machine: `{m['host']}`, {m['cpu_model']}, {m['cpus_usable']} usable of {m['logical_cpus']} "
        f"logical CPUs, {m['ram_gib']} GiB RAM, GPU: {m['gpu']}; {m['os']}",
        f"- Software: Python {m['python']}, {versions}; commit {m['git_commit']}",
        f"- Started {r['started']}, {r['wall_s'] / 60:.1f} min; size `{r['size']}`, {r['repeats']} repeats "
        f"per figure (median [min–max])",
        f"- Load average (1/5/15 min) at start {r['loadavg_start']}, at end {r['loadavg_end']} "
        f"(the machine has {m['cpus_usable']} cores; other work running on it inflates every time)",
    ]


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# empathy-ray benchmarks: suite `{r['suite']}`", "", *_machine_lines(r), ""]
    lines += [f"> {note}\n" for note in r.get("notes", [])]  # added by hand after a run
    targets = [t for p in r["parts"].values() for t in p.get("targets", [])]
    lines += ["## Targets", "", "| benchmark | target | measured | met |", "|---|---|---|---|"]
    for t in targets:
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['name']} | {t['target']} | {t['measured']} | {met} |")
    for name, p in r["parts"].items():
        lines += ["", f"## {p.get('title', name)}", ""]
        load = p.get("loadavg_before")
        lines.append(
            f"Wall {p.get('wall_s', 0):.0f} s; load average before {load}, after {p.get('loadavg_after')}."
        )
        if "error" in p:
            lines += ["", "**Failed:**", "", "```", p["error"], "```"]
            continue
        if p.get("settings"):
            lines += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in p["settings"].items())]
        if p.get("columns"):
            lines += ["", "| " + " | ".join(p["columns"]) + " |", "|" + "---|" * len(p["columns"])]
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in p["rows"]]
        for note in p.get("notes", []):
            lines += ["", note]
        if p.get("png"):
            lines += ["", f"![{name}]({p['png']})"]
    return "\n".join(lines) + "\n"


def plot(name: str, p: dict[str, Any], path: Path) -> None:
    """Median with min-max error bars per series; small (about 30 kB) so results stay committable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = p["plot"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=80)
    x = list(range(len(spec["x"])))
    width = 0.8 / len(spec["series"])
    for i, (label, points) in enumerate(spec["series"].items()):
        med = [s["median"] for s in points]
        err = [[m - s["min"] for m, s in zip(med, points, strict=True)],
               [s["max"] - m for m, s in zip(med, points, strict=True)]]  # fmt: skip
        if spec.get("bars"):
            ax.bar([v + (i - (len(spec["series"]) - 1) / 2) * width for v in x], med, width, yerr=err,
                   capsize=3, label=label)  # fmt: skip
        else:
            ax.errorbar(x, med, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xticks(x, [str(v) for v in spec["x"]])
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    if spec.get("log"):
        ax.set_yscale("log")
    ax.set_title(p.get("title", name)[:60], fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(r: dict[str, Any], out_dir: Path, stem: str, plots: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, p in r["parts"].items():
        if plots and p.get("plot") and "error" not in p:
            paths.append(out_dir / f"{stem}-{name}.png")
            plot(name, p, paths[-1])
            p["png"] = paths[-1].name
    md = markdown(r)
    atomic_write_text(out_dir / f"{stem}.json", json.dumps(r, indent=1))
    atomic_write_text(out_dir / f"{stem}.md", md)
    return [out_dir / f"{stem}.json", out_dir / f"{stem}.md", *paths]
