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


@pytest.mark.parametrize("p", [0.1, 0.5, 0.7])
def test_the_mask_is_the_documented_draw(p: float) -> None:
    # one 64-bit integer per four elements, each 16-bit quarter kept when it is at or above
    # -2^15 + round(p·2^16): rebuilt here from the same seed, element for element
    n = 300_001  # not a multiple of 4; with ~4.6 quarters per threshold level, ties occur
    torch.manual_seed(4)
    out = dropout(torch.ones(n), p)
    torch.manual_seed(4)
    raw = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    quarters = raw.view(torch.int16)[:n]
    threshold = -(2**15) + round(p * 2**16)
    assert bool((quarters == threshold).any())  # the boundary is exercised
    torch.testing.assert_close(out != 0, quarters >= threshold)


def test_reference_and_other_devices_use_f_dropout(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(5, 5)
    assert torch.equal(dropout_reference(x, 0.5, training=False), x)
    from linearcast.ops import dropout as module

    calls: list[tuple[object, ...]] = []

    def fake(*args: object) -> torch.Tensor:
        calls.append(args)
        return torch.empty(0)

    monkeypatch.setattr(module.F, "dropout", fake)
    meta = torch.empty(3, 4, device="meta")  # any device but the CPU takes the reference
    dropout(meta, 0.3)
    assert len(calls) == 1 and calls[0][0] is meta and calls[0][1:] == (0.3, True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dropout_keeps_the_dtype(dtype: torch.dtype) -> None:
    assert dropout(torch.ones(1000, dtype=dtype), 0.3).dtype == dtype
