"""Micro-batches by token budget: which rows go through the model together.

A padded batch costs rows x its longest row in activations and logits (the [rows, length, vocab] logits
dominate with a large vocabulary), so a budget on that product bounds a forward's memory whatever the
reply lengths; a fixed number of rows does not: one long reply can exhaust it. Rows are taken shortest
first, so rows of similar length share a batch and little goes to padding.
"""

from __future__ import annotations


def pack_by_tokens(lengths: list[int], max_tokens: int = 0, max_rows: int = 0) -> list[list[int]]:
    """Indices of `lengths` in batches of at most `max_rows` rows (0: no limit) whose padded size,
    rows x longest row, is at most `max_tokens` (0: no limit). A row longer than the budget goes alone.

    Shortest first; every index appears exactly once. Both limits 0 is one batch of everything."""
    if max_tokens < 0 or max_rows < 0:
        raise ValueError(
            f"pack_by_tokens: limits must be >= 0, got max_tokens={max_tokens}, max_rows={max_rows}"
        )
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        rows, longest = len(current) + 1, lengths[i]  # sorted: the newcomer is the longest row
        if current and ((max_rows and rows > max_rows) or (max_tokens and rows * longest > max_tokens)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
