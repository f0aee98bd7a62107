"""Issue 15's guarantee for the synchronous loop: rl.max_staleness=0 with the off-policy correction off
(rl.algo.tis_cap=0) runs exactly the GRPO steps the synchronous driver ran at commit 41c5856, recorded
by tests/golden_sync.py in tests/data/golden/sync_grpo.json (the same demo-recipe settings here).

Token ids, counts and integer metrics must be equal. Floats may differ by 1e-5 relative or 1e-6
absolute: two recordings on the recording machine agreed bit for bit (the file lists what differed:
nothing), but another CPU may pick other float32 GEMM kernels (vLLM's oneDNN, torch's MKL/OpenBLAS)
that sum in another order, 6e-8 relative per rounding, compounded over three steps of Adam; the
absolute bound is for figures that are rounding noise themselves (the loss of steps 1 and 2 is ~1e-8:
group-normalised advantages sum to zero). A real change to the loop (another seed, sample, advantage or
loss term) moves the metrics by 1e-3 or more and changes the sampled tokens within three steps.
"""

from __future__ import annotations

import json
import math

import pytest

from empathy_ray.config import RLConfig
from tests.golden_sync import GOLDEN, record, seeded_reward_model

pytestmark = pytest.mark.slow

REL_TOL, ABS_TOL = 1e-5, 1e-6


def close(want: float, got: float) -> bool:
    if isinstance(want, int) and isinstance(got, int):
        return want == got
    if math.isnan(want):
        return math.isnan(got)
    return math.isclose(want, got, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def synchronous_overrides() -> list[str]:
    """The synchronous loop with the correction off, in the keys this tree has."""
    extra = ["rl.algo.tis_cap=0"]
    if "max_staleness" in RLConfig.__dataclass_fields__:
        extra.append("rl.max_staleness=0")
    return extra


def test_synchronous_steps_match_the_recorded_driver(ray_cluster, tiny_model_dir, tmp_path_factory):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["differed_between_two_runs"] == [], "only values equal in both recordings are golden"
    root = tmp_path_factory.mktemp("golden")
    rm = seeded_reward_model(tiny_model_dir, root / "rm")
    steps = record(tiny_model_dir, rm, root, *synchronous_overrides())
    assert len(steps) == len(golden["steps"])
    for i, (want, got) in enumerate(zip(golden["steps"], steps, strict=True), start=1):
        assert got["response_ids"] == want["response_ids"], f"step {i}: other tokens were sampled"
        assert got["weight_versions"] == want["weight_versions"], f"step {i}"
        missing = set(want["metrics"]) - set(got["metrics"])
        assert not missing, f"step {i}: metrics no longer logged: {sorted(missing)}"
        off = {
            k: (v, got["metrics"][k]) for k, v in want["metrics"].items() if not close(v, got["metrics"][k])
        }
        assert not off, f"step {i}: metrics (recorded, now) differ: {off}"
        for key, value in want["weights"].items():
            assert math.isclose(got["weights"][key], value, rel_tol=REL_TOL), f"step {i} weights {key}"
