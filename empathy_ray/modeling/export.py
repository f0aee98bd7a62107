"""Saving a trained model so that it stays what its source checkpoint was, bar the weights.

A Qwen or Llama instruct folder carries more than weights: its dtype (bf16), a tokenizer whose files
transformers rewrites when it saves them again (class name, unk token, chat template placement), and a
`generation_config.json` with the eos list. An export that lost any of these would load, and then
stop at the wrong token or double in size. So the weights go out in the source's dtype and the
source's tokenizer and generation files are copied byte for byte; only a tokenizer that gained tokens
(`model.add_coe_tokens`) is saved anew.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# What a hub checkpoint ships besides config.json and the weights (any that exist are copied).
SOURCE_FILES = (
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def source_dtype(model_dir: str | Path) -> torch.dtype:
    """The dtype a checkpoint's config.json declares (`dtype`, or the older `torch_dtype`); fp32 if none."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    return getattr(torch, name) if isinstance(getattr(torch, name, None), torch.dtype) else torch.float32


def save_like_source(model, tokenizer, source_dir: str | Path | None, out_dir: str | Path) -> None:
    """Save `model` (a plain HF model, merged) and `tokenizer` into `out_dir` as `source_dir` was saved.

    Without a source folder (a model built from a config in memory) it is a plain `save_pretrained`.
    """
    from transformers import AutoTokenizer

    out = Path(out_dir)
    source = Path(source_dir) if source_dir else None
    if source is None or not (source / "config.json").exists():
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        return
    dtype = source_dtype(source)
    model.to(dtype=dtype).save_pretrained(out, safe_serialization=True)
    grew = len(tokenizer) != len(AutoTokenizer.from_pretrained(source))
    if grew:
        tokenizer.save_pretrained(out)
    copied = []
    for name in ("generation_config.json",) if grew else SOURCE_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
            copied.append(name)
    log.info("export %s: %s weights; from %s: %s", out, dtype, source, ", ".join(copied) or "nothing")
