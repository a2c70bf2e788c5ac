"""Memory layout of the fast EALA paths: how often they copy the strided q, k, v a fused Q/K/V
projection hands them, and whether merging the heads of their output needs a copy."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from linearcast.ops import eala_attention

# (impl, N): the materialised-score path at STAEformer's 12 steps, the linear one at 96 keys
PATHS = [("quadratic", 12), ("linear", 96)]


def _fused(b, n, h, d, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    fused = torch.randn(b, n, 3 * h * d, generator=g, dtype=dtype).requires_grad_()
    q, k, v = fused.unflatten(-1, (3, h, d)).permute(2, 0, 3, 1, 4).unbind(0)
    return fused, q, k, v


def _big_copies(prof, under: str, numel: int) -> int:
    """``aten::copy_`` calls of at least ``numel`` elements inside the record named ``under``."""
    count = 0
    for e in prof.events():
        if e.name != "aten::copy_" or not e.input_shapes or not e.input_shapes[0]:
            continue
        if torch.Size(e.input_shapes[0]).numel() < numel:
            continue
        parent = e.cpu_parent
        while parent is not None and parent.name != under:
            parent = parent.cpu_parent
        count += parent is not None
    return count


@pytest.mark.parametrize("impl,n", PATHS)
@pytest.mark.parametrize("theta", ["paper", "gauss_hclamp"])
def test_strided_inputs_are_copied_once_in_forward_and_the_gradient_once_in_backward(
    impl, n, theta
):
    b, h, d = 3, 2, 8
    fused, q, k, v = _fused(b, n, h, d)
    name = "_EalaShort" if impl == "quadratic" else "_EalaLinear"
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        out = eala_attention(q, k, v, impl=impl, theta=theta)
        merged = out.transpose(1, 2).reshape(b, n, h * d)  # the heads merged, as MHA does
        merged.backward(torch.randn(merged.shape, generator=torch.Generator().manual_seed(1)))
    numel = b * h * n * d
    assert _big_copies(prof, name, numel) == 3  # q, k and v, each once
    assert _big_copies(prof, name + "Backward", numel) == 1  # the merged heads' gradient
    assert fused.grad is not None and torch.isfinite(fused.grad).all()


@pytest.mark.parametrize("impl,n", PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("theta", ["paper", "gauss_hclamp"])  # each has its own output line
def test_output_is_laid_out_heads_last_so_merging_the_heads_is_a_view(impl, n, dtype, theta):
    b, h, d = 2, 3, 4
    _, q, k, v = _fused(b, n, h, d, dtype)
    out = eala_attention(q, k, v, impl=impl, theta=theta)
    assert out.dtype == dtype and out.shape == (b, h, n, d)
    merged = out.transpose(1, 2).reshape(b, n, h * d)
    assert merged.data_ptr() == out.data_ptr() and merged._base is not None
    # the layout changes nothing in the values: the same op on contiguous copies
    again = eala_attention(q.contiguous(), k.contiguous(), v.contiguous(), impl=impl, theta=theta)
    torch.testing.assert_close(out, again, rtol=0, atol=0)
