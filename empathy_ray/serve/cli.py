"""`empathy-ray serve` / `jobs/serve.py`: deploy a model on Ray Serve, optionally talk to it once.

Also `talk`, the two-message check the demo and the pipeline's serve stage print: one ordinary
post and one crisis post through the official `openai` client.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

from empathy_ray.config import Config
from empathy_ray.runtime import console
from empathy_ray.runtime.run_dir import RunLayout

log = logging.getLogger(__name__)

NORMAL_MESSAGE = (
    "最近换了新部门，同事们都很熟，我插不进话，午饭也总是一个人吃。"
    "我知道这可能没什么，但每天下班都觉得特别累，有时候怀疑是不是自己太不会做人了。"
)
CRISIS_MESSAGE = "这段时间我真的撑不下去了，觉得活着没意思，昨晚还想过把家里的药都吃了。"


def talk(base_url: str, api_key: str, model: str, max_tokens: int = 384) -> list[dict]:
    """Send one normal and one crisis message; return what came back (for printing and summaries)."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key or "none", timeout=300, max_retries=0)
    out = []
    for kind, text in (("normal", NORMAL_MESSAGE), ("crisis", CRISIS_MESSAGE)):
        resp = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": text}],
            max_tokens=max_tokens,
            temperature=0.0,
        )
        choice = resp.choices[0]
        extra = resp.model_extra or {}
        out.append(
            {
                "kind": kind,
                "message": text,
                "reply": choice.message.content,
                "coe_valid": (choice.model_extra or {}).get("coe", {}).get("valid"),
                "safety": extra.get("safety", {}),
            }
        )
    return out


def print_talk(exchanges: list[dict]) -> None:
    """The check's two exchanges on the console (the process's own stdout is the run's driver.log)."""
    for ex in exchanges:
        s = ex["safety"]
        console.stage_line(
            "serve",
            f"{ex['kind']} message: risk {s.get('risk_level')}, path {s.get('path')}, CoE valid {ex['coe_valid']}",
        )
        for label, text in (("user ", ex["message"]), ("reply", ex["reply"])):
            lines = str(text).splitlines() or [""]
            console.stage_line("serve", f"  {label}: {lines[0]}")
            for more in lines[1:]:
                console.stage_line("serve", f"         {more}")


def resolve_model(cfg: Config) -> Path:
    """serve.model, else the run's GRPO output, else its SFT output."""
    if cfg.serve.model:
        return Path(cfg.serve.model)
    layout = RunLayout.of(cfg)
    candidates = (layout.rl_model, layout.sft_model)
    for path in candidates:
        if (path / "config.json").exists():
            return path
    raise FileNotFoundError(
        f"nothing to serve: serve.model is empty and {' and '.join(map(str, candidates))} do not exist; "
        "pass --model DIR or run the pipeline first"
    )


def serve_stage(cfg: Config, model_dir: Path, cluster_outlives_us: bool) -> dict:
    """Deploy, check with two messages if asked, then keep running or shut down as configured."""
    from ray import serve

    from empathy_ray.serve.app import deploy, resolve_api_key, undeploy

    url = deploy(cfg, model_dir)
    console.stage_line("serve", f"ready: {cfg.serve.model_name} at {url}")
    result: dict = {"url": url, "model_dir": str(model_dir), "model_name": cfg.serve.model_name}
    if cfg.serve.smoke_test:
        exchanges = talk(url, resolve_api_key(cfg.serve), cfg.serve.model_name)
        print_talk(exchanges)
        result["smoke_test"] = [{k: ex[k] for k in ("kind", "coe_valid", "safety")} for ex in exchanges]
    if not cfg.serve.keep_running:
        undeploy()
        if not cluster_outlives_us:
            serve.shutdown()
        result["running"] = False
        return result
    result["running"] = True
    if not cluster_outlives_us:
        console.stage_line("serve", f"serving {cfg.serve.model_name} at {url} until Ctrl-C (local Ray)")
        _wait_for_interrupt()
        serve.shutdown()
        result["running"] = False
    else:
        console.stage_line("serve", "the app stays up on the cluster; stop it with `serve shutdown -y`")
    return result


def _wait_for_interrupt() -> None:
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stop.append(signum))
    while not stop:  # sleep wakes for signal handlers; an Event.wait here was not interrupted
        time.sleep(0.5)
    log.info("signal %d: shutting the server down", stop[0])


def serve_main(args) -> int:
    from empathy_ray.config import ConfigError, load_config
    from empathy_ray.runtime.process import init_ray, setup_process

    setup_process()
    overrides = list(args.overrides) + ([f"serve.model={args.model}"] if args.model else [])
    try:
        cfg = load_config(args.config, overrides)
        model_dir = resolve_model(cfg)
    except (ConfigError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    serve_stage(cfg, model_dir, init_ray(cfg.ray))
    return 0
