"""EALAMultiheadAttention against torch.nn.MultiheadAttention, weights shared: the returned
attention weights (torch's default need_weights=True), every mask torch takes, is_causal, and
where the drop-in deliberately differs (a query that sees no key)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.nn import EALAMultiheadAttention

F32, F64 = torch.float32, torch.float64
ATOL = {F32: 1e-6, F64: 1e-12}
B, H, E, L, S = 3, 4, 16, 5, 7
MaskMaker = Callable[[torch.Generator], dict[str, Tensor]]


def _pair(
    dtype: torch.dtype, batch_first: bool, **kw: Any
) -> tuple[nn.MultiheadAttention, EALAMultiheadAttention]:
    """torch's module with non-zero biases, and the softmax drop-in with its weights."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, batch_first=batch_first, dtype=dtype, **kw).eval()
    with torch.no_grad():  # torch initialises the biases to zero; make them matter
        for p in (mha.in_proj_bias, mha.out_proj.bias):
            p.normal_()
    return mha, EALAMultiheadAttention.from_torch(mha, kernel="softmax")


def _qkv(dtype: torch.dtype, batch_first: bool, lq: int = L, lk: int = S) -> list[Tensor]:
    g = torch.Generator().manual_seed(1)
    shapes = [(B, lq, E), (B, lk, E), (B, lk, E)]
    xs = [torch.randn(*s, generator=g, dtype=dtype) for s in shapes]
    return xs if batch_first else [x.transpose(0, 1) for x in xs]


def _blocked(g: torch.Generator, *shape: int) -> Tensor:
    """A random bool mask (True = blocked) that leaves key 0 visible, so no row is all blocked."""
    m = torch.rand(*shape, generator=g) < 0.4
    m[..., 0] = False
    return m


def _as_float(blocked: Tensor, g: torch.Generator, dtype: torch.dtype) -> Tensor:
    """``-inf`` where blocked, arbitrary finite values (torch adds them to the scores) elsewhere."""
    values = torch.randn(blocked.shape, generator=g, dtype=dtype)
    return values.masked_fill(blocked, float("-inf"))


MASKS: dict[str, MaskMaker] = {
    "none": lambda g: {},
    "2d_bool": lambda g: {"attn_mask": _blocked(g, L, S)},
    "2d_float": lambda g: {"attn_mask": _as_float(_blocked(g, L, S), g, F64)},
    "3d_bool": lambda g: {"attn_mask": _blocked(g, B * H, L, S)},
    "3d_float": lambda g: {"attn_mask": _as_float(_blocked(g, B * H, L, S), g, F64)},
    "pad_bool": lambda g: {"key_padding_mask": _blocked(g, B, S)},
    "pad_float": lambda g: {"key_padding_mask": _as_float(_blocked(g, B, S), g, F64)},
    "3d_and_pad_bool": lambda g: {
        "attn_mask": _blocked(g, B * H, L, S),
        "key_padding_mask": _blocked(g, B, S),
    },
    "2d_and_pad_float": lambda g: {
        "attn_mask": _as_float(_blocked(g, L, S), g, F64),
        "key_padding_mask": _as_float(_blocked(g, B, S), g, F64),
    },
}


def _masks(name: str, dtype: torch.dtype) -> dict[str, Tensor]:
    made = MASKS[name](torch.Generator().manual_seed(2))
    return {k: m.to(dtype) if m.is_floating_point() else m for k, m in made.items()}


def _assert_same(got: tuple[Tensor, Tensor | None], expected: tuple[Tensor, Tensor | None],
                 dtype: torch.dtype) -> None:  # fmt: skip
    assert got[0].shape == expected[0].shape
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=ATOL[dtype])
    if expected[1] is None:
        assert got[1] is None
        return
    assert got[1] is not None and got[1].shape == expected[1].shape
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=ATOL[dtype])


CALLS = [
    {},  # torch's defaults: need_weights=True, average_attn_weights=True
    {"average_attn_weights": False},
    {"need_weights": False},
]


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
@pytest.mark.parametrize("masks", list(MASKS))
def test_softmax_outputs_and_weights_equal_torch(
    dtype: torch.dtype, batch_first: bool, masks: str
) -> None:
    mha, ours = _pair(dtype, batch_first)
    q, k, v = _qkv(dtype, batch_first)
    kw = _masks(masks, dtype)
    for call in CALLS:
        _assert_same(ours(q, k, v, **kw, **call), mha(q, k, v, **kw, **call), dtype)


