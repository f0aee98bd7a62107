"""Building the typed tree from YAML and dotted overrides, rejecting unknown keys and bad types."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from empathy_ray.config.aliases import apply_renames
from empathy_ray.config.constraints import violations
from empathy_ray.config.sections import ConfigError
from empathy_ray.config.tree import Config


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting where it is lossless (int -> float)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}={value!r}: expected {' or '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}={value!r}: must be one of {list(typing.get_args(tp))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}={value!r}: expected a list")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}={value!r}: expected {len(args)} items")
            return tuple(
                _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r}: expected a mapping")
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r}: expected a number") from None
    if tp is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key}={value!r}: expected {_type_name(tp)}, got {type(value).__name__}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}; known keys here: {', '.join(names)}")
        kwargs[k] = _coerce(v, hints[k], key)
    return cls(**kwargs)


def _merge(base: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = base
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {p!r} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`sft.lr=2e-4` -> ("sft.lr", 0.0002). Values are read as YAML scalars or lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. sft.lr=2e-4")
    key, raw = text.split("=", 1)
    return key.strip(), (yaml.safe_load(raw) if raw.strip() else "")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe, apply dotted overrides, check everything: types, the rule each key declares
    (config/constraints.py), then the checks that relate keys (`Config.validate`).

    Without a recipe the dataclass defaults apply: they are the embedded demo recipe.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    for ov in overrides:
        _merge(data, *parse_override(ov))
    apply_renames(data)
    cfg = _build(Config, data)
    problems = list(violations(cfg))
    if problems:
        raise ConfigError("; ".join(problems))
    cfg.validate()
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (for summary.json and logging)."""
    return dataclasses.asdict(cfg)
