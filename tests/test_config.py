"""The typed config tree: recipes, dotted overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from empathy_ray.config import ConfigError, load_config, parse_override

REPO_CONFIGS = __import__("pathlib").Path(__file__).resolve().parent.parent / "configs"


def test_defaults_are_the_demo_recipe():
    assert load_config(None) == load_config(REPO_CONFIGS / "demo.yaml")


def test_dotted_overrides_are_typed():
    cfg = load_config(
        None,
        ["sft.lr=2e-4", "sft.zero_stage=3", "data.split_fractions=[0.7,0.2,0.1]", "sft.lora.enabled=true"],
    )
    assert cfg.sft.lr == pytest.approx(2e-4)
    assert cfg.sft.zero_stage == 3
    assert cfg.data.split_fractions == (0.7, 0.2, 0.1)
    assert cfg.sft.lora.enabled is True
    assert cfg.rm.lr == pytest.approx(1e-3)  # untouched sections keep their defaults


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("sft:\n  lr: 1e-3\n", encoding="utf-8")
    assert load_config(p).sft.lr == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sft.lrr=1", "unknown config key 'sft.lrr' (did you mean sft.lr?)"),
        ("nosuch.key=1", "unknown config key 'nosuch'"),
        ("sft.zero_stage=1", "sft.zero_stage=1: must be one of [2, 3]"),
        ("sft.lr=fast", "sft.lr='fast': expected a number"),
        ("sft.epochs=1.5", "sft.epochs=1.5: expected int"),
        ("sft.num_workers=0", "sft.num_workers=0: must be at least 1"),
        ("data.split_fractions=[0.5,0.2,0.1]", "data.split_fractions"),
        ("model.path=/no/such/dir", "model.path='/no/such/dir': no such directory"),
        ("sft", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value)


def test_bad_recipe_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sft: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("sft:\n  lora:\n    rank: 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'sft.lora.rank'"):
        load_config(bad)


def test_parse_override_reads_yaml_scalars():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=") == ("a.b", "")
    assert parse_override("run.name=my-run") == ("run.name", "my-run")


def test_old_trainer_resource_keys_load_with_a_warning_naming_the_new_key():
    import warnings

    from empathy_ray.config.aliases import ConfigKeyRenamed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(None, ["sft.use_gpu=true", "rm.cpus_per_worker=3", "rm.use_gpu=false"])
    assert (cfg.sft.num_gpus, cfg.rm.num_cpus, cfg.rm.num_gpus) == (1, 3, 0)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, ConfigKeyRenamed))
    assert len(messages) == 3
    assert messages[0].startswith("config key rm.cpus_per_worker is renamed to rm.num_cpus")
    assert "sft.use_gpu=True was read as sft.num_gpus=1" in messages[2]


def test_an_old_key_next_to_its_new_name_is_refused():
    with pytest.raises(ConfigError, match="sft.cpus_per_worker and sft.num_cpus are both set"):
        load_config(None, ["sft.cpus_per_worker=2", "sft.num_cpus=2"])
