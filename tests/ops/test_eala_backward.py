"""The hand-written backward of non-causal linear EALA against autograd's (the reference)."""

from __future__ import annotations

import itertools

import pytest
import torch

import linearcast.ops.eala as eala_mod
from linearcast.nn import MultiHeadAttention
from linearcast.ops import (
    eala_attention,
    eala_attention_linear,
    eala_attention_linear_autograd,
    eala_stats,
)

RULES = ["paper", "gauss", "gauss_hclamp", 0.8]
# (B, H, Nq, N, D, Dv): N = 1, 2, 3, 17, 170 with Nq != N and D != Dv
SHAPES = [
    (3, 2, 2, 1, 3, 2),
    (3, 2, 5, 2, 4, 3),
    (3, 1, 1, 3, 2, 5),
    (3, 2, 9, 17, 6, 4),
    (3, 2, 31, 170, 8, 5),
]
# scale 2 with |k| ≈ 3·sqrt(D): score std well above sqrt(2 ln n), so gauss_hclamp adapts θ
SCALE = 2.0


def _qkv(shape, dtype, seed=0):
    b, h, nq, n, d, dv = shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, nq, d, generator=g, dtype=torch.float64)
    k = torch.randn(b, h, n, d, generator=g, dtype=torch.float64) + 2.0  # keys share an offset
    v = torch.randn(b, h, n, dv, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype).requires_grad_() for t in (q, k, v))


def _mask(b, n, seed=1):
    """Row 0 random (key 0 kept), row 1 all but its last key padded, other rows unpadded."""
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(b, n, dtype=torch.bool)
    m[0] = torch.rand(n, generator=g) < 0.4
    m[0, 0] = False
    m[1, :-1] = True
    return m


def _both(q, k, v, **kw):
    """Outputs and (q, k, v) gradients of the manual and the autograd path for one cotangent."""
    out = eala_attention_linear(q, k, v, **kw)
    ref = eala_attention_linear_autograd(q, k, v, **kw)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(out.dtype)
    g_out = torch.autograd.grad((out * w).float().sum(), (q, k, v))
    g_ref = torch.autograd.grad((ref * w).float().sum(), (q, k, v))
    return out, ref, g_out, g_ref


def _theta_adapts(q, k, mask, scale):
    th = eala_stats(q.detach(), k.detach(), theta="gauss_hclamp", scale=scale,
                    key_padding_mask=mask).theta  # fmt: skip
    return bool((th > 1.01).any())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"N{s[3]}")
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_manual_backward_matches_autograd(shape, rule, masked, dtype, tol):
    q, k, v = _qkv(shape, dtype)
    mask = _mask(shape[0], shape[3]) if masked else None
    out, ref, g_out, g_ref = _both(q, k, v, theta=rule, scale=SCALE, key_padding_mask=mask)
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    for name, a, b in zip("qkv", g_out, g_ref, strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m, n=name: f"d{n}: {m}")
    if mask is not None:
        for row in range(shape[0]):
            assert (g_out[1][row][:, mask[row]] == 0).all()  # padded keys get no gradient
            assert (g_out[2][row][:, mask[row]] == 0).all()
    if rule == "gauss_hclamp" and shape[3] > 2:
        assert _theta_adapts(q, k, mask, SCALE)  # else this case would not test the θ chain


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck(rule, masked):
    q, k, v = _qkv((2, 1, 3, 6, 3, 2), torch.float64, seed=3)
    mask = _mask(2, 6, seed=4) if masked else None

    def f(q, k, v):
        return eala_attention_linear(q, k, v, theta=rule, scale=SCALE, key_padding_mask=mask)

    if rule == "gauss_hclamp":
        assert _theta_adapts(q, k, mask, SCALE)
    assert torch.autograd.gradcheck(f, (q, k, v))


