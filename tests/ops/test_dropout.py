"""The cheaper CPU dropout against ``F.dropout``: same distribution, exact scaling, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from linearcast.ops.dropout import dropout, dropout_reference


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_and_scaling_match_the_reference(p: float) -> None:
    torch.manual_seed(0)
    x = torch.rand(200_000) + 0.5  # no zeros of its own
    out = dropout(x, p)
    ref = dropout_reference(x, p)
    n = x.numel()
    tol = 5 * math.sqrt(p * (1 - p) / n)  # five standard errors
    assert abs((out == 0).float().mean().item() - p) < tol + 2**-16
    assert abs((ref == 0).float().mean().item() - p) < tol
    kept = out != 0
    keep_prob = 1 - round(p * 65536) / 65536
    torch.testing.assert_close(out[kept], x[kept] / keep_prob)
    # unbiased: the mean is preserved as well as by the reference
    assert abs(out.mean().item() - x.mean().item()) < 0.01


def test_gradient_flows_through_kept_entries_only() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 50, requires_grad=True)
    out = dropout(x, 0.25)
    out.sum().backward()
    assert x.grad is not None
    keep_prob = 1 - round(0.25 * 65536) / 65536
    expected = (out != 0).float() / keep_prob
    torch.testing.assert_close(x.grad, expected)


def test_masks_are_independent_across_positions_and_calls() -> None:
    torch.manual_seed(2)
    x = torch.ones(4, 100_000)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    # rows use different 16-bit slices: no two rows (nor two calls) share a mask
    assert not torch.equal(a[0] == 0, a[1] == 0) and not torch.equal(a == 0, b == 0)
    both = ((a == 0) & (b == 0)).float().mean().item()
    assert abs(both - 0.25) < 0.01  # independent draws


def test_identity_when_not_training_or_p_zero_and_seeded_reproducibility() -> None:
    x = torch.randn(10, 10)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    torch.manual_seed(3)
    a = dropout(x, 0.2)
    torch.manual_seed(3)
    torch.testing.assert_close(dropout(x, 0.2), a)
    with pytest.raises(ValueError, match="probability"):
        dropout(x, 1.0)
