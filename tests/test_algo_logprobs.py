"""logprobs_from_logits (chunked, custom backward) and entropy_from_logits against direct formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from empathy_ray.algo import entropy_from_logits, logprobs_from_logits


def _direct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, labels[..., None]).squeeze(-1)


def test_logprobs_hand_example():
    # one row of V=3 logits [0, 0, ln 2] -> softmax [1/4, 1/4, 1/2]
    # label 2 -> ln 0.5 = -0.693147;  label 0 -> ln 0.25 = -1.386294
    logits = torch.tensor([[[0.0, 0.0, math.log(2.0)], [0.0, 0.0, math.log(2.0)]]])  # [1, 2, 3]
    out = logprobs_from_logits(logits, torch.tensor([[2, 0]]))  # [1, 2]
    assert_close(out, torch.tensor([[-0.693147, -1.386294]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 512])
def test_logprobs_match_log_softmax_values_and_gradients(chunk_rows):
    # logits [2, 5, 11] -> [2, 5]; chunk_rows 3 splits 10 positions into uneven blocks, 1 and 4 split rows
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(2, 5, 11, generator=g) * 3).requires_grad_(True)
    labels = torch.randint(0, 11, (2, 5), generator=g)
    weights = torch.randn(2, 5, generator=g)

    ours = logprobs_from_logits(logits, labels, chunk_rows=chunk_rows)
    (ours * weights).sum().backward()
    grad_ours = logits.grad.clone()

    logits.grad = None
    ref = _direct(logits, labels)
    (ref * weights).sum().backward()
    assert ours.shape == (2, 5) and ours.dtype == torch.float32
    assert_close(ours, ref)
    assert_close(grad_ours, logits.grad)


def test_logprobs_gradcheck_float64_on_a_non_contiguous_slice():
    # the usual shift: logits[:, :-1] of [3, 6, 7] is a non-contiguous [3, 5, 7] view
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    labels = torch.randint(0, 7, (3, 5), generator=g)
    assert torch.autograd.gradcheck(
        lambda z: logprobs_from_logits(z[:, :-1], labels, chunk_rows=4), (logits,)
    )


def test_bf16_logits_give_float32_logprobs():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 9, generator=g).to(torch.bfloat16)
    labels = torch.randint(0, 9, (2, 4), generator=g)
    out = logprobs_from_logits(logits, labels)
    assert out.dtype == torch.float32
    assert_close(out, _direct(logits, labels))  # same bf16 values, upcast before the softmax


def test_negative_labels_are_ignored_with_zero_gradient():
    # [1, 2, 4]; position 1 carries the -100 ignore label -> logp 0 and no gradient into its logits row
    logits = torch.randn(1, 2, 4, requires_grad=True)
    out = logprobs_from_logits(logits, torch.tensor([[1, -100]]))
    assert out[0, 1] == 0
    out.sum().backward()
    assert torch.equal(logits.grad[0, 1], torch.zeros(4))
    assert logits.grad[0, 0].abs().sum() > 0


def test_logprobs_input_errors():
    logits = torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match="out of range for a vocabulary of 4"):
        logprobs_from_logits(logits, torch.tensor([[0, 4]]))
    with pytest.raises(ValueError, match="must equal logits shape"):
        logprobs_from_logits(logits, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="integer tensor"):
        logprobs_from_logits(logits, torch.zeros(1, 2))


def test_entropy_of_uniform_is_log_v():
    # all-equal logits (any constant per row) -> uniform over V=7 -> H = ln 7 = 1.945910 everywhere
    logits = torch.arange(6.0).view(2, 3, 1).expand(2, 3, 7)  # [2, 3, 7]
    assert_close(entropy_from_logits(logits, chunk_rows=2), torch.full((2, 3), math.log(7.0)))


def test_entropy_hand_example_and_random_match():
    # softmax [1/4, 1/4, 1/2]: H = 2 * (1/4 ln 4) + 1/2 ln 2 = 0.693147 + 0.346574 = 1.039721
    logits = torch.tensor([[[0.0, 0.0, math.log(2.0)]]])
    assert_close(entropy_from_logits(logits), torch.tensor([[1.039721]]), atol=1e-6, rtol=0)
    # random [3, 4, 10] against -sum p log p, with chunks that split rows (chunk_rows=3 < T=4)
    x = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(4)) * 5
    logp = torch.log_softmax(x, dim=-1)
    assert_close(entropy_from_logits(x, chunk_rows=3), -(logp.exp() * logp).sum(-1))
