"""SFT and reward-model training as real Ray Train jobs with DeepSpeed (2 CPU workers, gloo).

Short runs on the 'test' preset: they prove the jobs run end to end (ZeRO-2 default, ZeRO-3 with
LoRA), learn (loss falls), and export HF directories that load and generate offline. The demo's
quality thresholds are measured by `empathy-ray demo`, not here. One fast test builds the ZeRO-3
reward model in this process, where its shards can be looked at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from empathy_ray.config import load_config
from empathy_ray.modeling.reward_model import rm_input_ids, score
from empathy_ray.modeling.tokenizer import pad_id
from empathy_ray.runtime.tracking import read_metrics
from empathy_ray.train.engine import export_hf, full_state_dict, init_engine
from empathy_ray.train.resume import (
    POINTER,
    STATE_FILE,
    Position,
    find,
    load_engine_state,
    remaining,
    save_engine_state,
)
from empathy_ray.train.rm import build_reward_model, export_skeleton, rm_loss
from tests.helpers import REPO, short_run_overrides

PAIRS = [  # (post, chosen, rejected)
    (
        "考研第二次又没过\n家里人嘴上不说，我自己觉得特别对不起他们。",
        "两次都全力准备却没等到结果，这种落空真的很磨人。你愿意说说现在最压着你的是哪一部分吗？",
        "考不上就别考了，找个工作算了。",
    ),
    (
        "搬到新城市三个月了\n下班回到出租屋，一整晚都没人说话。",
        "一个人在陌生的地方撑了三个月，晚上的安静会把孤单放得很大。下班后有没有哪怕一件让你放松的小事？",
        "大家都这样，习惯就好。",
    ),
]


@pytest.mark.slow
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


def test_zero3_reward_model_is_created_partitioned(tiny_model_dir, tmp_path):
    """What `rm.zero_stage=3` with LoRA in bf16 builds on each rank: the base is born in shards (no rank
    holds it whole), the adapters and the fresh head's trainable copy share one dtype (DeepSpeed's
    partition buffer takes one), training widens the margin, the gathered export scores as the
    engine does, and a mid-stage checkpoint (train/resume.py) restores the engine exactly. In a process of its own: DeepSpeed keeps the first process group it saw, and the
    suite's in-process learners make and drop theirs."""
    import os
    import subprocess
    import sys

    from empathy_ray.runtime.placement import free_port

    port = free_port()
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    env["MASTER_PORT"] = str(port)
    code = f"from tests.test_train import zero3_rm_check; zero3_rm_check({str(tiny_model_dir)!r}, {str(tmp_path)!r}, {port})"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def zero3_rm_check(model_dir: str, out_dir: str, port: int) -> None:
    """The body of the test above, run in a fresh process."""
    from pathlib import Path

    tiny_model_dir, tmp_path = Path(model_dir), Path(out_dir)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    tc = load_config(None, ["rm.zero_stage=3", "rm.lora.enabled=true", "rm.bf16=true", "rm.lr=1e-2"]).rm
    torch.manual_seed(0)
    tok, model = build_reward_model(str(tiny_model_dir), tc, world=1)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert frozen and all(p.numel() == 0 and p.ds_tensor.numel() > 0 for p in frozen)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.bfloat16}

    engine = init_engine(model, tc, total_steps=6)
    seqs = [rm_input_ids(tok, post, reply, 128, 64) for post, *replies in PAIRS for reply in replies]
    seqs = seqs[0::2] + seqs[1::2]  # chosen rows, then rejected rows
    margins = []
    for _ in range(6):
        r = score(engine, seqs, pad_id(tok))
        margins.append(float((r[:2] - r[2:]).mean()))
        engine.backward(rm_loss(r[:2], r[2:]))
        engine.step()

    state = full_state_dict(engine)
    assert state["base_model.model.score.modules_to_save.default.weight"].shape == (1, 64)
    export_hf(state, export_skeleton(str(tiny_model_dir), tc), tok, tmp_path / "rm")
    reward = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm", dtype="auto")
    assert {p.dtype for p in reward.parameters()} == {torch.float32}  # the source's dtype, as exports keep
    engine.eval()
    with torch.no_grad():
        live, exported = score(engine, seqs, pad_id(tok)), score(reward, seqs, pad_id(tok))
    print("margins", margins, "live", live.tolist(), "exported", exported.tolist())
    assert float((live[:2] - live[2:]).mean()) > margins[0] + 0.5  # it learned: chosen over rejected
    torch.testing.assert_close(exported, live, atol=0.03, rtol=0.01)  # LoRA merged in bf16: rounding

    # a mid-stage checkpoint of this engine (adapters, head, optimizer shard, LR step) loads into a
    # fresh one whose head is drawn anew: it scores as the saved engine did
    save_engine_state(engine, tmp_path / "state", 0, ())
    torch.manual_seed(1)
    fresh = init_engine(build_reward_model(str(tiny_model_dir), tc, world=1)[1], tc, total_steps=6)
    load_engine_state(fresh, tmp_path / "state", 0, ())
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(score(fresh, seqs, pad_id(tok)), live)
    assert fresh.get_lr() == engine.get_lr() and fresh.global_steps == engine.global_steps == 6


