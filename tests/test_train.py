"""SFT and reward-model training as real Ray Train jobs with DeepSpeed (2 CPU workers, gloo).

Short runs on the 'test' preset: they prove the jobs run end to end (ZeRO-2 default, ZeRO-3 with
LoRA), learn (loss falls), and export HF directories that load and generate offline. The demo's
quality thresholds are measured by `empathy-ray demo`, not here.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from empathy_ray.config import load_config
from empathy_ray.pipeline import run_stages
from empathy_ray.runtime.tracking import read_metrics
from tests.helpers import short_run_overrides

pytestmark = pytest.mark.slow


def _cfg(tmp_path, model_dir, *extra):
    return load_config(None, short_run_overrides(tmp_path, model_dir, *extra))


def test_sft_then_rm_zero2(trained_run):
    _, summary, run_dir = trained_run
    sft, rm = summary["sft"], summary["rm"]
    print("SFT", {k: sft[k] for k in ("loss_first", "loss_last", "eval_loss_first", "eval_loss_last")})
    assert sft["workers"] == 2 and sft["zero_stage"] == 2
    assert sft["loss_last"] < sft["loss_first"]
    assert sft["eval_loss_last"] < sft["eval_loss_first"]
    assert sft["eval_engine"] == "vllm" and sft["eval_prompts"] == 4  # the export loads and generates in vLLM
    assert 0.0 <= sft["coe_validity"] <= 1.0
    assert rm["eval_pairs"] > 0 and 0.0 <= rm["pairwise_accuracy"] <= 1.0
    assert rm["base_model"].endswith("sft/model")  # the RM starts from the SFT policy

    on_disk = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["sft"]["loss_last"] == sft["loss_last"]
    rows = read_metrics(run_dir / "sft" / "metrics.jsonl")
    assert any("train/loss" in r for r in rows) and any("eval/loss" in r for r in rows)
    assert list((run_dir / "sft" / "tb").iterdir()), "TensorBoard events are written"

    # the exports are plain HF directories: load offline and run
    tok = AutoTokenizer.from_pretrained(run_dir / "sft" / "model")
    policy = AutoModelForCausalLM.from_pretrained(run_dir / "sft" / "model")
    ids = torch.tensor([tok.encode("你好")])
    assert policy.generate(input_ids=ids, max_new_tokens=4, do_sample=False).shape[1] > 1
    reward = AutoModelForSequenceClassification.from_pretrained(run_dir / "rm" / "model")
    assert reward(input_ids=ids).logits.shape == (1, 1)


def test_sft_zero3_lora_and_rm_lora(ray_cluster, tiny_model_dir, tmp_path):
    cfg = _cfg(
        tmp_path,
        tiny_model_dir,
        "sft.zero_stage=3",
        "sft.lora.enabled=true",
        "sft.lr=1e-2",
        "rm.zero_stage=3",
        "rm.lora.enabled=true",
        "sft.eval_prompts=2",
    )
    summary = run_stages(cfg, ["sft", "rm"])
    assert summary["sft"]["zero_stage"] == 3 and summary["sft"]["lora"] is True
    assert summary["sft"]["loss_last"] < summary["sft"]["loss_first"]

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "t" / "sft" / "model").state_dict()
    assert set(merged) == set(base), "LoRA is merged on export: plain HF names, no adapter keys"
    changed = [k for k in base if "q_proj.weight" in k and not torch.equal(base[k], merged[k])]
    assert changed, "the merged LoRA update changed the attention weights"
    assert all(torch.equal(base[k], merged[k]) for k in base if "norm" in k), "LoRA leaves norms frozen"
    rm_dir = tmp_path / "t" / "rm" / "model"
    assert not any(p.name.startswith("adapter_") for p in rm_dir.iterdir())
    assert AutoModelForSequenceClassification.from_pretrained(rm_dir).config.num_labels == 1
