"""How a post becomes a prompt, and how a counsellor answer becomes the SFT target.

One place for the prompt format, shared by SFT, reward scoring, rollouts, evaluation and serving,
so a model is always asked the same way it was taught.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from empathy_ray.domain import coe

SYSTEM_PROMPT = (
    "你是一名温暖、专业的心理咨询师。回答前先在<empathy_think>中按四层进行共情推理："
    "<L1>来访者的情绪与处境</L1><L2>原因与信念（留意认知扭曲）</L2>"
    "<L3>来访者寻求的支持</L3><L4>回应策略</L4>，然后在<answer>中用中文回复来访者。"
)


MIN_POST_TOKENS = 16  # a prompt limit must leave at least this much of a post beside the chat frame


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase, post_text: str, max_tokens: int | None = None
) -> list[int]:
    """Token ids of the chat prompt, ending with the assistant header.

    A post longer than `max_tokens` is cut in the middle of the user text (beginning and end
    kept): the opening says who is writing and the end usually holds the question. The chat frame
    (bos, system prompt, role headers) is never cut: a limit it does not fit in is an error.
    """
    ids = _encode_prompt(tokenizer, post_text)
    if max_tokens is None or len(ids) <= max_tokens:
        return ids
    frame = len(_encode_prompt(tokenizer, ""))
    if frame + MIN_POST_TOKENS > max_tokens:
        raise ValueError(
            f"data.max_prompt_tokens={max_tokens} leaves no room for the post: with the tokenizer of "
            f"{tokenizer.name_or_path} the system prompt and chat template alone take {frame} tokens; "
            f"set data.max_prompt_tokens to at least {frame + MIN_POST_TOKENS} (real recipes: 512 or more)"
        )
    body = tokenizer.encode(post_text, add_special_tokens=False)
    budget = max_tokens - frame - 1  # post tokens to keep; one for the ellipsis
    while len(ids) > max_tokens:  # re-encoding the cut text can merge differently: shrink until it fits
        head = budget // 2
        tail = tokenizer.decode(body[head - budget :]) if budget - head > 0 else ""
        ids = _encode_prompt(tokenizer, tokenizer.decode(body[:head]) + "……" + tail)
        budget -= max(1, len(ids) - max_tokens)
    return ids


def _encode_prompt(tokenizer: PreTrainedTokenizerBase, post_text: str) -> list[int]:
    return encode_messages(tokenizer, [{"role": "user", "content": post_text}])


def encode_messages(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a conversation, ending with the assistant header. The CoE system prompt the model
    was trained with goes first unless the conversation brings its own system message."""
    if not tokenizer.chat_template:
        raise ValueError(
            f"{tokenizer.name_or_path}: the tokenizer has no chat template, so prompts cannot be built; "
            "use an instruct/chat checkpoint, or add a `chat_template.jinja` (or `chat_template` in "
            "tokenizer_config.json) to that folder"
        )
    if not messages or messages[0]["role"] != "system":
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, *messages]
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def target_text(layers: dict[str, str] | None, answer: str) -> str:
    """The assistant turn the model learns: the CoE block then the answer (or the answer alone)."""
    return coe.render(layers, answer) if layers else f"<answer>{answer}</answer>"


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # -100 on prompt tokens: the loss is on the assistant's tokens only


def sft_example(
    tokenizer: PreTrainedTokenizerBase,
    post_text: str,
    layers: dict[str, str] | None,
    answer: str,
    max_prompt_tokens: int,
    max_response_tokens: int,
) -> Example:
    p = prompt_ids(tokenizer, post_text, max_prompt_tokens)
    r = tokenizer.encode(target_text(layers, answer), add_special_tokens=False)[: max_response_tokens - 1]
    r = r + [tokenizer.eos_token_id]
    return Example(input_ids=p + r, labels=[-100] * len(p) + r)