@pytest.mark.parametrize("wanted", [s for r in (1, 2) for s in itertools.combinations("qkv", r)])
def test_only_the_requested_gradients_are_computed_and_they_are_right(wanted):
    q, k, v = _qkv(SHAPES[3], torch.float64)
    inputs = {"q": q, "k": k, "v": v}
    for name, t in inputs.items():
        t.requires_grad_(name in wanted)
    mask = _mask(3, SHAPES[3][3])
    kw = dict(theta="gauss_hclamp", scale=SCALE, key_padding_mask=mask)
    out = eala_attention_linear(q, k, v, **kw)
    ref = eala_attention_linear_autograd(q, k, v, **kw)
    wanted_t = [inputs[n] for n in wanted]
    for a, b in zip(
        torch.autograd.grad(out.sum(), wanted_t),
        torch.autograd.grad(ref.sum(), wanted_t),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("rule", ["paper", "gauss_hclamp"])
def test_half_inputs_are_computed_in_float32_like_the_reference(dtype, rule):
    q, k, v = _qkv(SHAPES[4], dtype)
    mask = _mask(3, SHAPES[4][3])
    out, ref, g_out, g_ref = _both(q, k, v, theta=rule, scale=0.5, key_padding_mask=mask)
    assert out.dtype == dtype
    # both forwards run in float32 (in different orders) and round to the half type once, so
    # they differ by at most one unit in the last place where a float32 result sits next to a
    # rounding boundary (CPU kernels differ in that order: exact equality held on one machine
    # and not on another); a forward computed in the half type would be several units off
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(out.float(), ref.float(), rtol=eps, atol=eps * 1e-3)
    for a, b in zip(g_out, g_ref, strict=True):
        assert a.dtype == dtype and torch.isfinite(a).all()
        # both are float32 gradients rounded to the half type once
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-2, atol=1e-2)


def test_all_keys_padded_row_gets_zero_gradients_without_nan():
    q, k, v = _qkv((2, 2, 4, 9, 3, 2), torch.float64)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1] = True
    out, ref, g_out, g_ref = _both(q, k, v, theta="gauss_hclamp", scale=SCALE,
                                   key_padding_mask=mask)  # fmt: skip
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_out, g_ref, strict=True):
        assert torch.isfinite(a).all()
        assert (a[1] == 0).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rule", ["paper", "gauss_hclamp"])
@pytest.mark.parametrize("masked", [False, True])
def test_backward_saves_only_the_inputs_and_small_statistics(rule, masked, saved_by):
    b, h, nq, n, d, dv = 2, 2, 300, 256, 8, 6
    q, k, v = _qkv((b, h, nq, n, d, dv), torch.float32)
    mask = _mask(b, n) if masked else None
    kw = dict(theta=rule, key_padding_mask=mask)
    saved = saved_by(eala_attention_linear, q, k, v, **kw)
    inputs = [t for t in saved if any(t is x for x in (q, k, v))]
    others = [t for t in saved if not any(t is x for x in (q, k, v))]
    assert len(inputs) == 3  # q, k, v themselves, no cast or centred copy
    # per batch and head: D×(D+Dv) statistics, D key mean, Dv value sum, Nq scalars
    assert all(t.numel() < b * h * n * d for t in others), [tuple(t.shape) for t in others]
    assert sum(t.numel() for t in others) <= b * (n + h * (d * (d + dv) + d + dv + nq))
    # the probe does see N-sized intermediates when they are saved: autograd's path keeps K̂
    ref_saved = saved_by(eala_attention_linear_autograd, q, k, v, **kw)
    assert any(t.numel() >= b * h * n * d and not any(t is x for x in (q, k, v)) for t in ref_saved)


def test_half_inputs_are_saved_as_given_not_as_float32_copies(saved_by):
    q, k, v = _qkv(SHAPES[4], torch.bfloat16)
    saved = saved_by(eala_attention_linear, q, k, v)
    assert not any(t.numel() >= k.numel() and t.dtype == torch.float32 for t in saved)


