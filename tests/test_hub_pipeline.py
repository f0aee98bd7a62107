"""Both hub-layout fixtures (tests/hub_models.py) through `empathy-ray rl model.path=<fixture>`: SFT, RM,
GRPO, eval and serve, one run per fixture shared by the tests that inspect it.

The two runs go side by side: Llama's in a process of its own with its own local Ray, Qwen's in this one
on the session's cluster. A run is mostly process start-ups (Ray Train workers, vLLM engines, Serve), which
leave a 2-core machine a third idle; side by side the two took 275-286 s here, against 350-390 s one
after the other.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

from empathy_ray.modeling.chat import encode_messages
from tests.test_hub_models import POSTS, TOKENIZER_FILES, weight_dtypes, weight_names

# -- the whole pipeline on each fixture (one run per fixture, shared) -------------------------------


def _adapter_bytes(model_dir: Path, r: int = 8) -> int:
    """fp32 bytes of a rank-r LoRA on every attention and MLP projection (rl.learner.lora's defaults)."""
    c = AutoConfig.from_pretrained(model_dir)
    h, d = c.hidden_size, getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    q, kv = c.num_attention_heads * d, c.num_key_value_heads * d
    per_layer = 2 * (h + q) + 2 * (h + kv) + 3 * (h + c.intermediate_size)  # q, o; k, v; gate, up, down
    return 4 * r * per_layer * c.num_hidden_layers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pipeline_overrides(root: Path, model_dir: Path, kind: str) -> list[str]:
    """On one sample file (24 posts, 48 pairs: 3 SFT, 5 RM steps). LoRA SFT and LoRA learner on both; the
    RM: LoRA on Qwen, full fine-tuning on Llama (its head untied, no pad token). Qwen: SFT and RM in ZeRO-3,
    bf16 and gradient checkpointing, vLLM rollouts; Llama: ZeRO-2 and fp32 on one rank, transformers
    rollouts. SFT's CoE check and eval: transformers (vLLM already loads the SFT model to roll out and the
    export to serve). Both are served at the end."""
    part, samples = {"qwen": "a", "llama": "b"}[kind], Path(__file__).parents[1] / "empathy_ray/data/samples"
    rm_lora = "true" if kind == "qwen" else "false"
    common = [
        f"run.output_root={root}",
        "run.name=t",
        f"model.path={model_dir}",
        f"data.posts={samples / f'posts-{part}.jsonl'}",
        f"data.pairs={samples / f'preferences-{part}.jsonl'}",
        "data.max_prompt_tokens=192",  # the cl100k chat frame alone is ~150 tokens
        "data.max_response_tokens=48",
        "sft.epochs=1",
        "sft.eval_prompts=2",
        "sft.eval_max_new_tokens=8",
        "sft.eval_engine=transformers",
        "sft.log_every=1",
        "sft.lora.enabled=true",
        "rm.epochs=1",
        "rm.log_every=1",
        f"rm.lora.enabled={rm_lora}",
        "rl.steps=2",
        "rl.prompts_per_step=2",
        "rl.algo.group_size=2",
        "rl.rollout.max_new_tokens=16",
        "rl.rollout.num_workers=1",
        "rl.learner.num_workers=1",
        "rl.learner.micro_batch_size=4",
        "rl.learner.lora.enabled=true",
        "rl.learner.lr=1e-3",  # a LoRA rate (~10x full): two steps' update survives the bf16 export
        "rl.checkpoint_every=0",
        "rl.eval_prompts=0",
        "pipeline.eval=true",
        # eval generates for the SFT and RL models (the random-weight base is no floor): with vLLM that is
        # two more engine starts a run; vLLM already loads them for the rollouts (SFT) and the server (RL)
        "eval.engine=transformers",
        "eval.baseline=false",
        "eval.max_posts=2",
        "eval.max_new_tokens=8",
        "eval.bootstrap=10",
    ]
    # Qwen trains SFT and RM with the real-model recipe: ZeRO-3 (created partitioned), bf16, gradient
    # checkpointing, LoRA on both (a LoRA rate for SFT so that three steps move the loss); SFT on two ranks,
    # the RM on one (a Ray Train worker is ~20 CPU-seconds of start-up on this box)
    recipe = ["sft.lr=1e-2", "rm.num_workers=1"] + [
        f"{stage}.{key}"
        for stage in ("sft", "rm")
        for key in ("zero_stage=3", "bf16=true", "gradient_checkpointing=true")
    ]
    serve = ["pipeline.serve=true", f"serve.port={_free_port()}", "serve.max_model_len=512"]
    # Llama trains SFT and RM on one Ray Train worker (ZeRO-2, fp32): the other end of the trainer's range
    # and rolls out with transformers `generate` (merged LoRA weights at each sync; Qwen's vLLM engines take
    # the adapter alone)
    one_rank = ["sft.num_workers=1", "rm.num_workers=1", "rl.rollout.engine=transformers"]
    return [*common, *(recipe if kind == "qwen" else one_rank), *serve]


def _run_pipeline(kind: str, model_dir: Path, root: Path) -> Path:
    """`empathy-ray rl model.path=<fixture>` with the overrides above; its run folder."""
    from empathy_ray.config import load_config
    from empathy_ray.pipeline.runner import run_pipeline

    run_pipeline(load_config(None, _pipeline_overrides(root, model_dir, kind)))
    return root / "t"


# Qwen: one user turn; Llama: a multi-turn conversation through its header-style template
SERVED_MESSAGES = {
    "qwen": [{"role": "user", "content": POSTS[0]}],
    "llama": [
        {"role": "user", "content": POSTS[1]},
        {"role": "assistant", "content": "听起来你们之间现在有点僵，你最在意的是哪一部分？"},
        {"role": "user", "content": "我怕她觉得是我小气。"},
    ],
}


def _served_run(kind: str, model_dir: Path, root: Path) -> None:
    """The fixture's pipeline run and one reply of its server through the `openai` client, written to
    root/reply.json; the server stops at once (a vLLM engine held through the other runs would crowd a
    24 GiB machine)."""
    import openai
    from ray import serve

    run_dir = _run_pipeline(kind, model_dir, root)
    try:
        url = json.loads((run_dir / "summary.json").read_text())["serve"]["url"]
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=2, timeout=120)
        reply = client.chat.completions.create(
            model="empathy-ray", messages=SERVED_MESSAGES[kind], max_tokens=12, seed=1
        )
    finally:
        serve.shutdown()
    (root / "reply.json").write_text(reply.model_dump_json())


