"""Every op's documented defaults: a call that leaves an option out equals one that spells it.

The kernels' own tests always pass their options, so a changed default (``eps``, ``theta``,
``chunk_size``, ``causal``, ...) would pass them all (found by ``make mutate``). Outputs must be
bit-identical: leaving an option out takes the same code path as spelling its default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from linearcast.ops import (
    choose_impl,
    eala_attention,
    eala_attention_causal,
    eala_attention_linear,
    eala_attention_quadratic,
    eala_attention_short,
    eala_stats,
    eala_weights,
    exact_theta,
    linear_attention,
    linear_attention_naive,
    linformer_attention,
    linformer_attention_naive,
    softmax_attention,
    softmax_attention_naive,
    theta_from_moments,
)

N = 100  # > 64: a causal pass crosses chunk boundaries, so chunk_size shows


def _qkv() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, N, 8, generator=g, dtype=torch.float64) for _ in range(3))
    return q, k + 1.0, v


EALA = {"theta": "paper", "scale": None, "key_padding_mask": None, "eps": 1e-8}
LINEAR = {"feature_map": "elu1", "normalize": True, "scale": None, "key_padding_mask": None}
CASES: list[tuple[str, Callable[..., Any], dict[str, Any], dict[str, Any]]] = [
    # (name, op, options passed to both calls, documented defaults spelled in the second call)
    ("eala", eala_attention, {},
     {**EALA, "impl": "auto", "causal": False, "clamp": False, "chunk_size": 64}),
    ("eala causal", eala_attention, {"causal": True}, {**EALA, "impl": "auto", "chunk_size": 64}),
    ("eala linear", eala_attention_linear, {}, EALA),
    ("eala short", eala_attention_short, {}, {"theta": "paper", "scale": None, "eps": 1e-8}),
    ("eala causal path", eala_attention_causal, {}, {**EALA, "chunk_size": 64}),
    ("eala quadratic", eala_attention_quadratic, {}, {**EALA, "causal": False, "clamp": False}),
    ("linear", linear_attention, {},
     {**LINEAR, "causal": False, "eps": 1e-6, "chunk_size": 64}),
    ("linear causal", linear_attention, {"causal": True},
     {**LINEAR, "eps": 1e-6, "chunk_size": 64}),
    ("linear naive", linear_attention_naive, {}, {**LINEAR, "causal": False, "eps": 1e-6}),
    ("softmax", softmax_attention, {},
     {"causal": False, "scale": None, "key_padding_mask": None, "impl": "sdpa"}),
    ("softmax naive", softmax_attention_naive, {},
     {"causal": False, "scale": None, "key_padding_mask": None}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "op", "given", "spelled"), CASES, ids=[c[0] for c in CASES])
def test_leaving_an_option_out_equals_spelling_its_default(
    name: str, op: Callable[..., Any], given: dict[str, Any], spelled: dict[str, Any]
) -> None:
    q, k, v = _qkv()
    assert torch.equal(op(q, k, v, **given), op(q, k, v, **given, **spelled))


def test_eala_weights_stats_and_theta_defaults() -> None:
    q, k, _ = _qkv()
    spelled = {**EALA, "causal": False}
    assert torch.equal(eala_weights(q, k), eala_weights(q, k, **spelled, clamp=False))
    a, b = eala_stats(q, k), eala_stats(q, k, **spelled)
    for field_a, field_b in zip(a, b, strict=True):
        assert torch.equal(field_a, field_b)
    m2, n = torch.rand(5, dtype=torch.float64), torch.tensor(9.0, dtype=torch.float64)
    assert torch.equal(theta_from_moments(m2, n, "paper"), theta_from_moments(m2, n, "paper", 1e-8))
    x = q @ k.transpose(-1, -2) * 0.3
    x = x - x.mean(-1, keepdim=True)
    nk = torch.full((1, 1, 1, 1), float(N), dtype=torch.float64)
    assert torch.equal(exact_theta(x, None, nk), exact_theta(x, None, nk, iters=80))


def test_linformer_uses_e_for_values_unless_given_f() -> None:
    q, k, v = _qkv()
    e = torch.randn(16, N, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for op in (linformer_attention, linformer_attention_naive):
        assert torch.equal(op(q, k, v, e), op(q, k, v, e, e, scale=None, key_padding_mask=None))
    assert torch.equal(
        linformer_attention(q, k, v, e), linformer_attention(q, k, v, e, causal=False)
    )


def test_auto_crossover_defaults_and_boundary() -> None:
    # quadratic up to N = 2·D inclusive; clamp and the exact θ need the quadratic path
    assert choose_impl(16, 8) == "quadratic" and choose_impl(17, 8) == "linear"
    assert choose_impl(1000, 8) == choose_impl(1000, 8, clamp=False, theta="paper") == "linear"
    assert choose_impl(1000, 8, clamp=True) == choose_impl(1000, 8, theta="exact") == "quadratic"


# ------------------------------------------------------ options the kernel tests leave at one value
def test_linformer_scale_head_shared_projection_and_errors_name_the_projection() -> None:
    from linearcast.errors import ConfigError

    q, k, v = _qkv()
    g = torch.Generator().manual_seed(2)
    e = torch.randn(16, N, generator=g, dtype=torch.float64)
    f = torch.randn(16, N, generator=g, dtype=torch.float64)
    by_hand = softmax_attention_naive(q, e @ k, f @ v, scale=0.3)  # softmax(τ q (Ek)ᵀ) F v
    for op in (linformer_attention, linformer_attention_naive):
        torch.testing.assert_close(op(q, k, v, e, f, scale=0.3), by_hand, rtol=1e-12, atol=1e-12)
        # [1, k, N]: one projection shared by the heads, as [k, N]
        torch.testing.assert_close(op(q, k, v, e[None], f[None]), op(q, k, v, e, f))
        with pytest.raises(ConfigError, match="projection E must be"):
            op(q, k, v, e[:, :-1], f)
        with pytest.raises(ConfigError, match="projection F must be"):
            op(q, k, v, e, f[:, :-1])


@pytest.mark.parametrize("op", [linear_attention, linear_attention_naive])
def test_linear_attention_scale_and_causal_length_check(op: Callable[..., Any]) -> None:
    from linearcast.errors import ConfigError

    q, k, v = _qkv()
    # the scale multiplies the queries before the feature map
    torch.testing.assert_close(op(q, k, v, scale=0.5), op(q * 0.5, k, v), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="as many queries as keys"):
        op(q[:, :, :10], k, v, causal=True)


def _meta_qkv(n: int = 20) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(torch.empty(2, 2, n, 8, device="meta") for _ in range(3))  # type: ignore[return-value]


META_CASES: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
    ("eala linear masked", eala_attention, {"impl": "linear", "key_padding_mask": True}),
    ("eala causal chunked", eala_attention, {"impl": "linear", "causal": True, "chunk_size": 8}),
    ("eala quadratic masked", eala_attention, {"impl": "quadratic", "key_padding_mask": True}),
    ("eala quadratic causal", eala_attention, {"impl": "quadratic", "causal": True}),
    ("eala short", eala_attention_short, {}),
    ("linear causal chunked", linear_attention, {"causal": True, "chunk_size": 8}),
    ("linear masked", linear_attention, {"key_padding_mask": True}),
    ("linear naive causal masked", linear_attention_naive,
     {"causal": True, "key_padding_mask": True}),
    ("softmax naive causal masked", softmax_attention_naive,
     {"causal": True, "key_padding_mask": True}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "op", "options"), META_CASES, ids=[c[0] for c in META_CASES])
def test_helper_tensors_follow_the_inputs_device(
    name: str, op: Callable[..., Any], options: dict[str, Any]
) -> None:
    # the meta device stands in for a GPU: a mask or index made on the CPU cannot meet it
    q, k, v = _meta_qkv()
    if options.get("key_padding_mask"):
        options = {
            **options,
            "key_padding_mask": torch.zeros(2, 20, dtype=torch.bool, device="meta"),
        }
    out = op(q, k, v, **options)
    assert out.device.type == "meta" and out.shape == (2, 2, 20, 8)


@pytest.mark.parametrize("op", [linear_attention, eala_attention_causal])
def test_causal_chunks_of_one_step_work_and_of_zero_are_refused(op: Callable[..., Any]) -> None:
    from linearcast.errors import ConfigError

    q, k, v = (t[:, :, :9] for t in _qkv())
    kw = {"causal": True} if op is linear_attention else {}
    torch.testing.assert_close(op(q, k, v, chunk_size=1, **kw), op(q, k, v, chunk_size=9, **kw))
    with pytest.raises(ConfigError, match="chunk_size must be >= 1; found 0"):
        op(q, k, v, chunk_size=0, **kw)
