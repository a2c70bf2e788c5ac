"""EALA: linear and causal paths against the quadratic reference, and the properties of eala.md."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from linearcast.errors import ConfigError
from linearcast.ops import (
    PAPER_THETA,
    eala_attention,
    eala_attention_causal,
    eala_attention_linear,
    eala_attention_quadratic,
    eala_stats,
    eala_weights,
    exact_theta,
    paper_first_order_entropy,
    softmax_entropy,
    theta_from_moments,
    theta_star,
)

RULES = ["paper", "gauss", "gauss_hclamp", 0.8]
SIZES = [1, 2, 12, 170, 883]


def _qkv(n, *, b=2, h=2, d=8, dv=5, nq=None, dtype=torch.float64, offset=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    nq = n if nq is None else nq
    q = torch.randn(b, h, nq, d, generator=g, dtype=dtype)
    k = (
        torch.randn(b, h, n, d, generator=g, dtype=dtype) + offset
    )  # a shared offset, as in real keys
    v = torch.randn(b, h, n, dv, generator=g, dtype=dtype)
    return q, k, v


def _mask(b, n, seed=1, p=0.3):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(b, n, generator=g) < p
    m[:, 0] = False  # keep at least one valid key per row
    return m


# scale=1 with d=8 gives a score std of about 2.8: gauss_hclamp then differs from gauss
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("masked", [False, True])
def test_linear_matches_quadratic_float64_values_and_grads(n, rule, masked):
    q, k, v = (t.requires_grad_() for t in _qkv(n, b=1 if n == 883 else 2))
    mask = _mask(q.shape[0], n) if masked else None
    kw = dict(theta=rule, scale=1.0, key_padding_mask=mask)
    ref = eala_attention_quadratic(q, k, v, **kw)
    out = eala_attention_linear(q, k, v, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    g_out = torch.autograd.grad((out * w).sum(), (q, k, v))
    for a, b in zip(g_out, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("masked", [False, True])
def test_causal_linear_matches_causal_quadratic_float64(n, rule, masked):
    q, k, v = (t.requires_grad_() for t in _qkv(n, b=1, h=2 if n < 883 else 1))
    mask = _mask(q.shape[0], n) if masked else None
    kw = dict(theta=rule, scale=1.0, key_padding_mask=mask)
    ref = eala_attention_quadratic(q, k, v, causal=True, **kw)
    out = eala_attention_causal(q, k, v, chunk_size=16, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    g_out = torch.autograd.grad((out * w).sum(), (q, k, v))
    for a, b in zip(g_out, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("n", [2, 12, 170, 883])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("causal", [False, True])
def test_float32_paths_agree_with_float64_reference(n, rule, causal):
    q, k, v = _qkv(n, b=1, h=1, d=16, dv=12)
    mask = _mask(1, n)
    kw = dict(theta=rule, key_padding_mask=mask, causal=causal)
    ref = eala_attention_quadratic(q, k, v, **kw)
    q32, k32, v32 = (t.float().requires_grad_() for t in (q, k, v))
    out = eala_attention(q32, k32, v32, impl="linear", **kw)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    quad32 = eala_attention(q32, k32, v32, impl="quadratic", **kw)
    w = torch.randn_like(quad32)
    g_lin = torch.autograd.grad((out * w).sum(), (q32, k32, v32))
    g_quad = torch.autograd.grad((quad32 * w).sum(), (q32, k32, v32))
    for a, b in zip(g_lin, g_quad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 500])
def test_causal_chunk_size_does_not_change_the_result(chunk):
    q, k, v = _qkv(37, b=1)
    ref = eala_attention_quadratic(q, k, v, causal=True, theta="gauss_hclamp", scale=1.0)
    out = eala_attention_causal(q, k, v, theta="gauss_hclamp", scale=1.0, chunk_size=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


GRAD_PATHS = [
    ("quadratic", False),
    ("quadratic", True),
    ("linear", False),
    ("linear", True),
]


@pytest.mark.parametrize("impl,causal", GRAD_PATHS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck(impl, causal, rule, masked):
    q, k, v = (t.requires_grad_() for t in _qkv(6, b=1, h=1, d=3, dv=2, offset=0.5))
    mask = _mask(1, 6, seed=3) if masked else None

    def f(q, k, v):
        return eala_attention(
            q, k, v, theta=rule, impl=impl, causal=causal, scale=1.0, key_padding_mask=mask,
            chunk_size=4,
        )  # fmt: skip

    assert torch.autograd.gradcheck(f, (q, k, v))


def test_gradcheck_clamped_quadratic():
    q, k, v = (t.requires_grad_() for t in _qkv(6, b=1, h=1, d=3, dv=2, offset=0.5))

    # with scale 3 several weights are negative and get clipped; the function stays smooth
    # almost everywhere, which is what gradcheck sees at a random point
    def f(q, k, v):
        return eala_attention_quadratic(q, k, v, theta="gauss", scale=3.0, clamp=True)

    assert (eala_weights(q, k, theta="gauss", scale=3.0) < 0).any()
    assert torch.autograd.gradcheck(f, (q, k, v))


def test_future_keys_and_values_do_not_change_earlier_outputs():
    q, k, v = _qkv(50, b=1)
    for impl in ("quadratic", "linear"):
        out = eala_attention(q, k, v, impl=impl, causal=True, theta="gauss_hclamp", scale=1.0)
        k2, v2 = k.clone(), v.clone()
        k2[:, :, 30:] += torch.randn_like(k2[:, :, 30:]) * 5
        v2[:, :, 30:] -= 3.0
        out2 = eala_attention(q, k2, v2, impl=impl, causal=True, theta="gauss_hclamp", scale=1.0)
        torch.testing.assert_close(out2[:, :, :30], out[:, :, :30], rtol=1e-12, atol=1e-12)
        assert not torch.allclose(out2[:, :, 30:], out[:, :, 30:])  # later outputs do change


def test_first_causal_position_returns_its_value():
    q, k, v = _qkv(9, dtype=torch.float32, offset=100.0)
    for impl in ("quadratic", "linear"):
        out = eala_attention(q, k, v, impl=impl, causal=True, theta="gauss_hclamp")
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[:, :, 0], v[:, :, 0])


@pytest.mark.parametrize("rule", [*RULES, "exact"])
@pytest.mark.parametrize("causal", [False, True])
def test_weights_sum_to_one_and_are_affine(rule, causal):
    q, k, _ = _qkv(40, offset=0.0)
    mask = _mask(2, 40)
    w = eala_weights(q, k, theta=rule, causal=causal, key_padding_mask=mask, scale=1.0)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), rtol=0, atol=1e-12)
    for b in range(2):
        assert (w[b][..., mask[b]] == 0).all()  # padded keys get exactly no weight
    if causal:
        assert (w.triu(1) == 0).all()


@pytest.mark.parametrize("impl", ["quadratic", "linear"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("causal", [False, True])
def test_zero_query_returns_mean_of_values_without_nan(impl, rule, causal):
    q, k, v = _qkv(20, dtype=torch.float32)
    q = torch.zeros_like(q).requires_grad_()
    out = eala_attention(q, k, v, impl=impl, theta=rule, causal=causal)
    if causal:
        counts = torch.arange(1, 21, dtype=v.dtype)[:, None]
        expected = v.cumsum(-2) / counts
    else:
        expected = v.mean(-2, keepdim=True).expand_as(out)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    (g,) = torch.autograd.grad(out.sum(), q)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("impl", ["quadratic", "linear"])
@pytest.mark.parametrize("causal", [False, True])
def test_shifting_all_keys_does_not_change_the_output(impl, causal):
    q, k, v = _qkv(64, offset=0.0)
    out = eala_attention(q, k, v, impl=impl, theta="gauss_hclamp", causal=causal, scale=1.0)
    shift = torch.randn(1, 1, 1, k.shape[-1], dtype=k.dtype) * 50
    out2 = eala_attention(
        q, k + shift, v, impl=impl, theta="gauss_hclamp", causal=causal, scale=1.0
    )
    torch.testing.assert_close(out2, out, rtol=1e-9, atol=1e-9)


def test_paper_theta_is_one_over_sqrt2_for_any_input():
    for seed, scale in [(0, 0.01), (1, 1.0), (2, 30.0)]:
        q, k, _ = _qkv(100, seed=seed)
        st = eala_stats(q, k, theta="paper", scale=scale, eps=1e-8)
        torch.testing.assert_close(st.theta, torch.full_like(st.theta, 1 / math.sqrt(2) + 1e-8))
    assert PAPER_THETA == pytest.approx(2**-0.5)


def test_paper_estimate_literally_gives_theta_one_over_sqrt2():
    # the paper's first-order entropy H ≈ log n − m2, plugged into θ* = sqrt(m2 / (2 (log n − H)))
    g = torch.Generator().manual_seed(0)
    for sigma in (0.05, 0.5, 3.0):
        x = torch.randn(7, 300, generator=g, dtype=torch.float64) * sigma
        x = x - x.mean(-1, keepdim=True)
        m2 = (x * x).mean(-1)
        h = paper_first_order_entropy(x)
        theta = torch.sqrt(m2 / (2 * (math.log(300) - h)))
        torch.testing.assert_close(theta, torch.full_like(theta, 2**-0.5), rtol=1e-9, atol=1e-12)


def test_gauss_hclamp_adapts_only_when_the_deficit_would_exceed_log_n():
    n = torch.tensor(100.0, dtype=torch.float64)
    m2 = torch.tensor([0.0, 1.0, 2 * math.log(100), 4 * 2 * math.log(100)], dtype=torch.float64)
    th = theta_from_moments(m2, n, "gauss_hclamp")
    torch.testing.assert_close(th, torch.tensor([1.0, 1.0, 1.0, 2.0], dtype=torch.float64))
    m2g = m2.clone().requires_grad_()
    (g,) = torch.autograd.grad(theta_from_moments(m2g, n, "gauss_hclamp").sum(), m2g)
    assert torch.isfinite(g).all()
    # n = 1: no deficit possible, θ = 1 and no NaN
    one = theta_from_moments(torch.zeros(3), torch.ones(3), "gauss_hclamp")
    assert torch.equal(one, torch.ones(3))


def test_exact_theta_matches_softmax_entropy():
    # score std ≈ 0.14: softmax is flat enough for a non-negative linear weighting to match it
    q, k, _ = _qkv(200, b=1, h=3, offset=0.0)
    st = eala_stats(q, k, theta="exact", scale=0.05)
    assert (st.neg_fraction == 0).all()
    torch.testing.assert_close(st.eala_entropy, st.softmax_entropy, rtol=1e-8, atol=1e-8)
    # peaked softmax (std ≈ 4): no non-negative linear weighting is that peaked; θ stops at the
    # most peaked one, whose entropy stays above softmax's
    st = eala_stats(q, k, theta="exact", scale=1.5)
    assert (st.eala_entropy > st.softmax_entropy).all()
    assert (st.neg_fraction == 0).all()


def test_exact_theta_of_flat_scores_is_finite():
    x = torch.zeros(1, 1, 2, 5, dtype=torch.float64)
    th = exact_theta(x, None, torch.full((1, 1, 1, 1), 5.0, dtype=torch.float64))
    assert torch.equal(th, torch.ones(1, 1, 2, dtype=torch.float64))


def test_negative_weight_fraction_matches_gaussian_prediction():
    # for Gaussian scores with std σ and θ = 1, P(x < −1) = Φ(−1/σ) (eala.md §5.4)
    g = torch.Generator().manual_seed(0)
    d, n = 256, 4000
    q = torch.randn(1, 1, 64, d, generator=g, dtype=torch.float64)
    k = torch.randn(1, 1, n, d, generator=g, dtype=torch.float64)
    for sigma in (0.5, 1.0, 8.0):
        st = eala_stats(q, k, theta="gauss", scale=sigma / math.sqrt(d))
        expected = 0.5 * math.erfc((1 / st.sigma.mean().item()) / math.sqrt(2))
        assert st.neg_fraction.mean().item() == pytest.approx(expected, abs=0.02)


def test_softmax_entropy_of_uniform_scores_is_log_n():
    x = torch.zeros(3, 17, dtype=torch.float64)
    torch.testing.assert_close(
        softmax_entropy(x, None), torch.full((3,), math.log(17), dtype=x.dtype)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("std", [1e-4, 1e-2, 1.0, 1e2])
@pytest.mark.parametrize("impl,causal", GRAD_PATHS)
@pytest.mark.parametrize("rule", ["paper", "gauss", "gauss_hclamp"])
def test_no_nan_or_inf_over_score_scales(dtype, std, impl, causal, rule):
    q, k, v = _qkv(96, b=1, d=16, dv=16, dtype=torch.float32, offset=3.0)
    q = (q * std).to(dtype).requires_grad_()  # scores τ q·k have std ≈ std (τ = 1/4, |k| ≈ 4)
    k, v = k.to(dtype), v.to(dtype)
    out = eala_attention(q, k, v, theta=rule, impl=impl, causal=causal)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    (g,) = torch.autograd.grad(out.float().sum(), q)
    assert torch.isfinite(g).all()


def test_half_precision_is_close_to_float32():
    q, k, v = _qkv(300, b=1, d=16, dv=16, dtype=torch.float32)
    ref = eala_attention(q, k, v, theta="gauss_hclamp", impl="linear")
    out = eala_attention(
        q.bfloat16(), k.bfloat16(), v.bfloat16(), theta="gauss_hclamp", impl="linear"
    )
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


def test_auto_dispatch_follows_the_crossover_and_logs_once(caplog, monkeypatch):
    import linearcast.ops.eala as eala_module

    # the announcement is once per process: start from none, whatever ran before in this worker
    monkeypatch.setattr(eala_module, "_announced", set())
    caplog.set_level(logging.INFO, logger="linearcast.ops.eala")
    q, k, v = _qkv(12, d=38, dv=38, dtype=torch.float32, b=1, h=1)
    eala_attention(q, k, v)
    eala_attention(q, k, v)
    msgs = [r.getMessage() for r in caplog.records if "chose" in r.getMessage()]
    assert len(msgs) == 1 and "quadratic" in msgs[0] and "N=12" in msgs[0]
    q, k, v = _qkv(170, d=38, dv=38, dtype=torch.float32, b=1, h=1)
    eala_attention(q, k, v)
    msgs = [r.getMessage() for r in caplog.records if "chose" in r.getMessage()]
    assert len(msgs) == 2 and "linear" in msgs[1]


def test_bad_options_raise_clear_errors():
    q, k, v = _qkv(10)
    with pytest.raises(ConfigError, match="clamp"):
        eala_attention(q, k, v, impl="linear", clamp=True)
    with pytest.raises(ConfigError, match="exact"):
        eala_attention(q, k, v, impl="linear", theta="exact")
    with pytest.raises(ConfigError, match="theta rule"):
        eala_attention(q, k, v, theta="softmax")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="positive"):
        eala_attention(q, k, v, theta=-1.0)
    with pytest.raises(ConfigError, match=r"\[B, H, N, D\]"):
        eala_attention(q[0], k, v)
    with pytest.raises(ConfigError, match="key_padding_mask"):
        eala_attention(q, k, v, key_padding_mask=torch.zeros(2, 10))
    with pytest.raises(ConfigError, match="as many queries as keys"):
        eala_attention(q[:, :, :3], k, v, causal=True)


def test_all_keys_padded_gives_zeros_not_nan():
    q, k, v = _qkv(8)
    mask = torch.ones(2, 8, dtype=torch.bool)
    for impl in ("quadratic", "linear"):
        out = eala_attention(q, k, v, impl=impl, key_padding_mask=mask)
        assert torch.equal(out, torch.zeros_like(out))


def test_clamp_removes_negative_weights():
    q, k, _ = _qkv(64)
    w = eala_weights(q, k, theta="gauss", scale=1.0)
    wc = eala_weights(q, k, theta="gauss", scale=1.0, clamp=True)
    assert (w < 0).any() and (wc >= 0).all()
    torch.testing.assert_close(wc.sum(-1), torch.ones_like(wc.sum(-1)))


def test_linear_path_never_forms_an_n_by_n_tensor():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        biggest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, tuple | list) else (out,):
                if isinstance(t, torch.Tensor):
                    Largest.biggest = max(Largest.biggest, t.numel())
            return out

    n = 4096
    q, k, v = (t.requires_grad_() for t in _qkv(n, b=1, h=1, d=16, dv=16, dtype=torch.float32))
    for causal in (False, True):
        Largest.biggest = 0
        with Largest():
            out = eala_attention(q, k, v, impl="linear", causal=causal)
            out.sum().backward()
        assert Largest.biggest < n * n // 16
    Largest.biggest = 0
    with Largest():
        eala_attention(q, k, v, impl="quadratic")
    assert Largest.biggest >= n * n  # the probe does see N×N tensors when they exist


@pytest.mark.parametrize("n", [1, 2, 12, 40])
@pytest.mark.parametrize("rule", RULES)
def test_short_path_matches_reference_values_and_grads(n, rule):
    from linearcast.ops import eala_attention_short

    q, k, v = (t.requires_grad_() for t in _qkv(n, nq=max(n - 1, 1)))
    ref = eala_attention_quadratic(q, k, v, theta=rule, scale=1.0)
    out = eala_attention_short(q, k, v, theta=rule, scale=1.0)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    g_out = torch.autograd.grad((out * w).sum(), (q, k, v))
    for a, b in zip(g_out, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("rule", [*RULES, "exact"])
@pytest.mark.parametrize("option", ["causal", "padded", "clamp"])
def test_short_path_options_match_the_reference(rule, option):
    from linearcast.ops import eala_attention_short

    q, k, v = _qkv(9)
    kwargs = {
        "causal": {"causal": True},
        "padded": {"key_padding_mask": _mask(2, 9)},
        "clamp": {"clamp": True},
    }[option]
    ref = eala_attention_quadratic(q, k, v, theta=rule, scale=1.0, **kwargs)
    out = eala_attention_short(q, k, v, theta=rule, scale=1.0, **kwargs)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    plain = eala_attention_quadratic(q, k, v, theta=rule, scale=1.0)
    if not (option == "clamp" and rule == "exact"):  # exact θ leaves no negative weight here
        assert not torch.allclose(out, plain)  # the option changes the result


def test_short_path_refuses_causal_queries_of_another_length():
    from linearcast.ops import eala_attention_short

    q, k, v = _qkv(9, nq=4)
    with pytest.raises(ValueError, match=r"causal|length"):
        eala_attention_short(q, k, v, causal=True)


@pytest.mark.parametrize("rule", RULES)
def test_short_path_gradcheck(rule):
    from linearcast.ops import eala_attention_short

    q, k, v = (t.requires_grad_() for t in _qkv(5, b=1, h=1, d=3, dv=2, nq=4, offset=0.5))
    assert torch.autograd.gradcheck(
        lambda q, k, v: eala_attention_short(q, k, v, theta=rule, scale=1.0), (q, k, v)
    )


def test_quadratic_dispatch_runs_the_fast_short_path_for_every_option(monkeypatch):
    import linearcast.ops.eala as eala_mod

    calls = []
    real = eala_mod.short_unchecked
    monkeypatch.setattr(
        eala_mod, "short_unchecked", lambda *a, **kw: calls.append(1) or real(*a, **kw)
    )
    q, k, v = _qkv(12)
    cases = [{}, {"causal": True}, {"key_padding_mask": _mask(2, 12)}, {"clamp": True},
             {"theta": "exact"}, {"causal": True, "key_padding_mask": _mask(2, 12)}]  # fmt: skip
    for kw in cases:
        out = eala_attention(q, k, v, impl="quadratic", **kw)
        torch.testing.assert_close(out, eala_attention_quadratic(q, k, v, **kw))
    assert len(calls) == len(cases)  # the reference module is never the production path


# ----------------------------------------------------------------------------- θ rules, directly
# Each named constant used to be pinned by one test only (for "gauss" a statistical one with a
# 0.02 tolerance); these pin the rule functions and the formula every path applies them in.
THETA_OF_RULE = [("gauss", 1.0), ("paper", 2**-0.5 + 1e-8), (0.3, 0.3)]


@pytest.mark.parametrize(("rule", "expected"), THETA_OF_RULE)
def test_constant_theta_rules_ignore_the_moments(rule, expected):
    m2 = torch.tensor([0.0, 1e-6, 0.5, 3.0, 400.0], dtype=torch.float64)
    for n in (1.0, 7.0, 5000.0):
        th = theta_from_moments(m2, torch.tensor(n, dtype=torch.float64), rule, eps=1e-8)
        assert th.shape == m2.shape and th.dtype == m2.dtype
        torch.testing.assert_close(th, torch.full_like(m2, expected), rtol=1e-15, atol=0.0)


def test_paper_constant_is_one_over_sqrt2_and_eps_is_added_to_it():
    assert PAPER_THETA == pytest.approx(2**-0.5, rel=1e-15)
    m2, n = torch.ones(3, dtype=torch.float64), torch.tensor(10.0, dtype=torch.float64)
    th = theta_from_moments(m2, n, "paper", eps=0.25)
    torch.testing.assert_close(th, torch.full_like(m2, 2**-0.5 + 0.25), rtol=1e-15, atol=0.0)
    # gauss_hclamp is gauss (1) until the deficit would exceed log n
    assert torch.equal(theta_from_moments(m2, n, "gauss_hclamp"), torch.ones_like(m2))


@pytest.mark.parametrize(("rule", "theta"), THETA_OF_RULE)
@pytest.mark.parametrize("impl", ["quadratic", "short", "linear"])
def test_every_path_weights_values_by_one_plus_centred_score_over_theta(rule, theta, impl):
    # by hand: φ_ij = (1 + x_ij / θ) / n with x the scores minus their mean over the keys
    q, k, v = _qkv(5, b=1, h=1, d=3, dv=2, nq=4)
    s = q @ k.transpose(-1, -2)  # scale 1
    x = s - s.mean(-1, keepdim=True)
    expected = ((1 + x / theta) / 5) @ v
    if impl == "short":
        from linearcast.ops import eala_attention_short

        out = eala_attention_short(q, k, v, theta=rule, scale=1.0)
    else:
        out = eala_attention(q, k, v, theta=rule, scale=1.0, impl=impl)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_paper_first_order_entropy_is_log_n_minus_the_variance_per_row():
    # uncentred scores in a [2, 3, 7] batch: the estimate centres each row over the last axis
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 7, generator=g, dtype=torch.float64) * 0.3 + 5.0
    h = paper_first_order_entropy(x)
    assert h.shape == (2, 3)
    expected = math.log(7) - x.var(dim=-1, unbiased=False)
    torch.testing.assert_close(h, expected, rtol=1e-12, atol=1e-12)


def test_theta_star_is_the_square_root_of_m2_over_twice_the_deficit():
    m2 = torch.tensor([2.0, 0.5, 8.0], dtype=torch.float64)
    deficit = torch.tensor([1.0, 0.25, 1.0], dtype=torch.float64)
    torch.testing.assert_close(theta_star(m2, deficit), torch.tensor([1.0, 1.0, 2.0]).double())


def test_exact_theta_of_padded_or_causal_rows_ignores_the_unseen_keys():
    # padding a key, or hiding it causally, must give the θ of the keys actually seen
    q, k, _ = _qkv(12, b=1, h=2, offset=0.0, seed=5)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, [2, 7, 8]] = True
    padded = eala_stats(q, k, theta="exact", scale=0.4, key_padding_mask=mask).theta
    seen = eala_stats(q, k[:, :, ~mask[0]], theta="exact", scale=0.4).theta
    torch.testing.assert_close(padded, seen, rtol=1e-9, atol=1e-12)
    causal = eala_stats(q, k, theta="exact", scale=0.4, causal=True).theta
    for i in (4, 9):
        prefix = eala_stats(q[:, :, i : i + 1], k[:, :, : i + 1], theta="exact", scale=0.4)
        torch.testing.assert_close(causal[..., i], prefix.theta[..., 0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("rule", ["gauss", "exact"])
def test_stats_of_padded_and_causal_rows_are_those_of_the_keys_seen(rule):
    q, k, _ = _qkv(12, b=1, h=2, offset=0.0, seed=6)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, [0, 5, 11]] = True
    padded = eala_stats(q, k, theta=rule, scale=1.5, key_padding_mask=mask)
    seen = eala_stats(q, k[:, :, ~mask[0]], theta=rule, scale=1.5)
    if rule == "gauss":  # scale 1.5: some weights are negative (the exact θ never has any)
        assert (seen.neg_fraction > 0).any()
    for name, a, b in zip(padded._fields, padded, seen, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)
    causal = eala_stats(q, k, theta=rule, scale=1.5, causal=True)
    for i in (0, 6):  # row 0 sees one key
        prefix = eala_stats(q[:, :, i : i + 1], k[:, :, : i + 1], theta=rule, scale=1.5)
        for name, a, b in zip(causal._fields, causal, prefix, strict=True):
            torch.testing.assert_close(a[..., i], b[..., 0], rtol=1e-9, atol=1e-12, msg=name)
    with pytest.raises(ConfigError, match="as many queries as keys"):
        eala_stats(q[:, :, :5], k, causal=True)


def test_stats_of_half_inputs_are_computed_and_returned_in_float32():
    q, k, _ = _qkv(30, b=1, h=1, dtype=torch.float32, offset=0.0)
    ref = eala_stats(q, k, theta="exact", scale=0.5)
    assert ref.theta.dtype == torch.float32  # the exact θ comes back in the input's dtype
    half = eala_stats(q.half(), k.half(), theta="exact", scale=0.5)
    for name, a, b in zip(half._fields, half, ref, strict=True):
        assert a.dtype == torch.float32, name
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2, msg=name)


@pytest.mark.parametrize("scale", [None, 0.3])
def test_eala_weights_are_the_weights_of_the_reference_output(scale):
    q, k, v = _qkv(7)
    w = eala_weights(q, k, theta="gauss", scale=scale)
    ref = eala_attention_quadratic(q, k, v, theta="gauss", scale=scale)
    torch.testing.assert_close(w @ v, ref, rtol=1e-10, atol=1e-10)


def test_stats_of_a_query_that_sees_one_key_are_those_of_one_weight():
    q, k, _ = _qkv(6)
    st = eala_stats(q, k, theta="gauss", scale=0.5, causal=True)
    first = [f[..., 0] for f in (st.n, st.eala_entropy, st.max_entropy, st.neg_fraction)]
    torch.testing.assert_close(first[0], torch.ones_like(first[0]))
    for field in first[1:]:  # one weight of 1: no entropy, nothing negative
        torch.testing.assert_close(field, torch.zeros_like(field))
    torch.testing.assert_close(st.max_entropy[..., 3], torch.full_like(st.n[..., 3], math.log(4)))


def test_softmax_entropy_of_a_row_without_keys_is_zero():
    x = torch.randn(2, 5, dtype=torch.float64)
    mask = torch.ones(2, 5)
    mask[1] = 0
    h = softmax_entropy(x, mask)
    assert h[1].item() == 0.0 and h[0].item() > 0.0


def test_linear_reference_default_scale_and_eps_reach_theta():
    from linearcast.ops.eala_linear_ref import eala_attention_linear_autograd as ref_linear

    q, k, v = _qkv(30)
    d = q.shape[-1]
    torch.testing.assert_close(  # the defaults: paper θ, scale 1/sqrt(D)
        ref_linear(q, k, v),
        eala_attention_quadratic(q, k, v, theta="paper", scale=1 / math.sqrt(d)),
        rtol=1e-9,
        atol=1e-10,
    )
    for eps in (1e-8, 0.5):
        torch.testing.assert_close(
            ref_linear(q, k, v, theta="paper", eps=eps, scale=1.0),
            eala_attention_quadratic(q, k, v, theta="paper", eps=eps, scale=1.0),
            rtol=1e-9,
            atol=1e-10,
        )


def test_causal_path_refuses_other_lengths_and_exact_theta():
    q, k, v = _qkv(9, nq=4)
    with pytest.raises(ValueError, match=r"causal|length"):
        eala_attention_causal(q, k, v)
    q, k, v = _qkv(9)
    with pytest.raises((ValueError, ConfigError), match="exact"):
        eala_attention_causal(q, k, v, theta="exact")


def test_the_linear_path_refuses_exact_theta():
    from linearcast.ops.eala import eala_attention_linear

    q, k, v = _qkv(40)
    with pytest.raises((ValueError, ConfigError), match="exact"):
        eala_attention_linear(q, k, v, theta="exact")


@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_short_path_passes_eps_to_the_paper_theta(eps):
    from linearcast.ops import eala_attention_short

    q, k, v = _qkv(9)
    torch.testing.assert_close(
        eala_attention_short(q, k, v, theta="paper", eps=eps, scale=1.0),
        eala_attention_quadratic(q, k, v, theta="paper", eps=eps, scale=1.0),
        rtol=1e-10,
        atol=1e-10,
    )


@pytest.mark.parametrize("kwargs", [{"clamp": True}, {"theta": "exact"}])
def test_short_path_keeps_a_single_batch_and_head(kwargs):
    from linearcast.ops import eala_attention_short

    q, k, v = _qkv(9, b=1, h=1)
    out = eala_attention_short(q, k, v, scale=1.0, **kwargs)
    assert out.shape == (1, 1, 9, v.shape[-1])
    torch.testing.assert_close(out, eala_attention_quadratic(q, k, v, scale=1.0, **kwargs))


@pytest.mark.parametrize("option", ["causal", "padded"])
def test_short_path_clamp_with_unseen_keys_matches_the_reference(option):
    from linearcast.ops import eala_attention_short

    q, k, v = _qkv(9)
    mask = _mask(2, 9)
    mask[0] = True  # batch 0 sees no key: zeros, not NaN
    kwargs = {"causal": True} if option == "causal" else {"key_padding_mask": mask}
    ref = eala_attention_quadratic(q, k, v, theta="gauss", scale=1.0, clamp=True, **kwargs)
    out = eala_attention_short(q, k, v, theta="gauss", scale=1.0, clamp=True, **kwargs)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    assert torch.isfinite(out).all()
    if option == "padded":
        assert torch.equal(out[0], torch.zeros_like(out[0]))


def test_reference_keeps_half_dtypes_and_refuses_causal_queries_of_another_length():
    q, k, v = _qkv(9, dtype=torch.bfloat16)
    assert eala_attention_quadratic(q, k, v).dtype == torch.bfloat16
    assert eala_weights(q, k).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"causal|length"):
        eala_attention_quadratic(q[:, :, :4], k, v, causal=True)