def test_a_resumed_epoch_skips_the_micro_batches_its_checkpoint_had_trained():
    batches = [[i] for i in range(6)]
    start = Position(step=9, epoch=1, batch=4)  # 6 micro-batches an epoch: 4 of epoch 1 were done
    assert [i for i, _ in remaining(batches, 1, start)] == [4, 5]
    assert [b for _, b in remaining(batches, 2, start)] == batches, "later epochs run whole"
    assert list(remaining(batches, 0, Position())) == list(enumerate(batches))


def test_the_resume_point_is_the_furthest_training_state_checkpoint(tmp_path):
    def state(name: str, step: int) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / STATE_FILE).write_text(json.dumps({"step": step}))
        return tmp_path / name

    assert find(None, tmp_path) is None, "nothing saved yet: a fresh start"
    export = tmp_path / "checkpoint_final"  # Ray Train's latest can be the export of a finished job
    export.mkdir()
    assert find(export, tmp_path) is None
    older, newer = state("state_000005", 5), state("state_000010", 10)
    (tmp_path / POINTER).write_text(json.dumps({"step": 10, "dir": newer.name}))
    assert find(older, tmp_path) == newer, "the pointer was written after Ray Train's snapshot"
    assert find(export, tmp_path) == newer
    (tmp_path / POINTER).write_text(json.dumps({"step": 15, "dir": "state_000015"}))  # deleted since
    assert find(older, tmp_path) == older


def _wait_released(ray) -> None:
    """Until the killed job's Ray Train controller and workers are gone: every CPU is free again."""
    import time

    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, (
            "the killed job's Ray Train actors still hold CPUs after 2 minutes"
        )
        time.sleep(0.2)


@pytest.mark.slow
def test_sft_killed_mid_epoch_continues_from_its_last_checkpoint(ray_cluster, tiny_model_dir, tmp_path):
    """`jobs/rl.py` (SFT only) is SIGKILLed after its first mid-epoch checkpoint; resubmitted, the
    pipeline resumes SFT from the newest checkpoint: the steps after it are trained, those before are
    not trained again, and the run ends at the configured step count."""
    import subprocess
    import sys
    import time

    from empathy_ray.pipeline import run_pipeline

    overrides = short_run_overrides(
        tmp_path,
        tiny_model_dir,
        "sft.epochs=2",  # 55 examples, 2 ranks x 4: 6 optimizer steps an epoch, 12 in all
        "sft.log_every=1",
        "sft.checkpoint_every=5",  # steps 5 and 10: never at an epoch's end
        "sft.eval_prompts=1",
        "sft.eval_engine=transformers",
        "sft.eval_max_new_tokens=4",
        *(f"pipeline.{k}=false" for k in ("reward_model", "rl", "eval", "serve")),
    )
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [sys.executable, "jobs/rl.py", *overrides, f"ray.address={address}"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    pointer = tmp_path / "t" / "ray_train" / "t-sft" / POINTER
    try:
        deadline = time.monotonic() + 300
        while not pointer.exists():
            assert proc.poll() is None, f"the SFT job ended by itself (exit code {proc.returncode})"
            assert time.monotonic() < deadline, "no SFT checkpoint within 5 minutes"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: the driver; Ray then ends its Ray Train controller and workers
        proc.wait()
    _wait_released(ray_cluster)  # no worker of the killed job writes a checkpoint any more
    saved = json.loads(pointer.read_text())["step"]
    print(f"killed after {time.monotonic() - t0:.1f} s; its last checkpoint: step {saved}")
    assert saved in (5, 10)
    state = json.loads((pointer.parent / f"state_{saved:06d}" / STATE_FILE).read_text())
    assert (state["epoch"], state["batch"]) == divmod(saved, 6), "mid-epoch: the batch position is saved"
    before = [r for r in state["history"] if "train/loss" in r]

    summary = run_pipeline(load_config(None, overrides))
    sft = summary["sft"]
    assert sft["status"] == "done" and sft["resumed_from_step"] == saved
    metrics = read_metrics(tmp_path / "t" / "sft" / "metrics.jsonl")
    rows = [r for r in metrics if "train/loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 13)), "every step once: none trained twice"
    # the steps up to the checkpoint are the killed job's rows, not trained again
    assert [r["train/loss"] for r in rows[:saved]] == [r["train/loss"] for r in before]
    assert len([r for r in metrics if "eval/loss" in r]) == 2
    assert sft["loss_last"] < sft["loss_first"]
