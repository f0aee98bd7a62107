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
    """Pairs from `data.pairs` (or the embedded samples); a pair without its own `split` takes its
    post's fixed split, so a post held out by the data is never seen by the RM either."""
    pairs = read_pairs(cfg.pairs) if cfg.pairs else load_sample_pairs()
    fixed = {p.id: p.split for p in load_posts(cfg) if p.split}
    if not fixed:
        return pairs
    return [replace(q, split=fixed.get(q.post_id or "")) if q.split is None else q for q in pairs]


def post_split(post: Post, cfg: DataConfig) -> str:
    """The post's own `split` when the data fixes one, else a hash of its id."""
    return post.split or split_of(post.id, cfg.split_fractions, cfg.split_seed)


def pair_split(pair: PreferencePair, cfg: DataConfig) -> str:
    """Pairs follow their post's split (`load_pairs` copies a fixed one), else the hash of the post id."""
    return pair.split or split_of(pair.post_id or pair.id, cfg.split_fractions, cfg.split_seed)
