"""The attention weights EALAMultiheadAttention returns for the non-softmax kernels: EALA's
(quadratic form) where they can be formed, a clear refusal where they cannot."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.nn import EALAMultiheadAttention

F64 = torch.float64
B, H, E, N = 2, 4, 16, 12  # N > 2·(E/H): impl="auto" takes EALA's linear path


def _x(n: int = N) -> Tensor:
    return torch.randn(B, n, E, generator=torch.Generator().manual_seed(0), dtype=F64)


def _by_hand(attn: EALAMultiheadAttention, x: Tensor, seen: Tensor) -> Tensor:
    """EALA's weights with θ = 1: ``(1 + x_j)/n`` over the ``n`` keys a query sees, ``x_j`` its
    scaled score centred over them; ``[B, H, L, S]``, from the module's own projections."""
    assert attn.in_proj_weight is not None and attn.in_proj_bias is not None
    q, k, _ = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
    q, k = (t.unflatten(-1, (H, E // H)).transpose(1, 2) for t in (q, k))
    s = q @ k.transpose(-1, -2) / math.sqrt(E // H)
    m = seen.to(F64)
    n = m.sum(-1, keepdim=True)
    centred = s - (s * m).sum(-1, keepdim=True) / n
    return (1 + centred) / n * m


@pytest.mark.parametrize("masks", ["none", "padding", "causal", "padding+causal_3d"])
def test_eala_weights_are_its_quadratic_form_and_give_its_output(masks: str) -> None:
    torch.manual_seed(1)
    attn = EALAMultiheadAttention(E, H, batch_first=True, dtype=F64, theta="gauss").eval()
    x = _x()
    seen = torch.ones(B, 1, N, N, dtype=torch.bool)
    kw: dict[str, Tensor] = {}
    if "padding" in masks:
        kw["key_padding_mask"] = torch.zeros(B, N, dtype=torch.bool)
        kw["key_padding_mask"][0, -4:] = True
        seen = seen & ~kw["key_padding_mask"][:, None, None, :]
    if "causal" in masks:
        above = torch.ones(N, N, dtype=torch.bool).triu(1)
        kw["attn_mask"] = above.expand(B * H, N, N) if "3d" in masks else above
        seen = seen & ~above
    out, w = attn(x, x, x, average_attn_weights=False, **kw)
    assert w is not None and w.shape == (B, H, N, N)
    torch.testing.assert_close(w, _by_hand(attn, x, seen), rtol=0, atol=1e-12)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, N, dtype=F64), rtol=0, atol=1e-12)
    assert (w < 0).any()  # EALA's weights are affine, not convex: they can be negative
    fast = attn(x, x, x, need_weights=False, **kw)[0]  # the linear-time path
    torch.testing.assert_close(out, fast, rtol=0, atol=1e-10)
    averaged = attn(x, x, x, **kw)[1]
    assert averaged is not None
    torch.testing.assert_close(averaged, w.mean(dim=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("options", [{"theta": "learned"}, {"clamp": True}, {"theta": "paper"}])
def test_eala_weights_agree_with_the_output_for_every_option(options: dict[str, Any]) -> None:
    """``out`` with weights is ``Φ v`` through out_proj; without them the kernel's own output."""
    torch.manual_seed(2)
    attn = EALAMultiheadAttention(E, H, batch_first=True, dtype=F64, **options).eval()
    if options.get("theta") == "learned":
        with torch.no_grad():
            attn.kernel.log_theta.normal_()  # distinct θ per head, away from 1
    x = _x()
    pad = torch.zeros(B, N, dtype=torch.bool)
    pad[1, :3] = True
    out, w = attn(x, x, x, key_padding_mask=pad, average_attn_weights=False)
    assert w is not None
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, N, dtype=F64), rtol=0, atol=1e-12)
    assert (w[1, ..., :3] == 0).all()
    if options.get("clamp"):
        assert (w >= 0).all()
    fast = attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]
    torch.testing.assert_close(out, fast, rtol=0, atol=1e-10)


def test_eala_fully_padded_sequence_gets_zero_weights_and_the_bias() -> None:
    attn = EALAMultiheadAttention(E, H, batch_first=True, dtype=F64, theta="gauss").eval()
    with torch.no_grad():
        attn.out_proj.bias.normal_()
    x = _x()
    pad = torch.zeros(B, N, dtype=torch.bool)
    pad[1] = True
    for need_weights in (True, False):
        out, w = attn(x, x, x, key_padding_mask=pad, need_weights=need_weights)
        torch.testing.assert_close(out[1], attn.out_proj.bias.expand(N, E))
        assert w is None or (w[1] == 0).all()


LINEAR_TIME = [
    ("linear", {}),
    ("linformer", {"seq_len": N}),
    ("eala", {"impl": "linear"}),
]


@pytest.mark.parametrize(("kernel", "options"), LINEAR_TIME, ids=[k for k, _ in LINEAR_TIME])
def test_kernels_that_never_form_weights_refuse_torchs_default(
    kernel: str, options: dict[str, Any]
) -> None:
    """``out, w = attn(q, k, v)`` must not go on with ``w = None``: it raises, naming the fix."""
    attn = EALAMultiheadAttention(E, H, batch_first=True, kernel=kernel, **options)
    x = _x().float()
    with pytest.raises(ConfigError, match=re.escape("found need_weights=True")) as err:
        attn(x, x, x)
    assert f"kernel '{kernel}'" in str(err.value) and "pass need_weights=False" in str(err.value)
    out, w = attn(x, x, x, need_weights=False)
    assert out.shape == x.shape and w is None


@pytest.mark.parametrize("kernel", ["eala", "linear"])
def test_masks_other_kernels_cannot_apply_are_refused_naming_softmax(kernel: str) -> None:
    attn = EALAMultiheadAttention(E, H, batch_first=True, kernel=kernel)
    x = _x().float()
    window = torch.ones(N, N, dtype=torch.bool).triu(2)  # not the causal mask
    for mask in (window, window.expand(B * H, N, N)):
        with pytest.raises(ConfigError, match="pass kernel='softmax' for arbitrary masks") as err:
            attn(x, x, x, attn_mask=mask, need_weights=False)
        assert "form" not in str(err.value)  # it is about masks, not weights
    # the softmax drop-in applies the same masks (its parity with torch: test_dropin_torch_parity)
    softmax = EALAMultiheadAttention(E, H, batch_first=True, kernel="softmax")
    for mask in (window, window.expand(B * H, N, N)):
        w = softmax(x, x, x, attn_mask=mask, average_attn_weights=False)[1]
        assert w is not None and (w[..., window.expand(B, H, N, N)] == 0).all()


def test_mask_shapes_and_dtypes_torch_refuses_are_refused() -> None:
    attn = EALAMultiheadAttention(E, H, batch_first=True, kernel="softmax")
    x = _x().float()
    with pytest.raises(ConfigError, match=re.escape("or [B·H, L, S] = [8, 12, 12] (after")):
        attn(x, x, x, attn_mask=torch.zeros(B, N, N, dtype=torch.bool))  # [B, L, S]: not torch's
    with pytest.raises(ConfigError, match=re.escape("[B, S] = [2, 12]")):
        attn(x, x, x, key_padding_mask=torch.zeros(N, B, dtype=torch.bool))
    with pytest.raises(ConfigError, match=r"must be bool .* or float .*; found torch.int64"):
        attn(x, x, x, attn_mask=torch.zeros(N, N, dtype=torch.long))