def test_default_call_returns_the_weights_like_torch() -> None:
    """The issue's reproduction: ``out, w = attn(q, k, v)`` gets weights, not None, for the
    default kernel (EALA) as for softmax, in torch's shape."""
    q, k, v = _qkv(F32, True)
    for kernel in ("eala", "softmax"):
        out, w = EALAMultiheadAttention(E, H, batch_first=True, kernel=kernel)(q, k, v)
        assert out.shape == (B, L, E)
        assert w is not None and w.shape == (B, L, S)
        torch.testing.assert_close(w.sum(dim=-1), torch.ones(B, L))


@pytest.mark.parametrize("masks", ["none", "2d_bool", "3d_float", "pad_bool"])
def test_unbatched_outputs_and_weights_equal_torch(masks: str) -> None:
    mha, ours = _pair(F64, batch_first=True)
    q, k, v = (x[0] for x in _qkv(F64, True))  # [L, E], [S, E], [S, E]
    kw = _masks(masks, F64)
    if "attn_mask" in kw and kw["attn_mask"].dim() == 3:
        kw["attn_mask"] = kw["attn_mask"][:H]  # [H, L, S] for one sequence
    if "key_padding_mask" in kw:
        kw["key_padding_mask"] = kw["key_padding_mask"][0]  # [S]
    for call in CALLS:
        _assert_same(ours(q, k, v, **kw, **call), mha(q, k, v, **kw, **call), F64)
    per_head = ours(q, k, v, **kw, average_attn_weights=False)[1]
    assert per_head is not None and per_head.shape == (H, L, S)


@pytest.mark.parametrize("padded", [False, True], ids=["", "key_padding"])
def test_equals_torch_on_its_fast_path(padded: bool) -> None:
    """Self-attention, batch_first, eval, no grad, even heads: torch runs its fused kernel."""
    mha, ours = _pair(F32, batch_first=True)
    x = _qkv(F32, True, lq=S)[1]
    kw = {"key_padding_mask": _blocked(torch.Generator().manual_seed(3), B, S)} if padded else {}
    with torch.no_grad():
        for call in CALLS:
            _assert_same(ours(x, x, x, **kw, **call), mha(x, x, x, **kw, **call), F32)


@pytest.mark.parametrize("float_mask", [False, True], ids=["bool", "float"])
def test_is_causal_with_the_causal_mask_equals_torch(float_mask: bool) -> None:
    mha, ours = _pair(F64, batch_first=True)
    x = _qkv(F64, True, lq=S)[1]
    mask = (
        nn.Transformer.generate_square_subsequent_mask(S, dtype=F64)
        if float_mask
        else torch.ones(S, S, dtype=torch.bool).triu(1)
    )
    for call in CALLS:
        expected = mha(x, x, x, attn_mask=mask, is_causal=True, **call)
        _assert_same(ours(x, x, x, attn_mask=mask, is_causal=True, **call), expected, F64)
    w = ours(x, x, x, attn_mask=mask, is_causal=True, average_attn_weights=False)[1]
    assert w is not None and (w[..., mask if not float_mask else mask.isinf()] == 0).all()


@pytest.mark.parametrize("kernel", ["softmax", "eala", "linear"])
def test_is_causal_without_attn_mask_is_refused_as_in_torch(kernel: str) -> None:
    mha, _ = _pair(F32, batch_first=True)
    ours = EALAMultiheadAttention(E, H, batch_first=True, kernel=kernel)
    x = _qkv(F32, True, lq=S)[1]
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        mha(x, x, x, is_causal=True, need_weights=False)
    with pytest.raises(ConfigError, match=r"found attn_mask=None; pass attn_mask="):
        ours(x, x, x, is_causal=True, need_weights=False)


def test_fully_blocked_query_gets_zero_weights_where_torch_gives_nan() -> None:
    """Documented difference: torch returns NaN for a query that sees no key on its weights
    path; the drop-in gives it weights 0 and attention output 0 (so the module returns
    out_proj's bias there) and agrees with torch everywhere else."""
    mha, ours = _pair(F64, batch_first=True)
    q, k, v = _qkv(F64, True)
    pad = torch.zeros(B, S, dtype=torch.bool)
    pad[1] = True  # sequence 1: every key padded
    attn_mask = torch.zeros(L, S, dtype=torch.bool)
    attn_mask[2] = True  # query 2 of every sequence sees no key
    dead = torch.zeros(B, L, dtype=torch.bool)
    dead[1], dead[:, 2] = True, True
    for call in CALLS:
        out, w = ours(q, k, v, key_padding_mask=pad, attn_mask=attn_mask, **call)
        t_out, t_w = mha(q, k, v, key_padding_mask=pad, attn_mask=attn_mask, **call)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[dead], mha.out_proj.bias.expand(int(dead.sum()), E))
        torch.testing.assert_close(out[~dead], t_out[~dead], rtol=0, atol=1e-12)
        if t_w is not None:
            assert w is not None
            if t_w.dim() == 4:  # per head: (B, L, H, S), to index by (B, L)
                w, t_w = w.transpose(1, 2), t_w.transpose(1, 2)
            assert t_w[dead].isnan().all()
            assert (w[dead] == 0).all()
            torch.testing.assert_close(w[~dead], t_w[~dead], rtol=0, atol=1e-12)


