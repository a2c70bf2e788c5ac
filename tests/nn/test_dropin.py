"""EALAMultiheadAttention (the drop-in for torch's MultiheadAttention) and swap_attention."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.nn import EALAMultiheadAttention, swap_attention

F64 = torch.float64
# the drop-in example lives on the docs front page (README links to it)
EXAMPLE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "index.md"


def _inputs(
    batch_first: bool, b: int = 3, lq: int = 7, lk: int = 7, e: int = 16, kdim: int = 16,
    vdim: int = 16, dtype: torch.dtype = F64,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    q, k, v = torch.randn(b, lq, e), torch.randn(b, lk, kdim), torch.randn(b, lk, vdim)
    if not batch_first:
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    return q.to(dtype), k.to(dtype), v.to(dtype)


def _padding(b: int, s: int) -> Tensor:
    """Bool ``[b, s]``: the last keys of batch rows 0 and 2 are padding; no row is all padding."""
    pad = torch.zeros(b, s, dtype=torch.bool)
    pad[0, -3:] = True
    pad[2, -1:] = True
    return pad


def _encoder(batch_first: bool, layers: int = 2, **kw: Any) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        16, 2, dim_feedforward=32, dropout=0.0, batch_first=batch_first, **kw
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=batch_first)


class _CountingForward:
    """Counts calls of EALAMultiheadAttention.forward without a hook (a hook would itself switch
    off torch's fused encoder path, which is what must be shown not to bypass the module)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = EALAMultiheadAttention.forward

        def forward(module: EALAMultiheadAttention, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(module, *args, **kwargs)

        monkeypatch.setattr(EALAMultiheadAttention, "forward", forward)


# --- softmax: the drop-in computes what torch computes ------------------------------------------


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("dims", [(None, None), (12, 10)], ids=["packed", "kdim_vdim"])
@pytest.mark.parametrize("padded", [False, True], ids=["", "key_padding"])
def test_softmax_drop_in_equals_torch_mha(
    batch_first: bool, dims: tuple[int | None, int | None], padded: bool
) -> None:
    torch.manual_seed(0)
    kdim, vdim = dims
    mha = nn.MultiheadAttention(16, 4, kdim=kdim, vdim=vdim, batch_first=batch_first, dtype=F64)
    with torch.no_grad():  # torch initialises the biases to zero; make them matter
        for p in (mha.in_proj_bias, mha.out_proj.bias):
            p.normal_()
    ours = EALAMultiheadAttention(
        16, 4, kdim=kdim, vdim=vdim, batch_first=batch_first, dtype=F64, kernel="softmax"
    )
    ours.load_state_dict(mha.state_dict())  # strict: torch's state dict loads unchanged
    mha.eval(), ours.eval()
    q, k, v = _inputs(batch_first, lk=9, kdim=kdim or 16, vdim=vdim or 16)
    pad = _padding(3, 9) if padded else None
    expected, _ = mha(q, k, v, key_padding_mask=pad, need_weights=False)
    got, weights = ours(q, k, v, key_padding_mask=pad, need_weights=False)
    assert weights is None and got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    if kdim is None:  # self-attention (query is key is value) takes the one-GEMM projection
        pad = _padding(3, 7) if padded else None
        torch.testing.assert_close(
            ours(q, q, q, key_padding_mask=pad)[0],
            mha(q, q, q, key_padding_mask=pad, need_weights=False)[0],
            rtol=0, atol=1e-6,
        )  # fmt: skip


@pytest.mark.parametrize("batch_first", [True, False])
def test_unbatched_inputs_match_torch(batch_first: bool) -> None:
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(16, 2, batch_first=batch_first, dtype=F64).eval()
    ours = EALAMultiheadAttention.from_torch(mha, kernel="softmax")
    x, mem = torch.randn(5, 16, dtype=F64), torch.randn(6, 16, dtype=F64)
    pad = torch.tensor([False, False, True, False, False, True])
    got, _ = ours(x, mem, mem, key_padding_mask=pad)
    assert got.shape == (5, 16)
    expected = mha(x, mem, mem, key_padding_mask=pad, need_weights=False)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "seq_first"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_swapped_encoder_equals_torch_and_runs_through_the_drop_in(
    batch_first: bool, causal: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In eval mode without grad torch would run its fused encoder (nested tensors for the
    padding); the swapped model must call the drop-in in every layer and still agree."""
    torch.manual_seed(2)
    original = _encoder(batch_first).to(F64).eval()
    swapped = swap_attention(copy.deepcopy(original), kernel="softmax")
    assert all(isinstance(layer.self_attn, EALAMultiheadAttention) for layer in swapped.layers)
    x = _inputs(batch_first)[0]
    pad = _padding(3, 7)
    mask = torch.ones(7, 7, dtype=torch.bool).triu(1) if causal else None  # bool like `pad`
    counter = _CountingForward(monkeypatch)
    with torch.no_grad():
        expected = original(x, mask=mask, src_key_padding_mask=pad)
        got = swapped(x, mask=mask, src_key_padding_mask=pad)
    assert counter.calls == 2
    keep = ~pad if batch_first else ~pad.T
    # torch's fused path returns zeros at padded query positions; the unpadded ones must agree
    torch.testing.assert_close(got[keep], expected[keep], rtol=0, atol=1e-6)
    with torch.no_grad():  # and without padding, everywhere
        torch.testing.assert_close(swapped(x, mask=mask), original(x, mask=mask), rtol=0, atol=1e-6)


def test_swapped_decoder_equals_torch() -> None:
    """Self-attention with the causal tgt_mask and cross-attention with a memory padding mask."""
    torch.manual_seed(3)
    layer = nn.TransformerDecoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True)
    original = nn.TransformerDecoder(layer, 2).to(F64).eval()
    swapped = swap_attention(copy.deepcopy(original), kernel="softmax")
    assert sum(isinstance(m, EALAMultiheadAttention) for m in swapped.modules()) == 4
    assert not any(isinstance(m, nn.MultiheadAttention) for m in swapped.modules())
    tgt, mem = torch.randn(3, 5, 16, dtype=F64), torch.randn(3, 9, 16, dtype=F64)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=F64)
    kw: dict[str, Any] = {"tgt_mask": causal, "memory_key_padding_mask": _padding(3, 9)}
    torch.testing.assert_close(swapped(tgt, mem, **kw), original(tgt, mem, **kw), rtol=0, atol=1e-6)


def test_softmax_dropout_is_torchs_attention_dropout() -> None:
    torch.manual_seed(4)
    mha = nn.MultiheadAttention(16, 4, dropout=0.5, batch_first=True)  # training mode
    ours = EALAMultiheadAttention.from_torch(mha, kernel="softmax")
    assert ours.training and ours.dropout == 0.5
    x = torch.randn(3, 7, 16)
    torch.manual_seed(5)
    expected = mha(x, x, x, need_weights=False)[0]
    torch.manual_seed(5)
    got = ours(x, x, x)[0]
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, ours.eval()(x, x, x)[0])  # the dropout did act


# --- EALA: runs, learns, honours the masks ------------------------------------------------------


def test_eala_drop_in_gradients_reach_every_parameter() -> None:
    torch.manual_seed(6)
    ours = EALAMultiheadAttention(16, 4, kdim=12, vdim=10, theta="gauss")
    q, k, v = _inputs(False, lk=9, kdim=12, vdim=10, dtype=torch.float32)
    q.requires_grad_(True)
    out, _ = ours(q, k, v, key_padding_mask=_padding(3, 9))
    assert out.shape == q.shape
    out.square().sum().backward()
    for name, p in [*ours.named_parameters(), ("query", q)]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_eala_swapped_encoder_trains() -> None:
    """Each target is the sequence mean of the first input channel: a position-wise model cannot
    do better than ~1/12 of its variance unexplained, so the loss has to fall through attention."""
    torch.manual_seed(7)
    model = nn.Sequential(
        nn.Linear(4, 16), swap_attention(_encoder(True, layers=1), theta="gauss"), nn.Linear(16, 1)
    )
    x = torch.randn(64, 12, 4, generator=torch.Generator().manual_seed(1))
    y = x[..., :1].mean(dim=1, keepdim=True).expand(-1, 12, -1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = (model(x) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    best_position_wise = y.var().item() * (1 - 1 / 12)
    assert losses[-1] < 0.1 * losses[0]
    assert losses[-1] < 0.25 * best_position_wise


@pytest.mark.parametrize("float_mask", [False, True], ids=["bool", "float_-inf"])
def test_eala_key_padding_is_honoured(float_mask: bool) -> None:
    """Changing padded positions of the input changes nothing at the unpadded positions, in a
    bare module (keys = values = the input) and through a swapped two-layer encoder."""
    torch.manual_seed(8)
    bare = EALAMultiheadAttention(16, 2, theta="gauss")  # batch_first=False: [L, B, E]
    encoder = swap_attention(_encoder(False), theta="gauss").eval()
    pad = _padding(3, 7)
    mask = torch.zeros(3, 7).masked_fill(pad, float("-inf")) if float_mask else pad
    x = torch.randn(7, 3, 16)
    noisy = torch.where(pad.T[..., None], torch.randn(7, 3, 16) * 10, x)
    other = x.clone()
    other[0, 0] += 1.0  # an unpadded position
    keep = ~pad.T

    for run in (lambda z: bare(z, z, z, key_padding_mask=mask)[0],
                lambda z: encoder(z, src_key_padding_mask=mask)):  # fmt: skip
        base = run(x)
        torch.testing.assert_close(run(noisy)[keep], base[keep])
        assert not torch.allclose(run(other)[keep], base[keep])  # the check can fail


def test_eala_causal_mode_from_the_causal_mask() -> None:
    torch.manual_seed(9)
    ours = EALAMultiheadAttention(16, 2, batch_first=True, theta="gauss")
    x = torch.randn(2, 8, 16)
    future = x.clone()
    future[:, 5:] = torch.randn(2, 3, 16)
    bool_mask = torch.ones(8, 8, dtype=torch.bool).triu(1)
    float_mask = nn.Transformer.generate_square_subsequent_mask(8)
    causal = ours(x, x, x, attn_mask=bool_mask)[0]
    changed = ours(future, future, future, attn_mask=bool_mask)[0]
    torch.testing.assert_close(changed[:, :5], causal[:, :5])  # the past does not see the future
    assert not torch.allclose(ours(x, x, x)[0][:, :5], causal[:, :5])  # non-causal sees ahead
    for mask in (bool_mask, float_mask, bool_mask.expand(2 * 2, 8, 8)):  # [L, L], [B·H, L, L]
        torch.testing.assert_close(ours(x, x, x, attn_mask=mask)[0], causal)
        torch.testing.assert_close(ours(x, x, x, attn_mask=mask, is_causal=True)[0], causal)
    always = EALAMultiheadAttention(16, 2, batch_first=True, theta="gauss", causal=True)
    always.load_state_dict(ours.state_dict())
    torch.testing.assert_close(always(x, x, x)[0], causal)


def test_eala_dropout_has_no_effect() -> None:
    torch.manual_seed(10)
    ours = EALAMultiheadAttention(16, 2, dropout=0.5)  # training mode
    x = torch.randn(7, 3, 16)
    torch.testing.assert_close(ours(x, x, x)[0], ours(x, x, x)[0])
    torch.testing.assert_close(ours(x, x, x)[0], ours.eval()(x, x, x)[0])


# --- weights, state dicts, what swap_attention carries over -------------------------------------


@pytest.mark.parametrize("dims", [(None, None), (12, 10)], ids=["packed", "kdim_vdim"])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_round_trip_with_torch(dims: tuple[int | None, int | None], bias: bool) -> None:
    torch.manual_seed(11)
    kdim, vdim = dims
    first = nn.MultiheadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim)
    ours = EALAMultiheadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim)
    ours.load_state_dict(first.state_dict())
    back = nn.MultiheadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim)
    back.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(first.state_dict())
    for name, t in first.state_dict().items():
        assert ours.state_dict()[name].shape == t.shape
        torch.testing.assert_close(back.state_dict()[name], t, rtol=0, atol=0)
    assert {n for n, _ in ours.named_parameters()} == {n for n, _ in first.named_parameters()}


def test_fresh_drop_in_is_initialised_like_torch() -> None:
    ours = EALAMultiheadAttention(64, 4, kdim=32)
    assert ours.in_proj_weight is None and ours.q_proj_weight is not None
    assert ours.in_proj_bias is not None and (ours.in_proj_bias == 0).all()
    assert (ours.out_proj.bias == 0).all()
    bound = (6 / (64 + 32)) ** 0.5  # xavier-uniform of k_proj_weight [64, 32]
    assert ours.k_proj_weight is not None
    w = ours.k_proj_weight
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound


def test_swap_keeps_sharing_frozen_weights_and_mode() -> None:
    shared = nn.MultiheadAttention(8, 2)
    model = nn.ModuleDict({"a": shared, "b": shared, "c": nn.MultiheadAttention(8, 2)}).eval()
    model["c"].in_proj_weight.requires_grad_(False)
    weights = model["c"].in_proj_weight.detach().clone()
    assert swap_attention(model, kernel="linear") is model
    assert model["a"] is model["b"] and isinstance(model["a"], EALAMultiheadAttention)
    c = model["c"]
    assert isinstance(c, EALAMultiheadAttention) and not c.training
    assert c.in_proj_weight is not None and not c.in_proj_weight.requires_grad
    assert c.in_proj_bias is not None and c.in_proj_bias.requires_grad
    torch.testing.assert_close(c.in_proj_weight, weights, rtol=0, atol=0)
    assert c.kernel_name == "linear"


def test_swap_to_linformer_copies_the_weights_and_keeps_its_projections() -> None:
    torch.manual_seed(12)
    original = _encoder(True)
    swapped = swap_attention(copy.deepcopy(original), kernel="linformer", seq_len=10, linformer_k=4)
    attn = swapped.layers[0].self_attn
    assert isinstance(attn, EALAMultiheadAttention)
    torch.testing.assert_close(attn.in_proj_weight, original.layers[0].self_attn.in_proj_weight)
    assert attn.kernel.e_proj.shape == (4, 10)
    assert swapped(torch.randn(2, 10, 16)).shape == (2, 10, 16)


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["add_bias_kv", "add_zero_attn"])
def test_refuses_extra_key_value_tokens(option: str) -> None:
    with pytest.raises(ConfigError, match=f"does not support {option}=True"):
        EALAMultiheadAttention(8, 2, **{option: True})


def test_swap_refusal_names_the_module_and_changes_nothing() -> None:
    class Forecaster(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(
                [nn.MultiheadAttention(8, 2), nn.MultiheadAttention(8, 2, add_bias_kv=True)]
            )

    model = Forecaster()
    with pytest.raises(ConfigError, match=r"cannot convert 'blocks\.1'.*add_bias_kv"):
        swap_attention(model)
    assert all(type(m) is nn.MultiheadAttention for m in model.blocks)
    with pytest.raises(ConfigError, match=r"'layers\.0\.self_attn'.*unknown attention kernel"):
        swap_attention(_encoder(True), kernel="performer")
    with pytest.raises(ConfigError, match=r"'layers\.0\.self_attn'.*unknown kernel option.*thta"):
        swap_attention(_encoder(True), thta="gauss")
    with pytest.raises(ConfigError, match="from_torch"):
        swap_attention(nn.MultiheadAttention(8, 2))


def test_forward_refusals_say_what_was_found() -> None:
    ours = EALAMultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8)
    window = torch.ones(5, 5, dtype=torch.bool).triu(2)  # not the causal mask
    with pytest.raises(ConfigError, match=re.escape("torch.bool attn_mask (5, 5) that is not")):
        ours(x, x, x, attn_mask=window)
    with pytest.raises(ConfigError, match=re.escape("found a torch.bool attn_mask (5, 5) that")):
        ours(x, x, x, attn_mask=window, is_causal=True)
    with pytest.raises(
        ConfigError, match=re.escape("float key_padding_mask with values other than 0 and -inf")
    ):
        ours(x, x, x, key_padding_mask=torch.full((2, 5), -1.0))
    with pytest.raises(ConfigError, match=re.escape("[B, S] = [2, 5]")):
        ours(x, x, x, key_padding_mask=torch.zeros(5, 2, dtype=torch.bool))
    with pytest.raises(ConfigError, match=re.escape("found (2, 5, 8), (2, 5, 6)")):
        ours(x, x[..., :6], x)
    always = EALAMultiheadAttention(8, 2, batch_first=True, causal=True)
    with pytest.raises(ConfigError, match="L=5 queries and S=4 keys"):
        always(x, x[:, :4], x[:, :4])
    linformer = EALAMultiheadAttention(8, 2, batch_first=True, kernel="linformer", seq_len=5)
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    with pytest.raises(ConfigError, match="'linformer' has no causal mode"):
        linformer(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)


# --- the documented example ---------------------------------------------------------------


def test_readme_example_runs() -> None:
    text = EXAMPLE_PAGE.read_text(encoding="utf-8")
    section = text.split("## EALA in your own model", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None, "docs/index.md 'EALA in your own model' has no python block"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)
    assert isinstance(scope["model"].layers[0].self_attn, EALAMultiheadAttention)
    assert isinstance(scope["attn"], EALAMultiheadAttention)
    x = torch.randn(2, 12, 64)
    assert scope["model"](x).shape == scope["attn"](x, x, x)[0].shape == x.shape
