"""Every kernel of the table against its reference: values and gradients, over the table's grid.

The cases are generated from :data:`linearcast.ops.KERNELS`, so a kernel added to the table is
tested here at once. Lengths include 1 (one key), lengths that are not a multiple of the causal
chunk (5 in the grid's paths) and more keys than twice the head dimension (the linear paths).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from linearcast.ops import KERNELS, KernelOp

LENGTHS = (1, 7, 23)


def _cases() -> Iterator[Any]:
    for name, op in KERNELS.items():
        keys = list(op.grid)
        for values in itertools.product(*(op.grid[k] for k in keys)):
            options = dict(zip(keys, values, strict=True))
            for causal in (False, True) if op.causal else (False,):
                for masked in (False, True):
                    for p, path in enumerate(op.paths):
                        tag = ",".join(f"{k}={v}" for k, v in options.items())
                        yield pytest.param(
                            op, options, causal, masked, path,
                            id=f"{name}[{tag}|causal={causal}|mask={masked}|path{p}]",
                        )  # fmt: skip


def _inputs(n: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(n)
    q, k, v = (torch.randn(2, 2, n, d, generator=g, dtype=torch.float64) for d in (3, 3, 4))
    return q.requires_grad_(), k.requires_grad_(), v.requires_grad_()


def _mask(n: int) -> torch.Tensor:
    # the second row pads its last two keys (a row padding every key is a test of its own)
    mask = torch.zeros(2, n, dtype=torch.bool)
    if n > 2:
        mask[1, -2:] = True
    return mask


@pytest.mark.parametrize(("op", "options", "causal", "masked", "path"), list(_cases()))
@pytest.mark.parametrize("n", LENGTHS)
def test_fast_matches_naive_values_and_gradients(
    op: KernelOp,
    options: dict[str, Any],
    causal: bool,
    masked: bool,
    path: dict[str, Any],
    n: int,
) -> None:
    q, k, v = _inputs(n)
    kw: dict[str, Any] = dict(options, key_padding_mask=_mask(n) if masked else None)
    if op.causal:
        kw["causal"] = causal
    if op.extra is not None:
        torch.manual_seed(n)
        kw.update(op.extra(n, q))
    out = op.fast(q, k, v, **kw, **path)
    ref = op.naive(q, k, v, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((out * w).sum(), (q, k, v))
    grads_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


def test_every_kernel_has_a_reference_a_grid_or_path_and_a_benchmark_variant() -> None:
    for name, op in KERNELS.items():
        assert op.fast is not op.naive, name
        assert op.variants, f"{name}: benchmarks/attention.py would not time it"
        assert op.paths, name


@pytest.mark.parametrize(("n", "k_len"), [(1000, 256), (100, 100)])
def test_linformer_projection_of_the_table_is_n_0_1_over_k(n: int, k_len: int) -> None:
    extra = KERNELS["linformer"].extra
    assert extra is not None
    torch.manual_seed(0)
    e = extra(n, torch.empty(0, dtype=torch.float64))["e_proj"]
    assert e.shape == (k_len, n) and e.dtype == torch.float64
    assert float(e.var()) == pytest.approx(1.0 / k_len, rel=0.05)
    meta = extra(n, torch.empty(0, device="meta"))["e_proj"]
    assert meta.device.type == "meta"
