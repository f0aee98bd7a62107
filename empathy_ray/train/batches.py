"""How SFT and reward-model examples are batched per Ray Train rank, and the SFT input noise."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


def corrupt_inputs(ids, labels, protected, rate: float, vocab_size: int, generator):
    """Replace a share `rate` of the response's input tokens with random tokens; labels stay.

    Why: a tiny model that memorises its replies predicts the closing CoE tags from the memorised
    words, so on an unseen post, where the words drift between remembered replies, it closes the
    wrong layer. With noisy inputs it has to track the structure (the tag it is inside) instead.
    On the demo model it doubles held-out CoE validity (benchmarks/results/sft-input-noise.md).
    Tags and EOS (`protected`) are never replaced.
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
