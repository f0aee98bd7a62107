"""The benchmark suite runs and writes a well-formed report (structure only: tests never judge speed).

The cheapest part (orchestration scaling: simulated engine, no model) at tiny sizes, through the
same `benchmarks/run.py` a user runs, in a subprocess (it starts its own multi-node Ray cluster).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO


def test_suite_writes_results_json_markdown_and_plot(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--only", "scaling", "--size", "tiny", "--repeats", "2",
         "--out-dir", str(out), "--name", "smoke", "--work", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    r = json.loads((out / "smoke.json").read_text(encoding="utf-8"))
    assert {"cpu_model", "logical_cpus", "ram_gib", "versions"} <= set(r["machine"])
    assert len(r["loadavg_start"]) == 3 and len(r["loadavg_end"]) == 3
    part = r["parts"]["scaling"]
    assert "error" not in part
    raw = part["raw"]
    assert [row["workers"] for row in raw] == [1, 2]
    # weak scaling: 2 prompts x G=2 answers x 4 tokens per worker, every sample accounted for
    assert [row["tokens_per_step"] for row in raw] == [16, 32]
    assert all(row["seconds"]["n"] == 2 and row["seconds"]["min"] <= row["seconds"]["median"] for row in raw)
    assert raw[1]["nodes_used"] == 2  # the two workers sit on the two simulated nodes
    assert part["targets"][0]["met"] is None  # tiny sizes never claim a target
    md = (out / "smoke.md").read_text(encoding="utf-8")
    assert "| workers |" in md and "smoke-scaling.png" in md
    assert (out / "smoke-scaling.png").read_bytes()[:4] == b"\x89PNG"
