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


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase, post_text: str, max_tokens: int | None = None
) -> list[int]:
    """Token ids of the chat prompt, ending with the assistant header.

    A post longer than `max_tokens` is cut in the middle of the user text (beginning and end
    kept): the opening says who is writing and the end usually holds the question.
    """
    ids = _encode_prompt(tokenizer, post_text)
    if max_tokens is None or len(ids) <= max_tokens:
        return ids
    body = tokenizer.encode(post_text, add_special_tokens=False)
    excess = len(ids) - max_tokens + 1  # +1 for the ellipsis token(s) below
    keep_head = max(0, (len(body) - excess) // 2)
    keep_tail = max(0, len(body) - excess - keep_head)
    cut = (
        tokenizer.decode(body[:keep_head]) + "……" + (tokenizer.decode(body[-keep_tail:]) if keep_tail else "")
    )
    ids = _encode_prompt(tokenizer, cut)
    return ids[-max_tokens:] if len(ids) > max_tokens else ids


def _encode_prompt(tokenizer: PreTrainedTokenizerBase, post_text: str) -> list[int]:
    return encode_messages(tokenizer, [{"role": "user", "content": post_text}])


def encode_messages(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a conversation, ending with the assistant header. The CoE system prompt the model
    was trained with goes first unless the conversation brings its own system message."""
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
