"""The offline tiny model: tokenizer, chat prompt, SFT example masking, HF round trip."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from empathy_ray.domain import coe
from empathy_ray.modeling.chat import prompt_ids, sft_example, target_text
from empathy_ray.modeling.tokenizer import COE_TAGS

LAYERS = {"L1": "焦虑，失眠", "L2": "灾难化的想法", "L3": "希望被理解", "L4": "先共情再给建议"}


def test_tokenizer_round_trips_chinese_and_keeps_coe_tags_whole(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = coe.render(LAYERS, "谢谢你愿意说出来，最近睡不好一定很辛苦。😊 abc 123")
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == text  # byte-level: nothing is lost, tags survive
    for tag in COE_TAGS:
        assert len(tok.encode(tag, add_special_tokens=False)) == 1, tag
    # trained on the Chinese corpus: common words are merged, so fewer tokens than UTF-8 bytes / 2
    plain = "我最近总是失眠，心里很焦虑，不知道该怎么办。"
    assert len(tok.encode(plain, add_special_tokens=False)) < len(plain.encode("utf-8")) / 2


def test_prompt_is_cut_in_the_middle_when_too_long(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    post = "开头的自我介绍。" + "中间很长的叙述。" * 200 + "结尾的问题：我该怎么办？"
    full = prompt_ids(tok, post)
    cut = prompt_ids(tok, post, max_tokens=120)
    assert len(full) > 120 and len(cut) <= 120
    text = tok.decode(cut)
    assert "开头的自我介绍" in text and "我该怎么办" in text and "……" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_sft_example_masks_the_prompt(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ex = sft_example(tok, "标题\n正文", LAYERS, "回答", max_prompt_tokens=256, max_response_tokens=256)
    n_prompt = len(prompt_ids(tok, "标题\n正文"))
    assert ex.labels[:n_prompt] == [-100] * n_prompt
    assert ex.labels[n_prompt:] == ex.input_ids[n_prompt:]
    assert ex.input_ids[-1] == tok.eos_token_id  # the model learns to stop
    assert tok.decode(ex.input_ids[n_prompt:-1]) == target_text(LAYERS, "回答")
    assert coe.validate(target_text(LAYERS, "回答")) == []


def test_saved_tiny_model_loads_offline_and_generates(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen2"
    assert model.config.vocab_size == len(tok)
    ids = torch.tensor([prompt_ids(tok, "标题\n我很难过")])
    out = model.generate(input_ids=ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]


def test_input_noise_spares_prompt_tags_and_eos():
    from empathy_ray.train.batches import corrupt_inputs

    g = torch.Generator().manual_seed(0)
    ids = torch.arange(100, 400).reshape(3, 100)
    labels = ids.clone()
    labels[:, :40] = -100  # prompt
    protected = torch.tensor([150, 260, 399])  # a tag in each row + EOS
    noisy = corrupt_inputs(ids, labels, protected, rate=0.5, vocab_size=50, generator=g)
    assert torch.equal(noisy[:, :40], ids[:, :40]), "prompt tokens are never replaced"
    for t in protected.tolist():
        assert noisy[ids == t].item() == t, "tags and EOS are never replaced"
    changed = (noisy != ids).float()[:, 40:].mean().item()
    assert 0.4 < changed < 0.6  # ~half of the 180 reply positions (random ids < 50 never equal the originals)
    assert torch.equal(corrupt_inputs(ids, labels, protected, 0.0, 50, g), ids)


def test_pad_with_mask_pads_right_or_left():
    from empathy_ray.modeling.batching import pad_with_mask

    ids, mask = pad_with_mask([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]] and mask.dtype == torch.long
    ids, mask = pad_with_mask([[5, 6, 7], [8]], pad_id=0, left=True)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_encode_messages_adds_the_system_prompt_only_when_missing(tiny_model_dir):
    from empathy_ray.modeling.chat import encode_messages

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    user = [{"role": "user", "content": "我很难过"}]
    assert encode_messages(tok, user) == prompt_ids(tok, "我很难过")  # the policy's own prompt
    own = encode_messages(tok, [{"role": "system", "content": "简短回答。"}, *user])
    text = tok.decode(own)
    assert "简短回答。" in text and "心理咨询师" not in text
    assert text.endswith("<|im_start|>assistant\n")


def _greedy(generator, prompts, max_new=6, logprobs=False):
    from empathy_ray.modeling.generation import Sampling

    groups = generator.sample(prompts, Sampling(max_new, logprobs=logprobs), n=1, seeds=[0] * len(prompts))
    return [g[0] for g in groups]


def test_transformers_generator_keeps_the_stop_token_of_any_eos(tiny_model_dir, tmp_path):
    """A stop id listed only in generation_config.json ends a row like the tokenizer's EOS, and is kept."""
    import shutil

    from transformers import GenerationConfig

    from empathy_ray.modeling.generation import HfGenerator

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = [
        prompt_ids(tok, "标题\n我很难过"),
        prompt_ids(tok, "最近总是失眠，心里很焦虑，不知道该怎么办。"),
    ]
    gen = HfGenerator(str(tiny_model_dir))
    plain = _greedy(gen, prompts, logprobs=True)
    assert [c.finish_reason for c in plain] == ["length", "length"]  # the random tiny model never says EOS
    assert all(len(c.token_ids) == len(c.logprobs) == 6 and max(c.logprobs) <= 0.0 for c in plain)
    # left-padded in one batch == one prompt at a time (a wrong mask shifts logprobs by 1e-2 or more)
    for c, p in zip(plain, prompts, strict=True):
        alone = _greedy(gen, [p], logprobs=True)[0]
        assert alone.token_ids == c.token_ids
        assert torch.allclose(torch.tensor(alone.logprobs), torch.tensor(c.logprobs), atol=1e-5)

    stop_at = plain[0].token_ids[0]  # greedy's first token becomes a stop token
    model_dir = tmp_path / "extra-eos"
    shutil.copytree(tiny_model_dir, model_dir)
    gc = GenerationConfig.from_pretrained(model_dir)
    gc.eos_token_id = [tok.eos_token_id, stop_at]
    gc.save_pretrained(model_dir)
    tok.pad_token = None  # and no pad token: rows are padded with EOS
    tok.save_pretrained(model_dir)
    gen = HfGenerator(str(model_dir))
    assert gen.pad_id == tok.eos_token_id and gen.stop_ids == {tok.eos_token_id, stop_at}
    first = _greedy(gen, prompts)[0]
    assert first.token_ids == [stop_at] and first.finish_reason == "stop" and first.logprobs is None
    assert first.text == tok.decode([stop_at], skip_special_tokens=True)