def served_run_in_own_ray(kind: str, model_dir: str, root: str) -> None:
    """`_served_run` in a fresh process with a local Ray of its own (started by the test below)."""
    import ray

    from empathy_ray.runtime.process import setup_process, worker_env

    setup_process()
    tmp = tempfile.mkdtemp(prefix="er-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray.init(num_cpus=8, _temp_dir=tmp, include_dashboard=False, runtime_env={"env_vars": worker_env()})
    try:
        _served_run(kind, Path(model_dir), Path(root))
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def _loaded(root: Path):
    """(summary, run folder, reply) of a finished served run."""
    from openai.types.chat import ChatCompletion

    run_dir = root / "t"
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary, run_dir, ChatCompletion.model_validate_json((root / "reply.json").read_text())


@pytest.fixture(scope="module")
def hub_runs(ray_cluster, hub_models, tmp_path_factory) -> dict:
    """Both served runs: Llama's in a subprocess while Qwen's runs here."""
    roots = {kind: tmp_path_factory.mktemp(f"hub-run-{kind}") for kind in ("qwen", "llama")}
    code = (
        "from tests.test_hub_pipeline import served_run_in_own_ray as f; "
        f"f('llama', {str(hub_models['llama'])!r}, {str(roots['llama'])!r})"
    )
    with open(roots["llama"] / "console.log", "w") as log:
        other = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
        try:
            _served_run("qwen", hub_models["qwen"], roots["qwen"])
        except BaseException:
            other.terminate()  # a Ray driver exits on SIGTERM and its local cluster goes with it
            other.wait()
            raise
        rc = other.wait(timeout=900)
    assert rc == 0, (roots["llama"] / "console.log").read_text()[-4000:]
    return {kind: _loaded(root) for kind, root in roots.items()}


@pytest.fixture(scope="module")
def qwen_run(hub_runs):
    return hub_runs["qwen"]


@pytest.fixture(scope="module")
def llama_run(hub_runs):
    return hub_runs["llama"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qwen", "llama"])
def test_every_stage_accepts_a_foreign_checkpoint_unchanged(request, hub_models, kind):
    summary, run_dir, _ = request.getfixturevalue(f"{kind}_run")
    src, qwen = hub_models[kind], kind == "qwen"
    assert summary["run"]["ran"] == ["sft", "rm", "rl", "eval", "serve"]
    scores = {name: system["rm_score"] for name, system in summary["eval"]["systems"].items()}
    assert set(scores) == {"sft", "rl"} and all(math.isfinite(v) for v in scores.values()), scores
    # LoRA SFT and GRPO learner on both (the learner's adapter alone at every sync); RM: LoRA on Qwen, full
    # fine-tuning on Llama
    assert summary["sft"]["lora"] is True and summary["rm"]["lora"] is qwen
    assert summary["sft"]["eval_prompts"] == 2 and summary["rm"]["eval_pairs"] > 0
    assert (
        11.0 < summary["sft"]["loss_first"] < 12.0
        and summary["sft"]["loss_last"] < summary["sft"]["loss_first"]
    )
    assert summary["rm"]["eval_pairs"] > 0 and 0.0 <= summary["rm"]["pairwise_accuracy"] <= 1.0
    assert summary["rl"]["steps"] == 2
    rows = [json.loads(x) for x in (run_dir / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["rollout/samples"] == 4 for r in rows)
    # the LoRA learner scores the reference with its adapter off (no reference actor): the starting
    # policy exactly, so no KL before the first update, some after it
    assert summary["rl"]["reference"] == "learner"
    assert rows[0]["train/kl"] == 0.0 and rows[1]["train/kl"] > 0.0, [r["train/kl"] for r in rows]
    assert all(r["rollout/response_len_mean"] > 0 and r["train/grad_norm"] > 0 for r in rows)
    # Qwen's vLLM engine takes the adapter alone; Llama's transformers engine the merged fp32 weights
    synced = (
        _adapter_bytes(src)
        if qwen
        else 4 * sum(t.numel() for t in load_file(src / "model.safetensors").values())
    )
    assert all(r["sync/bytes"] == synced for r in rows), [r["sync/bytes"] for r in rows]
    # every export (SFT, RL policy, RM) is the source checkpoint bar the weights: bf16, same files
    for stage in ("sft", "rl", "rm"):
        out = run_dir / stage / "model"
        assert weight_dtypes(out) == {"BF16"}, stage
        for name in TOKENIZER_FILES:
            assert (out / name).read_bytes() == (src / name).read_bytes(), (stage, name)
    # the LoRA learner moved only the adapted projections: embeddings, head and norms are the SFT's
    sft_w, rl_w = (load_file(run_dir / stage / "model" / "model.safetensors") for stage in ("sft", "rl"))
    assert all(torch.equal(sft_w[k], rl_w[k]) for k in sft_w if not k.endswith("proj.weight"))
    assert any(not torch.equal(sft_w[k], rl_w[k]) for k in sft_w if "q_proj" in k)
    for stage in ("sft", "rl"):  # the policies: same eos list, tied or untied head as the source
        out = run_dir / stage / "model"
        assert (out / "generation_config.json").read_bytes() == (src / "generation_config.json").read_bytes()
        assert weight_names(out) == weight_names(src), stage
    assert summary["sft"]["workers"] == (2 if qwen else 1) and summary["rm"]["workers"] == 1
    if qwen:  # ZeRO-3 + bf16 + LoRA SFT: merged on export into the bf16 base, norms untouched
        assert summary["sft"]["zero_stage"] == summary["rm"]["zero_stage"] == 3
        base = load_file(src / "model.safetensors")
        assert any(not torch.equal(base[k], sft_w[k]) for k in base if "q_proj.weight" in k)
        assert all(torch.equal(base[k], sft_w[k]) for k in base if "norm" in k)
    rm_dir = run_dir / "rm" / "model"
    assert not any(p.name.startswith("adapter_") for p in rm_dir.iterdir())
    assert AutoConfig.from_pretrained(rm_dir).num_labels == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qwen", "llama"])
def test_the_served_foreign_model_answers_through_the_openai_client(request, hub_models, kind):
    """The trained policy, served: the prompt is the checkpoint's own template (one bos on Llama, whose
    template adds it), the reply stops within max_tokens and its CoE part is split out."""
    summary, run_dir, reply = request.getfixturevalue(f"{kind}_run")
    assert summary["serve"]["running"] is True and summary["serve"]["model_dir"] == str(
        run_dir / "rl" / "model"
    )
    choice = reply.choices[0]
    assert isinstance(choice.message.content, str) and "reasoning_content" in choice.message.model_extra
    assert choice.model_extra["coe"]["valid"] is False  # random weights write no CoE
    assert choice.finish_reason in ("stop", "length")
    tokenizer = AutoTokenizer.from_pretrained(hub_models[kind])
    ids = encode_messages(tokenizer, SERVED_MESSAGES[kind])
    assert reply.usage.prompt_tokens == len(ids) > 150
    if tokenizer.bos_token_id is not None:
        assert ids.count(tokenizer.bos_token_id) == 1
    assert 0 < reply.usage.completion_tokens <= 12