def test_softmax_dropout_on_returned_weights_is_torchs() -> None:
    torch.manual_seed(4)
    mha = nn.MultiheadAttention(E, H, dropout=0.5, batch_first=True)  # training mode
    ours = EALAMultiheadAttention.from_torch(mha, kernel="softmax")
    q, k, v = _qkv(F32, True)
    pad = _blocked(torch.Generator().manual_seed(5), B, S)
    for call in CALLS[:2]:
        torch.manual_seed(6)
        expected = mha(q, k, v, key_padding_mask=pad, **call)
        torch.manual_seed(6)
        got = ours(q, k, v, key_padding_mask=pad, **call)
        _assert_same(got, expected, F32)
    assert got[1] is not None and (got[1] == 0).any()  # the dropout did act on the weights


_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "25"))


@pytest.mark.fuzz
def test_softmax_equals_torch_on_random_shapes_and_masks() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=_EXAMPLES, deadline=None, derandomize=_EXAMPLES <= 40)
    @hypothesis.given(
        b=st.integers(1, 3), h=st.sampled_from([1, 2, 4]), lq=st.integers(1, 6),
        lk=st.integers(1, 6), batch_first=st.booleans(), kinds=st.sampled_from(list(MASKS)),
        need_weights=st.booleans(), average=st.booleans(), seed=st.integers(0, 2**16),
    )  # fmt: skip
    def check(b: int, h: int, lq: int, lk: int, batch_first: bool, kinds: str,
              need_weights: bool, average: bool, seed: int) -> None:  # fmt: skip
        torch.manual_seed(seed)
        mha = nn.MultiheadAttention(8, h, batch_first=batch_first, dtype=F64).eval()
        ours = EALAMultiheadAttention.from_torch(mha, kernel="softmax")
        g = torch.Generator().manual_seed(seed)
        xs = [torch.randn(b, n, 8, generator=g, dtype=F64) for n in (lq, lk, lk)]
        q, k, v = xs if batch_first else [x.transpose(0, 1) for x in xs]
        kw: dict[str, Tensor] = {}
        if "2d" in kinds or "3d" in kinds:
            shape = (lq, lk) if "2d" in kinds else (b * h, lq, lk)
            kw["attn_mask"] = _blocked(g, *shape)
        if "pad" in kinds:
            kw["key_padding_mask"] = _blocked(g, b, lk)
        if "float" in kinds:
            kw = {name: _as_float(m, g, F64) for name, m in kw.items()}
        call = {"need_weights": need_weights, "average_attn_weights": average}
        _assert_same(ours(q, k, v, **kw, **call), mha(q, k, v, **kw, **call), F64)

    check()


@pytest.mark.parametrize("kernel", ["softmax", "softmax_naive", "eala"])
@pytest.mark.parametrize("need_weights", [True, False], ids=["weights", "no_weights"])
def test_fully_padded_sequence_leaves_the_gradients_of_the_others_alone(
    kernel: str, need_weights: bool
) -> None:
    """The padded sequence's input gets gradient 0 and the other's gradient is what it gets on
    its own (softmax over an all ``-inf`` row is NaN, and NaN·0 in backward spreads)."""
    torch.manual_seed(7)
    attn = EALAMultiheadAttention(E, H, batch_first=True, dtype=F64, kernel=kernel)
    x = _qkv(F64, True, lq=S)[1][:2].requires_grad_(True)
    pad = torch.zeros(2, S, dtype=torch.bool)
    pad[1] = True
    attn(x, x, x, key_padding_mask=pad, need_weights=need_weights)[0].sum().backward()
    assert x.grad is not None and (x.grad[1] == 0).all()
    alone = x[:1].detach().requires_grad_(True)
    attn(alone, alone, alone, key_padding_mask=pad[:1], need_weights=need_weights)[
        0
    ].sum().backward()
    torch.testing.assert_close(x.grad[:1], alone.grad, rtol=0, atol=1e-12)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in attn.parameters())
