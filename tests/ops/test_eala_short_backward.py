"""The hand-written backward of the short (materialised-score) EALA path against autograd's
through the readable quadratic reference."""

from __future__ import annotations

import itertools

import pytest
import torch

import linearcast.ops.eala_short as short_mod
from linearcast.ops import (
    eala_attention,
    eala_attention_quadratic,
    eala_attention_short,
    eala_stats,
)

RULES = ["paper", "gauss", "gauss_hclamp", 0.8]
# (B, H, Nq, N, D, Dv): N = 1, 2, 12 (STAEformer's steps), 40; Nq != N and D != Dv
SHAPES = [(2, 2, 3, 1, 3, 2), (2, 2, 4, 2, 4, 3), (3, 2, 12, 12, 6, 4), (2, 3, 7, 40, 5, 6)]
# scale 2 with keys sharing an offset: score spread well above sqrt(2 ln n), so gauss_hclamp
# adapts θ and its chain through the score variance is exercised
SCALE = 2.0


def _strided_qkv(shape, dtype, seed=0):
    """q, k, v as the strided views a fused Q/K/V projection hands the kernel."""
    b, h, nq, n, d, dv = shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, nq, h, d, generator=g, dtype=torch.float64).transpose(1, 2)
    k = (torch.randn(b, n, h, d, generator=g, dtype=torch.float64) + 2.0).transpose(1, 2)
    v = torch.randn(b, n, h, dv, generator=g, dtype=torch.float64).transpose(1, 2)
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    assert not any(t.is_contiguous() for t in leaves if t.shape[2] > 1)
    return tuple(leaves)


def _fused_qkv(b, n, h, d, dtype):
    """The projection's ``[B, N, 3·H·D]`` buffer and q, k, v as its ``[B, H, N, D]`` views."""
    g = torch.Generator().manual_seed(5)
    fused = torch.randn(b, n, 3 * h * d, dtype=dtype, generator=g).requires_grad_()
    return fused, fused.unflatten(-1, (3, h, d)).permute(2, 0, 3, 1, 4).unbind(0)


def _both(q, k, v, seed=7, **kw):
    out = eala_attention_short(q, k, v, **kw)
    ref = eala_attention_quadratic(q, k, v, **kw)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.dtype)
    g_out = torch.autograd.grad((out * w).float().sum(), (q, k, v))
    g_ref = torch.autograd.grad((ref * w).float().sum(), (q, k, v))
    return out, ref, g_out, g_ref


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"N{s[3]}")
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_manual_backward_matches_autograd_of_the_reference(shape, rule, dtype, tol):
    q, k, v = _strided_qkv(shape, dtype)
    out, ref, g_out, g_ref = _both(q, k, v, theta=rule, scale=SCALE)
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    for name, a, b in zip("qkv", g_out, g_ref, strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m, n=name: f"d{n}: {m}")
    if rule == "gauss_hclamp" and shape[3] > 2:
        th = eala_stats(q.detach(), k.detach(), theta=rule, scale=SCALE).theta
        assert (th > 1.01).any()  # else this case would not test the θ chain


@pytest.mark.parametrize("rule", RULES)
def test_gradcheck(rule):
    q, k, v = _strided_qkv((1, 2, 4, 6, 3, 2), torch.float64, seed=3)
    assert torch.autograd.gradcheck(
        lambda q, k, v: eala_attention_short(q, k, v, theta=rule, scale=SCALE), (q, k, v)
    )


@pytest.mark.parametrize("wanted", [s for r in (1, 2) for s in itertools.combinations("qkv", r)])
def test_only_the_requested_gradients_are_computed_and_they_are_right(wanted):
    q, k, v = _strided_qkv(SHAPES[2], torch.float64)
    inputs = {"q": q, "k": k, "v": v}
    for name, t in inputs.items():
        t.requires_grad_(name in wanted)
    kw = dict(theta="gauss_hclamp", scale=SCALE)
    wanted_t = [inputs[n] for n in wanted]
    got = torch.autograd.grad(eala_attention_short(q, k, v, **kw).sum(), wanted_t)
    ref = torch.autograd.grad(eala_attention_quadratic(q, k, v, **kw).sum(), wanted_t)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rule", ["paper", "gauss_hclamp"])
