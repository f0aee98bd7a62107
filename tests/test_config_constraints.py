"""Every rule a config key declares, generated from the declarations: a violating value fails when
the config loads, naming the key; the boundary value loads. Plus the checks that relate keys."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import types
import typing
from typing import Any, Literal

import pytest

from empathy_ray.config import Config, ConfigError, load_config
from empathy_ray.config.constraints import OneOf, Range, declared

RULES = dict(declared(Config))

# Boundary values that other keys' rules (Config.validate) would otherwise refuse, and what makes them fit.
CONTEXT: dict[str, list[str]] = {
    "rl.algo.group_size=1": ["rl.algo.estimator=reinforce_pp", "rl.learner.micro_batch_size=2"],
    "rl.prompts_per_step=1": ["rl.learner.micro_batch_size=2"],
    "serve.max_tokens_limit=1": ["serve.default_max_tokens=1"],
    "rl.sync=nccl": ["rl.learner.num_gpus=1"],
    "rl.sync_lora=adapter": ["rl.learner.lora.enabled=true"],
    "rl.reference.source=learner": ["rl.learner.lora.enabled=true"],
    "eval.judge=endpoint": ["eval.judge_url=http://127.0.0.1:9/v1"],
}

# Numeric keys that take any value: a new numeric key must declare a rule or be listed here.
UNBOUNDED = {
    "run.seed",
    "data.split_seed",
    "rm.margin",
    "eval.seed",
    "rl.reward.rm_weight",
    "rl.reward.format_weight",
    "rl.reward.length_weight",
    "rl.reward.safety_weight",
    "rl.reward.length_target",  # positive when rl.reward.length_weight is set (Config.validate)
}


def _field_type(key: str) -> Any:
    cls: Any = Config
    *sections, name = key.split(".")
    for part in sections:
        cls = typing.get_type_hints(cls)[part]
    tp = typing.get_type_hints(cls)[name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # `int | None`: the rule is on the int
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp


def _keys(cls: Any = Config, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _keys(hints[f.name], key)
        else:
            yield key, hints[f.name]


def _outside(rule: Range) -> list[float]:
    """The integers just outside each bound (integers load into float keys too)."""
    low = [rule.ge - 1 if rule.ge is not None else None, rule.gt]
    high = [rule.lt, rule.le + 1 if rule.le is not None else None]
    return [v for v in low + high if v is not None]


def _inside(rule: Range, tp: type) -> list[float]:
    """The values at each bound that still pass: the bound itself, or the nearest value inside it."""
    step_up = (lambda v: v + 1) if tp is int else (lambda v: math.nextafter(v, math.inf))
    step_down = (lambda v: v - 1) if tp is int else (lambda v: math.nextafter(v, -math.inf))
    out = [rule.ge, rule.le]
    out += [
        step_up(rule.gt) if rule.gt is not None else None,
        step_down(rule.lt) if rule.lt is not None else None,
    ]
    return [v for v in out if v is not None]


def _cases(inside: bool) -> list[tuple[str, Any]]:
    cases = []
    for key, rule in RULES.items():
        if isinstance(rule, OneOf):
            cases += [(key, name) for name in rule.names.names()] if inside else [(key, "no_such_name")]
        else:
            cases += [(key, v) for v in (_inside(rule, _field_type(key)) if inside else _outside(rule))]
    for key, tp in _keys():
        if typing.get_origin(tp) is Literal:
            cases += [(key, v) for v in typing.get_args(tp)] if inside else [(key, "no_such_choice")]
    return cases


def _load(key: str, value: Any) -> Config:
    override = f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"
    return load_config(None, [override, *CONTEXT.get(f"{key}={value}", [])])


@pytest.mark.parametrize(("key", "value"), _cases(inside=False))
def test_a_value_outside_the_rule_fails_naming_the_key(key, value):
    with pytest.raises(ConfigError) as e:
        _load(key, value)
    rule = RULES.get(key)
    why = f"must be {rule.describe()}" if isinstance(rule, Range) else "unknown" if rule else "must be one of"
    assert str(e.value).startswith(f"{key}=") and why in str(e.value), str(e.value)


@pytest.mark.parametrize(("key", "value"), _cases(inside=True))
def test_the_boundary_value_loads(key, value):
    cfg = _load(key, value)
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    assert node == value


def test_every_numeric_key_declares_a_rule_or_is_listed_as_unbounded():
    numeric = {k for k, tp in _keys() if _field_type(k) in (int, float)}
    assert numeric - set(RULES) == UNBOUNDED
    assert {"rl.reward.batch_size", "rl.reference.batch_size", "serve.port", "rl.learner.lr"} <= set(RULES)


def test_rule_messages_say_the_range():
    assert Range(ge=1).describe() == "at least 1"
    assert Range(gt=0).describe() == "positive"
    assert Range(ge=0, lt=1).describe() == "in [0, 1)"
    assert Range(gt=0, le=1).describe() == "in (0, 1]"
    assert Range(ge=1, le=65535).describe() == "in [1, 65535]"
    assert Range(ge=0).problem(None) is None  # an optional key left unset


def test_reward_batch_size_zero_fails_at_load_before_ray():
    """In a fresh interpreter: the error names the key, and nothing imported Ray on the way."""
    code = (
        "import sys\n"
        "from empathy_ray.config import ConfigError, load_config\n"
        "try:\n"
        "    load_config(None, ['rl.reward.batch_size=0'])\n"
        "except ConfigError as e:\n"
        "    print(e, 'ray' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "rl.reward.batch_size=0: must be at least 1 False"


def test_a_subclass_default_keeps_the_base_rule():
    assert load_config(None).sft.epochs == 100  # SFTConfig only changes TrainerConfig.epochs' default
    with pytest.raises(ConfigError, match="sft.epochs=0: must be at least 1"):
        load_config(None, ["sft.epochs=0"])


def test_every_violation_is_listed():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["rl.reward.batch_size=0", "serve.port=0"])
    assert "rl.reward.batch_size=0: must be at least 1" in str(e.value)
    assert "serve.port=0: must be in [1, 65535]" in str(e.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["rl.algo.group_size=1"],
            "rl.algo.group_size=1: the grpo estimator compares answers within a group",
        ),
        (
            ["rl.learner.micro_batch_size=3"],
            "16 samples per step over rl.learner.num_workers=2 ranks in micro-batches of "
            "rl.learner.micro_batch_size=3; 16 must be a multiple of 2 * 3",
        ),
        (
            ["rl.reward.length_weight=1", "rl.reward.length_target=0"],
            "rl.reward.length_target=0: must be a positive number of characters",
        ),
        (
            ["serve.default_max_tokens=2000"],
            "serve.default_max_tokens=2000: at most serve.max_tokens_limit=1024",
        ),
        (["serve.autoscaling=true", "serve.min_replicas=3"], "serve.min_replicas=3 > serve.max_replicas=2"),
    ],
)
def test_checks_that_relate_keys(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides)
    assert message in str(e.value)


def test_length_target_is_free_while_the_length_term_is_off():
    assert load_config(None, ["rl.reward.length_target=0"]).rl.reward.length_target == 0
