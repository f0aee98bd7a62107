"""The package's layer contract (pyproject.toml, [tool.importlinter]) holds, and it bites.

`lint-imports` (import-linter) builds the real import graph of `empathy_ray`; CI runs only
`make test`, so the contract is checked here as well as in `make lint`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_package_keeps_its_layers():
    out = _lint(REPO, REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A copy of the package where a role imports the serving layer must fail, naming both modules."""
    shutil.copytree(
        REPO / "empathy_ray", tmp_path / "empathy_ray", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    reward = tmp_path / "empathy_ray" / "actors" / "reward.py"
    reward.write_text(reward.read_text(encoding="utf-8") + "\nimport empathy_ray.serve.protocol  # noqa\n")
    out = _lint(tmp_path, tmp_path)
    assert out.returncode != 0
    assert "empathy_ray.actors.reward -> empathy_ray.serve.protocol" in out.stdout
