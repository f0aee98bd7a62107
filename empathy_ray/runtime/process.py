"""Process set-up shared by every entry point: cache folders, logging, and connecting to Ray."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from empathy_ray.config import RayConfig
from empathy_ray.runtime.logs import LOG_FILE_ENV, redirect_output

log = logging.getLogger(__name__)
_started_here = False  # this process started its own local Ray (it ends with the process)


def cache_root() -> Path:
    """Where compiled ops and engine caches go: $EMPATHY_RAY_CACHE, else ~/.cache/empathy-ray."""
    return Path(os.environ.get("EMPATHY_RAY_CACHE") or Path.home() / ".cache" / "empathy-ray").resolve()


def worker_env() -> dict[str, str]:
    """Environment every process of ours gets (driver, Ray Train workers, actors).

    Keeps DeepSpeed's JIT ops, vLLM's and inductor's caches out of the user's global folders and
    makes sure nothing reaches for a model hub.
    """
    root = cache_root()
    return {
        "EMPATHY_RAY_CACHE": str(root),
        "TORCH_EXTENSIONS_DIR": str(root / "torch_extensions"),
        "VLLM_CACHE_ROOT": str(root / "vllm"),
        "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor"),
        "TRITON_CACHE_DIR": str(root / "triton"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


def setup_process(level: int = logging.INFO, log_file: str | None = None) -> None:
    """Cache folders and offline flags, logging, and (`log_file`) this process's output into the run's
    log file of its role (runtime/logs.py; a task started with $EMPATHY_RAY_LOG_FILE set: that file),
    before anything a library prints."""
    log_file = log_file or os.environ.pop(LOG_FILE_ENV, None)
    if log_file:
        redirect_output(log_file)
    os.environ.update({k: v for k, v in worker_env().items() if k not in os.environ})
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def _cluster_running() -> bool:
    if os.environ.get("RAY_ADDRESS"):
        return True
    return Path("/tmp/ray/ray_current_cluster").exists()


def init_ray(cfg: RayConfig) -> bool:
    """Join the cluster named in the config, or a running one, else start a local Ray.

    Returns True when the Ray cluster outlives this process (joined, not started here): what is
    deployed on it (a Serve app) keeps running after we exit.
    """
    global _started_here
    import ray

    if ray.is_initialized():
        return not _started_here
    runtime_env = {"env_vars": worker_env()}
    if cfg.address or _cluster_running():
        address = cfg.address or "auto"
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
            log.info("joined Ray cluster at %s: %s", address, ray.cluster_resources())
            return True
        except ConnectionError:
            if cfg.address:
                raise
            log.info("no running Ray cluster answered; starting a local one")
    # The dashboard also serves the state API that Ray Train polls; without it the logs fill with warnings.
    ray.init(num_cpus=cfg.num_cpus, _temp_dir=cfg.temp_dir, runtime_env=runtime_env)
    _started_here = True
    log.info("started local Ray: %s", ray.cluster_resources())
    return False


def host_facts() -> dict[str, str]:
    """What decides the arithmetic of a run on this host (recorded in summary.json): CPU kernels differ
    between instruction sets (AVX-512 alone or with AMX), so bit-level results can differ between
    hosts of the same size while two runs on one host agree."""
    import platform

    import torch

    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = next((ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("flags")), "")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {
        "machine": platform.machine(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_amx": str("amx_tile" in flags.split()),
        "gpu": gpu,
    }
