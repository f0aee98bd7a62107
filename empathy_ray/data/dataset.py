"""The posts and preference pairs a run trains and evaluates on, and which split each belongs to."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from empathy_ray.data.io import read_pairs, read_posts
from empathy_ray.data.records import Post, PreferencePair
from empathy_ray.data.samples import load_sample_pairs, load_sample_posts
from empathy_ray.data.splits import split_of

HELD_OUT = ("val", "test")


class DataConfig(Protocol):
    """What these functions read: the `data` config section (empathy_ray.config.DataConfig), named
    structurally because data/ sits below config/ in the layers."""

    posts: str
    pairs: str
    split_fractions: tuple[float, float, float]
    split_seed: int
    min_answer_chars: int


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
