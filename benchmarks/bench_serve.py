"""Serving: 1, 8 and 32 concurrent clients against the real Ray Serve app (`serve.app.deploy`).

One replica with its async vLLM engine (continuous batching) serves the demo model on a local Ray;
clients send OpenAI chat-completion requests over HTTP. Only posts the safety guard rates "none"
are sent, so every request reaches the model (a risky post is answered without it). Every level
sends the same requests, greedy with a fixed max_tokens; 1 client is the sequential baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import fmt, model_dir, stat, target

SIZES = {
    "full": {"preset": "demo", "clients": (1, 8, 32), "requests": 64, "max_tokens": 64},
    "tiny": {"preset": "test", "clients": (1, 2), "requests": 4, "max_tokens": 4},
}


async def _level(url: str, bodies: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    """`clients` concurrent loops share one queue of request bodies; wall time covers all of them."""
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    tokens = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal tokens
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            r = await http.post(f"{url}/chat/completions", json=body)
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
            tokens += r.json()["usage"]["completion_tokens"]

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"req_per_s": len(bodies) / wall, "tokens_per_s": tokens / wall, "p50_s": q[49], "p99_s": q[98]}


def run(size: str, repeats: int, work: Path) -> dict[str, Any]:
    import ray

    from empathy_ray.config import load_config
    from empathy_ray.data.samples import load_sample_posts
    from empathy_ray.domain.safety import assess
    from empathy_ray.runtime.placement import free_port
    from empathy_ray.runtime.process import worker_env
    from empathy_ray.serve.app import deploy

    s = SIZES[size]
    model = model_dir(work, s["preset"])
    cfg = load_config(None, [f"serve.port={free_port()}", f"serve.max_num_seqs={max(s['clients'])}"])
    posts = [p.text for p in load_sample_posts() if assess(p.text).risk_level == "none"]
    bodies = [
        {"model": cfg.serve.model_name, "messages": [{"role": "user", "content": posts[i % len(posts)]}],
         "max_tokens": s["max_tokens"], "temperature": 0}
        for i in range(s["requests"])
    ]  # fmt: skip
    tmp = tempfile.mkdtemp(prefix="er-bench-ray-", dir="/tmp")
    ray.init(num_cpus=4, _temp_dir=tmp, include_dashboard=False, runtime_env={"env_vars": worker_env()})
    try:
        t0 = time.perf_counter()
        url = deploy(cfg, model)
        start_s = time.perf_counter() - t0
        asyncio.run(_level(url, bodies[: max(s["clients"])], max(s["clients"])))  # warm-up
        got: dict[int, list[dict[str, Any]]] = {c: [] for c in s["clients"]}
        for _ in range(repeats):
            for c in s["clients"]:
                got[c].append(asyncio.run(_level(url, bodies, c)))
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    rows, series = [], {"requests/s": []}
    base = stat([g["req_per_s"] for g in got[s["clients"][0]]])["median"]
    for c in s["clients"]:
        rps = stat([g["req_per_s"] for g in got[c]])
        rows.append([c, fmt(rps, 2), f"{rps['median'] / base:.2f}x", fmt(stat([g["p50_s"] for g in got[c]]), 2),
                     fmt(stat([g["p99_s"] for g in got[c]]), 2), fmt(stat([g["tokens_per_s"] for g in got[c]]), 0)])  # fmt: skip
        series["requests/s"].append(rps)
    top = max(s["clients"])
    speedup = stat([g["req_per_s"] for g in got[top]])["median"] / base
    return {
        "title": "Serve: concurrent clients against the Ray Serve app",
        "settings": {
            "model": f"tiny preset '{s['preset']}'",
            "replicas": cfg.serve.num_replicas,
            "requests_per_level": s["requests"],
            "max_tokens": s["max_tokens"],
            "temperature": 0,
            "engine": "vLLM AsyncLLM (continuous batching)",
            "start_s": round(start_s, 1),
        },  # fmt: skip
        "columns": ["clients", "requests/s", "vs 1 client", "p50 latency s", "p99 latency s", "tokens/s"],
        "rows": rows,
        "plot": {
            "x": list(s["clients"]),
            "xlabel": "concurrent clients",
            "ylabel": "requests/s",
            "series": series,
            "bars": True,
        },  # fmt: skip
        "targets": [
            target(f"serve requests/s at {top} clients vs 1", ">= 4x", f"{speedup:.2f}x", speedup >= 4)
        ],
    }
