"""A Chinese-capable tokenizer built offline, for the tiny demo model.

Byte-level BPE trained on the embedded corpus: every UTF-8 string is representable (no unknown
token), and frequent Chinese character pairs become single tokens, so posts stay short. The CoE tags
are added as whole tokens that decode back to their text (not "special"), so that
`decode(skip_special_tokens=True)` keeps them and the format reward sees them.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from empathy_ray.domain.coe import LAYERS

EOS = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [EOS, IM_START, IM_END]
COE_TAGS = [t for name in ("empathy_think", *LAYERS, "answer") for t in (f"<{name}>", f"</{name}>")]

# Qwen2-style chat markup: the same template shape real Qwen2.5 checkpoints use, so prompts built
# for the tiny model and for a real local model go through one code path (apply_chat_template).
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 6000) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus` and wrap it as a transformers fast tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=EOS,
        additional_special_tokens=[IM_START, IM_END],
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )
    fast.add_tokens(COE_TAGS)  # whole tokens, decoded as text
    return fast


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id rows are padded with: the tokenizer's pad token, else its EOS.

    Llama 3 tokenizers ship no pad token. Padded positions are masked out of attention and loss, so
    any real id does; a reward model's pooling skips trailing pad ids, and its rows end with reply
    text (encoded with special tokens split, see `reward_model.rm_input_ids`), never with EOS.
    """
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is None:
        raise ValueError(
            f"tokenizer of {tokenizer.name_or_path}: neither a pad nor an EOS token; set one in its "
            "tokenizer_config.json (pad_token or eos_token)"
        )
    return tokenizer.eos_token_id


def add_coe_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Add the CoE tags the tokenizer lacks as whole tokens, decoded as text like the tiny tokenizer's
    (a foreign tokenizer otherwise splits `<L1>` into 3-4 pieces). Returns how many were added."""
    vocab = tokenizer.get_vocab()
    return tokenizer.add_tokens([t for t in COE_TAGS if t not in vocab])


def fit_embeddings(tokenizer: PreTrainedTokenizerBase, model) -> None:
    """Grow `model`'s embedding (and untied head) when `tokenizer` has outgrown its rows; an embedding
    padded past its tokenizer (Qwen style) already has room and keeps its shape."""
    weight = model.get_input_embeddings().weight
    if len(tokenizer) > getattr(weight, "ds_shape", weight.shape)[0]:  # ZeRO-3 shards: the full shape
        model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64)