def test_backward_saves_only_contiguous_copies_of_the_inputs(rule, saved_by):
    fused, (q, k, v) = _fused_qkv(4, 12, 2, 8, torch.float32)
    saved = saved_by(eala_attention_short, q, k, v, theta=rule)
    assert len(saved) == 3
    for t, x in zip(saved, (q, k, v), strict=True):
        assert t.is_contiguous() and t.dtype == x.dtype and torch.equal(t, x)
        # not a view of the projection's buffer: that buffer is freed after the forward
        assert t.untyped_storage().data_ptr() != fused.untyped_storage().data_ptr()
    # the probe does see the copies and scores when they are saved: the reference keeps them
    ref = saved_by(eala_attention_quadratic, q, k, v, theta=rule)
    assert any(not any(t is x for x in (q, k, v)) and t.numel() >= q.numel() for t in ref)


@pytest.mark.parametrize("option", [{"causal": True}, {"clamp": True}, {"theta": "exact"}])
def test_options_the_manual_backward_does_not_serve_keep_autograd(option, monkeypatch):
    calls: list[int] = []
    real = short_mod._EalaShort.apply
    monkeypatch.setattr(short_mod._EalaShort, "apply", lambda *a: calls.append(1) or real(*a))
    q, k, v = _strided_qkv(SHAPES[2], torch.float64)
    eala_attention_short(q, k, v, scale=SCALE, **option)
    assert calls == []
    eala_attention_short(q, k, v, scale=SCALE)
    eala_attention(q, k, v)  # auto: N = 12 <= 2·D takes the short path
    assert calls == [1, 1]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_are_computed_in_float32(dtype):
    q, k, v = _strided_qkv(SHAPES[3], dtype)
    out, ref, g_out, g_ref = _both(q, k, v, theta="gauss_hclamp", scale=0.5)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref.float(), rtol=1e-2, atol=1e-2)
    for a, b in zip(g_out, g_ref, strict=True):
        assert a.dtype == dtype and torch.isfinite(a).all()
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=2e-2)


def test_under_cpu_bf16_autocast_it_computes_in_float32():
    q, k, v = _strided_qkv(SHAPES[2], torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = eala_attention_short(q, k, v)
    out.float().square().sum().backward()
    grads = [t.grad for t in (q, k, v)]
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out2 = eala_attention_short(q2, k2, v2)  # the same op outside autocast: equal
    out2.float().square().sum().backward()
    assert out.dtype == torch.bfloat16 and torch.equal(out, out2)
    for a, b in zip(grads, (q2.grad, k2.grad, v2.grad), strict=True):
        assert a is not None and b is not None and a.dtype == torch.bfloat16
        assert torch.equal(a, b)


def test_no_double_backward():
    q, k, v = _strided_qkv(SHAPES[2], torch.float64)
    out = eala_attention_short(q, k, v)
    (gq,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gq.sum().backward()


@pytest.mark.parametrize("rule", RULES)
def test_a_constant_theta_never_forms_the_score_variance(rule, monkeypatch):
    calls: list[int] = []
    real = short_mod.theta_from_moments
    monkeypatch.setattr(
        short_mod, "theta_from_moments", lambda *a, **kw: calls.append(1) or real(*a, **kw)
    )
    q, k, v = _strided_qkv(SHAPES[2], torch.float64)
    out, ref, g_out, g_ref = _both(q, k, v, theta=rule, scale=SCALE)
    assert len(calls) == (2 if rule == "gauss_hclamp" else 0)  # forward and backward
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(g_out, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
