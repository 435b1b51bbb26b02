"""Gradients of the fast path equal autograd through the per-step deque reference."""

from __future__ import annotations

import pytest
import torch

from tests.test_model import OPTION_GRID, make_model, reference_stack


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("options", OPTION_GRID[::3], ids=lambda o: "-".join(map(str, o.values())))
def test_gradients_equal_reference(options, training):
    """Train mode included: batch norm then uses each step's batch statistics in both paths."""
    model = make_model(num_layers=2, **options).train(training)
    x = torch.randn(7, 3, 5, dtype=torch.float64, requires_grad=True)
    out_weight = torch.randn(7, 3, 12, dtype=torch.float64)
    attn_weight = torch.randn(3, 7, 3, 4, dtype=torch.float64)

    def loss(output, weights):
        return (output * out_weight).sum() + sum((w * attn_weight).sum() for w in weights)

    output, _, record = model(x, return_attention=True)
    fast = torch.autograd.grad(loss(output, record.weights), [x, *model.parameters()])
    expected, expected_weights = reference_stack(model, x)
    slow = torch.autograd.grad(loss(expected, expected_weights), [x, *model.parameters()])
    names = ["x"] + [name for name, _ in model.named_parameters()]
    for name, got, want in zip(names, fast, slow, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6, msg=name)
