"""Training examples for SFT and the reward model, and how they are split across Ray Train ranks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from empathy_ray.config import DataConfig
from empathy_ray.data.io import read_pairs, read_posts
from empathy_ray.data.records import Post, PreferencePair
from empathy_ray.data.samples import load_sample_pairs, load_sample_posts
from empathy_ray.data.splits import split_of

HELD_OUT = ("val", "test")


def load_posts(cfg: DataConfig) -> list[Post]:
    """Posts from `data.posts` (or the embedded samples), with the paper's short-answer filter."""
    posts = read_posts(cfg.posts) if cfg.posts else load_sample_posts()
    if cfg.min_answer_chars > 0:
        kept = []
        for p in posts:
            answers = [a for a in p.answers if len(a.text) >= cfg.min_answer_chars]
            if answers:
                kept.append(replace(p, answers=tuple(answers)))
        posts = kept
    return posts


def load_pairs(cfg: DataConfig) -> list[PreferencePair]:
    return read_pairs(cfg.pairs) if cfg.pairs else load_sample_pairs()


def post_split(post_id: str, cfg: DataConfig) -> str:
    return split_of(post_id, cfg.split_fractions, cfg.split_seed)


def pair_split(pair: PreferencePair, cfg: DataConfig) -> str:
    """Pairs follow their post's split, so a held-out post is never seen by the RM either."""
    return split_of(pair.post_id or pair.id, cfg.split_fractions, cfg.split_seed)


def corrupt_inputs(ids, labels, protected, rate: float, vocab_size: int, generator):
    """Replace a share `rate` of the response's input tokens with random tokens; labels stay.

    Why: a tiny model that memorises its replies predicts the closing CoE tags from the memorised
    words, so on an unseen post, where the words drift between remembered replies, it closes the
    wrong layer. With noisy inputs it has to track the structure (the tag it is inside) instead.
    Measured on the demo model (450 steps, 17 held-out posts, greedy): CoE validity 0.41 without
    noise, 0.82 with rate 0.15. Tags and EOS (`protected`) are never replaced.
    """
    import torch

    if rate <= 0:
        return ids
    candidates = (labels != -100) & ~torch.isin(ids, protected)
    flip = candidates & (torch.rand(ids.shape, generator=generator) < rate)
    noisy = ids.clone()
    noisy[flip] = torch.randint(0, vocab_size, (int(flip.sum()),), generator=generator)
    return noisy


@dataclass
class Shard:
    """The part of the data one rank trains on: every rank gets the same number of micro-batches."""

    items: list
    micro_batch_size: int

    def batches(self, epoch: int, seed: int, rank: int, world: int) -> Iterator[list]:
        order = list(range(len(self.items)))
        random.Random(seed * 1000 + epoch).shuffle(order)
        per_rank = len(order) // world
        n_batches = max(1, per_rank // self.micro_batch_size)
        mine = order[rank::world][: n_batches * self.micro_batch_size]
        if not mine:  # fewer items than ranks: repeat rather than let a rank skip a collective step
            mine = [order[rank % len(order)]]
        for i in range(0, len(mine), self.micro_batch_size):
            yield [self.items[j] for j in mine[i : i + self.micro_batch_size]]

    def num_batches(self, world: int) -> int:
        return max(1, (len(self.items) // world) // self.micro_batch_size)
