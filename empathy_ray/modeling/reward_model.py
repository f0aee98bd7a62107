"""What a reward model reads and how it scores: shared by RM training, the reward actor and eval.

The RM sees the same chat prompt as the policy, followed by the reply text (the answer only, never
the CoE block), and its scalar head reads the last real token of each right-padded row: transformers
pools at the rightmost id that is not `config.pad_token_id`, so rows are padded with that id and a
reply never ends with it (special-token text in a reply is split into plain tokens).
"""

from __future__ import annotations

from empathy_ray.modeling.chat import prompt_ids
from empathy_ray.modeling.tokenizer import pad_id


def rm_input_ids(tokenizer, post_text: str, reply: str, max_prompt: int, max_reply: int) -> list[int]:
    """What the reward model reads: the chat prompt, then the reply (answer text only, no CoE)."""
    return (
        prompt_ids(tokenizer, post_text, max_prompt)
        + tokenizer.encode(reply, add_special_tokens=False, split_special_tokens=True)[:max_reply]
    )


def load_reward_model(model_dir: str, dtype=None):
    """Tokenizer + scalar-head model from an HF directory (what `run_rm` saved); the model pools at
    the last id that is not `pad_id(tok)`, the id `score` pads with (Llama 3 has no pad token)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=1, dtype=dtype or torch.float32
    )
    model.config.pad_token_id = pad_id(tok)
    return tok, model


def score(model, seqs: list[list[int]], pad_id: int):
    """Scalar reward per sequence (right-padded; the head reads the last real token)."""
    from empathy_ray.modeling.batching import pad_with_mask

    device = next(model.parameters()).device
    ids, mask = pad_with_mask(seqs, pad_id)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (B, 1)
    return logits[:, 0].float()
