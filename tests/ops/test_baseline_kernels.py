"""Softmax (SDPA vs naive), elu+1 linear attention and Linformer against their references."""

from __future__ import annotations

import pytest
import torch

from linearcast.errors import ConfigError
from linearcast.ops import (
    linear_attention,
    linear_attention_naive,
    linformer_attention,
    linformer_attention_naive,
    softmax_attention,
    softmax_attention_naive,
)


def _qkv(n, *, b=2, h=2, d=8, dv=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, n, d, generator=g, dtype=dtype)
    k = torch.randn(b, h, n, d, generator=g, dtype=dtype)
    v = torch.randn(b, h, n, dv, generator=g, dtype=dtype)
    return q, k, v


def _mask(b, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(b, n, generator=g) < 0.3
    m[:, 0] = False
    return m


def _grads(f, args):
    out = f(*args)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=out.dtype)
    return out, torch.autograd.grad((out * w).sum(), args)


def _softmax_by_hand(q, k, v, mask, scale, causal):
    s = scale * q @ k.transpose(-1, -2)
    allowed = ~mask[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    p = torch.where(allowed, torch.exp(s - s.amax(-1, keepdim=True)), torch.zeros_like(s))
    total = p.sum(-1, keepdim=True)
    return torch.where(total > 0, p / total.clamp_min(1e-300), 0.0) @ v


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "fn",
    [
        softmax_attention,
        softmax_attention_naive,
        lambda *a, **kw: softmax_attention(*a, impl="naive", **kw),
    ],
    ids=["sdpa", "reference", "impl-naive"],
)
def test_softmax_paths_with_a_scale_and_one_batch_without_keys(fn, causal):
    q, k, v = _qkv(6)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0] = True  # batch 0 sees no key at all; batch 1 all but two
    mask[1, [2, 4]] = True
    out = fn(q, k, v, causal=causal, scale=0.3, key_padding_mask=mask)
    torch.testing.assert_close(out, _softmax_by_hand(q, k, v, mask, 0.3, causal))
    assert torch.equal(out[0], torch.zeros_like(out[0])) and out[1].abs().sum() > 0


@pytest.mark.parametrize("n", [1, 2, 12, 170])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_softmax_sdpa_matches_naive(n, causal, masked, dtype, tol):
    args = tuple(t.requires_grad_() for t in _qkv(n, dtype=dtype))
    mask = _mask(2, n) if masked else None
    out, g = _grads(
        lambda q, k, v: softmax_attention(q, k, v, causal=causal, key_padding_mask=mask), args
    )
    ref, g_ref = _grads(
        lambda q, k, v: softmax_attention_naive(q, k, v, causal=causal, key_padding_mask=mask), args
    )
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=10 * tol, atol=10 * tol)


def test_softmax_naive_is_softmax():
    q, k, v = _qkv(7)
    p = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    torch.testing.assert_close(softmax_attention_naive(q, k, v), p @ v)


def test_softmax_fully_padded_row_is_zero_not_nan():
    q, k, v = _qkv(5)
    mask = torch.ones(2, 5, dtype=torch.bool)
    assert torch.equal(
        softmax_attention(q, k, v, key_padding_mask=mask), torch.zeros(2, 2, 5, 5, dtype=q.dtype)
    )


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("fn", [softmax_attention, softmax_attention_naive])
def test_softmax_gradcheck(causal, fn):
    args = tuple(t.requires_grad_() for t in _qkv(5, b=1, h=1, d=3, dv=2))
    mask = _mask(1, 5)
    assert torch.autograd.gradcheck(
        lambda q, k, v: fn(q, k, v, causal=causal, key_padding_mask=mask), args
    )


