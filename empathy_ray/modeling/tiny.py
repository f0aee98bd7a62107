"""Random-weight Qwen2-architecture models built offline, for the demo, tests and benchmarks.

Nothing is fetched from a model hub: the tokenizer is trained on the embedded sample corpus and
the weights are drawn from a seed. The saved folder is an ordinary HF directory (safetensors), so
transformers, vLLM and every stage of the pipeline treat it exactly like a real local checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from empathy_ray.domain import coe
from empathy_ray.domain.files import atomic_dir
from empathy_ray.modeling.chat import SYSTEM_PROMPT
from empathy_ray.modeling.tokenizer import build_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """Qwen2Config dimensions, under Qwen2Config's own names."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int


# head_dim is 64 everywhere: a size every vLLM attention backend (the CPU one included) supports.
PRESETS: dict[str, Preset] = {
    "test": Preset(64, 2, 1, 1, 128),
    "demo": Preset(128, 4, 2, 1, 384),
    "bench": Preset(768, 14, 12, 2, 2048),  # ~100M params
}


def sample_corpus() -> Iterator[str]:
    """Every text of the embedded sample data: what the tiny tokenizer learns its merges from."""
    from empathy_ray.data.samples import load_sample_pairs, load_sample_posts

    yield SYSTEM_PROMPT
    for post in load_sample_posts():
        yield post.text
        for a in post.answers:
            yield coe.render(a.coe, a.text) if a.coe else a.text
    for pair in load_sample_pairs():
        yield pair.rejected


def build_tiny_model(
    out_dir: str | Path, preset: str = "demo", seed: int = 0, vocab_size: int = 6000
) -> Path:
    """Build tokenizer + random model and save them as an HF directory (atomically)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    tokenizer = build_tokenizer(sample_corpus(), vocab_size=vocab_size)
    config = Qwen2Config(
        **dataclasses.asdict(p),
        head_dim=p.hidden_size // p.num_attention_heads,
        vocab_size=len(tokenizer),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    n_params = sum(t.numel() for t in model.parameters())
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    log.info(
        "tiny model %r: %.2fM parameters, vocab %d -> %s", preset, n_params / 1e6, len(tokenizer), out_dir
    )
    return out_dir


def tiny_main(args) -> int:
    out = Path(args.out_dir)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} exists and is not empty; remove it or choose another OUT_DIR")
        return 2
    build_tiny_model(out, preset=args.preset, seed=args.seed)
    print(out)
    return 0
