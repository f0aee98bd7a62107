"""Masked reductions that stay finite when nothing is valid.

Padding positions may hold garbage (``-inf`` log-probs, NaN from a 0/0 upstream), so values are
*selected* with ``torch.where`` rather than multiplied by the mask: ``NaN * 0`` is still NaN, and the
gradient of a ``where`` into its unselected branch is exactly 0. A mask is read as "nonzero = valid".
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["masked_mean", "masked_sum"]

Dim = int | tuple[int, ...] | None


def _select(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    try:
        x, valid = torch.broadcast_tensors(x, mask.bool())
    except RuntimeError as exc:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to values of shape {tuple(x.shape)}"
        ) from exc
    return torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)), valid


def masked_sum(x: Tensor, mask: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """Sum of ``x`` over valid positions (all of them when ``dim`` is None); 0 where nothing is valid."""
    selected, _ = _select(x, mask)
    return selected.sum(dim=dim, keepdim=keepdim)


def masked_mean(x: Tensor, mask: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """Mean of ``x`` over valid positions; returns 0 (not NaN) where the mask has no valid entry."""
    selected, valid = _select(x, mask)
    count = valid.sum(dim=dim, keepdim=keepdim).clamp(min=1).to(selected.dtype)
    return selected.sum(dim=dim, keepdim=keepdim) / count