@pytest.mark.parametrize("n", [1, 2, 12, 170])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("fmap,normalize", [("elu1", True), ("identity", False)])
def test_linear_attention_matches_naive(n, causal, masked, fmap, normalize):
    args = tuple(t.requires_grad_() for t in _qkv(n))
    mask = _mask(2, n) if masked else None
    kw = dict(causal=causal, key_padding_mask=mask, feature_map=fmap, normalize=normalize)
    out, g = _grads(lambda q, k, v: linear_attention(q, k, v, chunk_size=16, **kw), args)
    ref, g_ref = _grads(lambda q, k, v: linear_attention_naive(q, k, v, **kw), args)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_linear_attention_naive_is_the_formula():
    q, k, v = _qkv(6, b=1, h=1)
    fq, fk = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    a = fq @ fk.transpose(-1, -2)
    torch.testing.assert_close(
        linear_attention_naive(q, k, v, eps=0.0), a @ v / a.sum(-1, keepdim=True)
    )
    # unnormalised causal identity map: o_t = Σ_{j≤t} (q_t·k_j) v_j (SAMoVAR)
    o = linear_attention_naive(q, k, v, causal=True, feature_map="identity", normalize=False)
    t = 3
    expected = sum((q[0, 0, t] @ k[0, 0, j]) * v[0, 0, j] for j in range(t + 1))
    torch.testing.assert_close(o[0, 0, t], expected)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_gradcheck(causal):
    args = tuple(t.requires_grad_() for t in _qkv(7, b=1, h=1, d=3, dv=2))
    assert torch.autograd.gradcheck(
        lambda q, k, v: linear_attention(q, k, v, causal=causal, chunk_size=3), args
    )


def test_linear_attention_causal_ignores_the_future():
    q, k, v = _qkv(30)
    out = linear_attention(q, k, v, causal=True)
    k2 = k.clone()
    k2[:, :, 20:] = 9.0
    torch.testing.assert_close(linear_attention(q, k2, v, causal=True)[:, :, :20], out[:, :, :20])


@pytest.mark.parametrize("n,r", [(1, 1), (12, 4), (170, 32)])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("per_head", [False, True])
def test_linformer_matches_naive(n, r, masked, per_head):
    args = tuple(t.requires_grad_() for t in _qkv(n))
    g = torch.Generator().manual_seed(5)
    shape = (2, r, n) if per_head else (r, n)
    e = (torch.randn(*shape, generator=g, dtype=torch.float64) / r).requires_grad_()
    f = torch.randn(*shape, generator=g, dtype=torch.float64) / r
    mask = _mask(2, n) if masked else None
    out, gr = _grads(
        lambda q, k, v: linformer_attention(q, k, v, e, f, key_padding_mask=mask), args
    )
    ref, gr_ref = _grads(
        lambda q, k, v: linformer_attention_naive(q, k, v, e, f, key_padding_mask=mask), args
    )
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(gr, gr_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    (ge,) = torch.autograd.grad(linformer_attention(*args, e, f).sum(), e)
    (ge_ref,) = torch.autograd.grad(linformer_attention_naive(*args, e, f).sum(), e)
    torch.testing.assert_close(ge, ge_ref)


def test_linformer_with_identity_projection_is_softmax():
    q, k, v = _qkv(9)
    eye = torch.eye(9, dtype=q.dtype)
    torch.testing.assert_close(linformer_attention(q, k, v, eye), softmax_attention_naive(q, k, v))


def test_linformer_gradcheck():
    q, k, v = (t.requires_grad_() for t in _qkv(6, b=1, h=1, d=3, dv=2))
    e = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda q, k, v, e: linformer_attention(q, k, v, e), (q, k, v, e)
    )


def test_linformer_rejects_wrong_length_and_causal():
    q, k, v = _qkv(9)
    with pytest.raises(ConfigError, match="N = 9"):
        linformer_attention(q, k, v, torch.randn(3, 8, dtype=q.dtype))
    with pytest.raises(ConfigError, match="causal"):
        linformer_attention(q, k, v, torch.randn(3, 9, dtype=q.dtype), causal=True)


@pytest.mark.parametrize("fn", [softmax_attention, softmax_attention_naive])
def test_causal_softmax_refuses_queries_of_another_length(fn):
    q, k, v = _qkv(6)
    with pytest.raises(ValueError, match=r"causal|length"):
        fn(q[:, :, :4], k, v, causal=True)
