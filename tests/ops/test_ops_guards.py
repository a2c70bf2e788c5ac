"""Guards of the fast kernels that mutation testing found unchecked: each shape check on its
own, the θ-rule checks and their messages, the options ``impl="auto"`` must pass on, the
causal path's scale and eps, and the meta device (how the FLOP counter runs the models)."""

from __future__ import annotations

import logging

import pytest
import torch

import linearcast.ops.eala as eala_mod
from linearcast.errors import ConfigError
from linearcast.ops import eala_attention, eala_attention_quadratic
from linearcast.ops._common import check_qkv
from linearcast.ops.eala_theta import check_theta_rule


def _qkv(n, *, nq=None, d=4, dv=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    nq = n if nq is None else nq
    q = torch.randn(2, 2, nq, d, generator=g, dtype=torch.float64)
    k = torch.randn(2, 2, n, d, generator=g, dtype=torch.float64) + 2.0
    v = torch.randn(2, 2, n, dv, generator=g, dtype=torch.float64)
    return q, k, v


def _e(*shape):
    return torch.empty(*shape)


@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 3, 5), (2, 3, 7, 4), (2, 3, 7, 6)),  # q alone of the wrong rank
        ((2, 3, 5, 4), (2, 3, 7), (2, 3, 7, 6)),  # k alone
        ((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7)),  # v alone
    ],
    ids=["q", "k", "v"],
)
def test_each_tensor_of_the_wrong_rank_is_refused_alone(shapes):
    with pytest.raises(ConfigError, match="rank 4"):
        check_qkv(*(_e(*s) for s in shapes))


@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 1, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6)),  # heads of q and k differ
        ((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 8, 6)),  # keys and values of different lengths
        ((2, 3, 5, 4), (2, 3, 7, 5), (2, 3, 7, 6)),  # q and k of different widths
    ],
    ids=["heads", "lengths", "width"],
)
def test_each_shape_mismatch_is_refused_alone(shapes):
    with pytest.raises(ConfigError, match=r"q \[B, H, Nq, D\], k \[B, H, N, D\]"):
        check_qkv(*(_e(*s) for s in shapes))
    check_qkv(_e(2, 3, 5, 4), _e(2, 3, 7, 4), _e(2, 3, 7, 6))  # and the right shapes pass


@pytest.mark.parametrize("rule", [0.0, -1.0, float("inf"), float("nan")])
def test_a_constant_theta_must_be_positive_and_finite(rule):
    with pytest.raises(ConfigError, match="positive finite"):
        check_theta_rule(rule, allow_exact=True)
    check_theta_rule(1e-3, allow_exact=True)


def test_exact_theta_is_refused_on_a_linear_path_with_the_fix_named():
    check_theta_rule("exact", allow_exact=True)
    with pytest.raises(ConfigError) as err:
        check_theta_rule("exact", allow_exact=False)
    assert str(err.value) == (
        "theta rule must be one of ('paper', 'gauss', 'gauss_hclamp') or a float on a "
        "linear-time path ('exact' needs impl='quadratic'); found 'exact'"
    )
    with pytest.raises(ConfigError) as err:
        check_theta_rule("nope", allow_exact=True)
    assert str(err.value).endswith("or a float; found 'nope'")  # no linear-path hint here
    q, k, v = _qkv(20)
    with pytest.raises(ConfigError, match=r"'exact' needs impl='quadratic'"):
        eala_attention(q, k, v, theta="exact", impl="linear")


@pytest.mark.parametrize("option", [{"clamp": True}, {"theta": "exact"}])
def test_auto_passes_the_options_that_need_the_quadratic_path_on(option):
    q, k, v = _qkv(40)  # N = 40 > 2·D: auto would take the linear path without the option
    assert eala_mod.choose_impl(40, 4) == "linear"
    out = eala_attention(q, k, v, scale=2.0, **option)
    ref = eala_attention_quadratic(q, k, v, scale=2.0, **option)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(out, eala_attention_quadratic(q, k, v, scale=2.0))


def test_auto_announces_each_key_length_once(caplog, monkeypatch):
    monkeypatch.setattr(eala_mod, "_announced", set())
    caplog.set_level(logging.INFO, logger="linearcast.ops.eala")
    for n in (20, 30, 20):  # same D and path, two lengths
        eala_attention(*_qkv(n))
    msgs = [r.getMessage() for r in caplog.records if "chose" in r.getMessage()]
    assert len(msgs) == 2 and "N=20" in msgs[0] and "N=30" in msgs[1]


@pytest.mark.parametrize("impl", ["auto", "linear"])
def test_causal_linear_path_takes_the_given_scale_and_eps(impl):
    q, k, v = _qkv(20)  # auto: N = 20 > 2·D is the causal linear path
    for kw in ({"scale": 2.0, "theta": "gauss_hclamp"}, {"eps": 0.5, "theta": "paper"}):
        out = eala_attention(q, k, v, causal=True, impl=impl, **kw)
        ref = eala_attention_quadratic(q, k, v, causal=True, **kw)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        assert not torch.allclose(out, eala_attention_quadratic(q, k, v, causal=True))


@pytest.mark.parametrize(
    "fn,kw",
    [
        (eala_attention, {"impl": "linear"}),
        (eala_attention, {"impl": "quadratic"}),
        (eala_attention, {"impl": "quadratic", "clamp": True}),
        (eala_attention, {"causal": True}),
        (eala_attention_quadratic, {}),
        (eala_attention_quadratic, {"causal": True}),
    ],
    ids=["linear", "short", "short-clamp", "causal", "reference", "reference-causal"],
)
def test_kernels_run_forward_and_backward_on_the_meta_device(fn, kw):
    # the FLOP counter of the benchmarks runs the models on meta tensors: a helper tensor made
    # on the default device instead of the inputs' breaks that (and CUDA the same way)
    q, k, v = (torch.empty(2, 2, 40, d, device="meta", requires_grad=True) for d in (4, 4, 3))
    out = fn(q, k, v, **kw)
    out.sum().backward()
    assert out.device.type == "meta" and out.shape == (2, 2, 40, 3)
    assert all(t.grad is not None and t.grad.device.type == "meta" for t in (q, k, v))
