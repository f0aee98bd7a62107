"""Config keys that were renamed: the old name still works, with a warning that names the new one.

A recipe written for an older release keeps loading; the warning says what to write instead. Each
entry maps the old dotted key to the new one and to how an old value becomes a new one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from empathy_ray.config.sections import ConfigError


class ConfigKeyRenamed(FutureWarning):
    """An old config key was used (FutureWarning: shown to users by default, unlike DeprecationWarning)."""


def _same(value: Any) -> Any:
    return value


def _gpus_from_flag(value: Any) -> Any:
    """`use_gpu: true` meant one whole GPU per Ray Train worker."""
    return (1 if value else 0) if isinstance(value, bool) else value


# old dotted key -> (new dotted key, old value -> new value). The trainers used their own resource
# words until every role, trainer and serve spoke one vocabulary: num_cpus, num_gpus, resources.
RENAMED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    f"{section}.{old}": (f"{section}.{new}", convert)
    for section in ("sft", "rm")
    for old, new, convert in (
        ("cpus_per_worker", "num_cpus", _same),
        ("use_gpu", "num_gpus", _gpus_from_flag),
    )
}


def apply_renames(data: dict[str, Any]) -> None:
    """Move every old key of the raw (YAML + overrides) tree to its new name, warning once per key."""
    for old, (new, convert) in RENAMED.items():
        old_section, old_name = old.rsplit(".", 1)
        section = data.get(old_section)
        if not isinstance(section, dict) or old_name not in section:
            continue
        new_name = new.rsplit(".", 1)[1]
        if new_name in section:
            raise ConfigError(
                f"{old} and {new} are both set; {old} is the old name of {new}: keep only {new}"
            )
        value = section.pop(old_name)
        section[new_name] = convert(value)
        warnings.warn(
            f"config key {old} is renamed to {new}; {old}={value!r} was read as {new}={section[new_name]!r}",
            ConfigKeyRenamed,
            stacklevel=3,
        )