def test_no_double_backward():
    q, k, v = _qkv(SHAPES[3], torch.float64)
    # a cotangent that itself needs grad (2·out), so the second derivative would be needed
    out = eala_attention_linear(q, k, v)
    (gq,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        gq.sum().backward()


def test_dispatcher_uses_the_manual_backward(monkeypatch):
    calls = []
    real = eala_mod._EalaLinear.apply
    monkeypatch.setattr(eala_mod._EalaLinear, "apply", lambda *a: calls.append(1) or real(*a))
    q, k, v = _qkv(SHAPES[4], torch.float64)
    eala_attention(q, k, v, impl="linear")
    eala_attention(q, k, v)  # auto: N = 170 > 2·D
    assert calls == [1, 1]


@pytest.mark.parametrize("rule", ["paper", "gauss_hclamp"])
def test_multihead_attention_grads_equal_the_autograd_path(rule, monkeypatch):
    x = torch.randn(2, 3, 50, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(6, 50, dtype=torch.bool)
    mask[1, 10:] = True
    results = []
    for fn in (eala_attention_linear, eala_attention_linear_autograd):
        monkeypatch.setattr(eala_mod, "eala_attention_linear", fn)
        torch.manual_seed(0)
        mha = MultiHeadAttention(16, 2, kernel="eala", theta=rule, impl="linear").to(torch.float64)
        xi = x.clone().requires_grad_()
        y = mha(xi, key_padding_mask=mask.reshape(2, 3, 50))
        y.square().sum().backward()
        grads = [xi.grad] + [p.grad for p in mha.parameters()]
        assert all(g is not None for g in grads)
        results.append((y.detach(), grads))
    (y1, g1), (y2, g2) = results
    torch.testing.assert_close(y1, y2, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_linear_path_under_cpu_bf16_autocast_computes_in_float32() -> None:
    # autocast used to turn the op's inner matmuls into bfloat16 and save mixed dtypes, so the
    # backward failed ("expected m1 and m2 to have the same dtype") for ELinFormer under
    # --precision bf16-mixed; the op now computes in its own compute dtype under autocast
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 300, 16, generator=g, dtype=torch.bfloat16) for _ in range(3))
    for t in (q, k, v):
        t.requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = eala_attention(q, k, v, impl="linear")
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    grads = [t.grad for t in (q, k, v)]
    assert all(gr is not None and gr.dtype == torch.bfloat16 for gr in grads)
    # the same op outside autocast, from the same bf16 inputs: equal (autocast no longer matters)
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out2 = eala_attention(q2, k2, v2, impl="linear")
    out2.float().square().sum().backward()
    assert torch.equal(out, out2)
    for a, b in zip(grads, (q2.grad, k2.grad, v2.grad), strict=True):
        assert a is not None and b is not None and torch.equal(a, b)


@pytest.mark.parametrize("rule", ["paper", "gauss", 0.8])
def test_a_constant_theta_skips_the_score_statistics(rule, saved_by):
    # θ that ignores the scores never needs A = K̂ᵀK̂ or qᵀAq: half the matmul work of
    # gauss_hclamp when D = Dv, and only M = K̂ᵀv is kept for backward
    from torch.utils.flop_counter import FlopCounterMode

    q, k, v = _qkv((2, 2, 64, 96, 8, 8), torch.float32)
    flops = {}
    for r in (rule, "gauss_hclamp"):
        counter = FlopCounterMode(display=False)
        with counter:
            eala_attention_linear(q, k, v, theta=r)
        flops[r] = counter.get_total_flops()
    assert flops[rule] == flops["gauss_hclamp"] // 2
    saved = saved_by(eala_attention_linear, q, k, v, theta=rule)
    assert any(tuple(t.shape) == (2, 2, 8, 8) for t in saved)  # M
    assert not any(t.shape[-2:] == (8, 16) for t in saved)  # no [A | M]


@pytest.mark.parametrize("rule", ["paper", "gauss", 0.8])
def test_the_causal_path_skips_the_key_covariance_state_for_a_constant_theta(rule):
    # Σkkᵀ per chunk (C·D·D per position) and q·Σkkᵀ (D·D per query) are the whole difference
    from torch.utils.flop_counter import FlopCounterMode

    from linearcast.ops import eala_attention_causal

    b, h, n, d, dv = 2, 2, 96, 8, 4
    q, k, v = _qkv((b, h, n, n, d, dv), torch.float32)
    flops = {}
    for r in (rule, "gauss_hclamp"):
        counter = FlopCounterMode(display=False)
        with counter:
            eala_attention_causal(q, k, v, theta=r, chunk_size=32)
        flops[r] = counter.get_total_flops()
    assert flops["gauss_hclamp"] - flops[rule] == 2 * (2 * b * h * n * d * d)
