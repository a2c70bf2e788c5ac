"""MultiHeadAttention, its kernel table and the post-LN block."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from linearcast.errors import ConfigError
from linearcast.nn import KERNELS, MultiHeadAttention, SelfAttentionLayer
from linearcast.ops import linformer_attention

F64 = torch.float64
EQUIVARIANT = ["softmax", "softmax_naive", "eala", "linear"]


def _official_formulation(mha: MultiHeadAttention, x: Tensor) -> Tensor:
    """STAEformer's AttentionLayer arithmetic, written out: heads split along channels and
    stacked on the batch axis, scores materialised, softmax, heads concatenated back."""
    hd = mha.head_dim
    q, k, v = mha.q_proj(x), mha.k_proj(x), mha.v_proj(x)
    qh = torch.cat(torch.split(q, hd, dim=-1), dim=0)  # (H·B, ..., L, hd)
    kh = torch.cat(torch.split(k, hd, dim=-1), dim=0)
    vh = torch.cat(torch.split(v, hd, dim=-1), dim=0)
    p = torch.softmax(qh @ kh.transpose(-1, -2) / hd**0.5, dim=-1)
    out = torch.cat(torch.split(p @ vh, x.shape[0], dim=0), dim=-1)  # (B, ..., L, D)
    return mha.out_proj(out)


@pytest.mark.parametrize("kernel", ["softmax", "softmax_naive"])
def test_softmax_matches_the_official_formulation(kernel: str) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(24, 4, kernel=kernel).to(F64)
    x = torch.randn(2, 3, 7, 24, dtype=F64)  # leading axes (2, 3) are folded into the batch
    torch.testing.assert_close(mha(x), _official_formulation(mha, x))


def test_eala_quadratic_and_linear_paths_agree_values_and_grads() -> None:
    torch.manual_seed(1)
    outs, grads = [], []
    for impl in ("quadratic", "linear"):
        torch.manual_seed(1)
        mha = MultiHeadAttention(16, 2, kernel="eala", theta="gauss_hclamp", impl=impl).to(F64)
        x = torch.randn(2, 3, 40, 16, dtype=F64, requires_grad=True)
        y = mha(x)
        y.square().sum().backward()
        assert x.grad is not None
        outs.append(y.detach())
        grads.append(x.grad)
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_every_kernel_runs_with_leading_axes(kernel: str) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, 3, kernel=kernel, seq_len=9, linformer_k=4)
    x = torch.randn(2, 5, 9, 12, requires_grad=True)
    y = mha(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # folding leading axes into the batch is the same as looping over them
    torch.testing.assert_close(y[1, 3], mha(x[1, 3]), rtol=1e-5, atol=1e-5)


def test_unknown_kernel_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known kernels: eala, linear, linformer"):
        MultiHeadAttention(8, 2, kernel="performer")


def test_heads_must_divide_model_dim() -> None:
    with pytest.raises(ConfigError, match="num_heads must divide"):
        MultiHeadAttention(10, 3)


def test_linformer_parameters_init_and_fixed_length() -> None:
    with pytest.raises(ConfigError, match="seq_len"):
        MultiHeadAttention(8, 2, kernel="linformer")
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, kernel="linformer", seq_len=50, linformer_k=16)
    kern = mha.kernel
    assert kern.e_proj.shape == (16, 50) and kern.f_proj.shape == (16, 50)
    bound = (1 / math.sqrt(2)) * math.sqrt(6 / (16 + 50))  # xavier-uniform, gain 1/sqrt(2)
    assert kern.e_proj.abs().max() <= bound
    assert kern.e_proj.abs().max() > 0.9 * bound
    shared = MultiHeadAttention(
        8, 2, kernel="linformer", seq_len=50, linformer_k=16, linformer_share_kv=True
    )
    assert shared.kernel.f_proj is None
    n_params = sum(p.numel() for p in mha.parameters())
    assert n_params - sum(p.numel() for p in shared.parameters()) == 16 * 50
    # k is capped at the sequence length (STAEformer's 12-step temporal attention)
    assert MultiHeadAttention(8, 2, kernel="linformer", seq_len=12).kernel.e_proj.shape == (12, 12)
    x = torch.randn(3, 50, 8)
    q, k, v = (mha._heads(p(x)) for p in (mha.q_proj, mha.k_proj, mha.v_proj))
    ref = mha.out_proj(
        linformer_attention(q, k, v, kern.e_proj, kern.f_proj).transpose(1, 2).reshape(3, 50, 8)
    )
    torch.testing.assert_close(mha(x), ref)
    with pytest.raises(ConfigError, match="built for key length 50"):
        mha(torch.randn(3, 49, 8))
    with pytest.raises(ConfigError, match="cannot be causal"):
        MultiHeadAttention(8, 2, kernel="linformer", seq_len=50, causal=True)


@pytest.mark.parametrize("kernel", ["softmax", "softmax_naive", "eala", "linear"])
def test_causal_outputs_do_not_see_the_future(kernel: str) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, kernel=kernel, causal=True, impl="linear").to(F64)
    x = torch.randn(2, 20, 8, dtype=F64)
    x2 = x.clone()
    x2[:, 12:] += torch.randn(2, 8, 8, dtype=F64)
    y, y2 = mha(x), mha(x2)
    torch.testing.assert_close(y[:, :12], y2[:, :12])
    assert not torch.allclose(y[:, 12:], y2[:, 12:])


@pytest.mark.parametrize("kernel", ["softmax", "eala", "linear"])
def test_padded_keys_are_ignored(kernel: str) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, kernel=kernel, impl="linear").to(F64)
    x = torch.randn(2, 3, 10, 8, dtype=F64)
    mask = torch.zeros(2, 3, 10, dtype=torch.bool)
    mask[..., 7:] = True
    x2 = x.clone()
    x2[..., 7:, :] = torch.randn(2, 3, 3, 8, dtype=F64)  # change only padded positions
    y = mha(x, key_padding_mask=mask)
    y2 = mha(x2, key_padding_mask=mask)
    torch.testing.assert_close(y[..., :7, :], y2[..., :7, :])
    assert not torch.allclose(mha(x)[..., :7, :], mha(x2)[..., :7, :])


def test_block_along_an_axis_is_the_block_on_the_transposed_input() -> None:
    torch.manual_seed(0)
    block = SelfAttentionLayer(12, 16, 3, 0.0, kernel="eala").eval()
    x = torch.randn(2, 5, 7, 12)  # (B, T, N, D)
    torch.testing.assert_close(block(x, dim=1), block(x.transpose(1, 2)).transpose(1, 2))
    torch.testing.assert_close(block(x, dim=2), block(x))


def test_block_is_post_layernorm() -> None:
    torch.manual_seed(0)
    block = SelfAttentionLayer(12, 16, 3, 0.0).eval()
    y = block(3.0 + 5.0 * torch.randn(2, 5, 7, 12))
    # the last op is LayerNorm (weight 1, bias 0 at init): every position is standardised
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(2, 5, 7), atol=1e-3, rtol=0)


@pytest.mark.parametrize("kernel,contiguous", [("eala", True), ("softmax", False)])
def test_self_attention_hands_contiguous_qkv_only_to_kernels_that_want_them(
    kernel: str, contiguous: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    mha = MultiHeadAttention(12, 3, kernel=kernel)
    seen: list[bool] = []
    real = mha.kernel.forward

    def spy(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        seen.extend(t.is_contiguous() for t in (q, k, v))
        return real(q, k, v, mask)

    monkeypatch.setattr(mha.kernel, "forward", spy)
    x = torch.randn(2, 5, 12)
    out = mha(x)
    # SDPA reads the strided views of the fused projection as they are: no copy for it
    assert seen == [contiguous] * 3
    monkeypatch.undo()
    torch.testing.assert_close(out, mha(x))


def _graph_nodes(out: Tensor) -> set[str]:
    seen, todo = set(), [out.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            todo.extend(f for f, _ in fn.next_functions)
    return {type(fn).__name__ for fn in seen}


@pytest.mark.parametrize("dim", [1, 2])
def test_block_backward_has_no_copy_slices(dim: int) -> None:
    # an in-place ReLU on the FFN's first Linear (a view of its 2-D result) puts CopySlices and
    # AsStrided nodes in the graph: extra full copies of the FFN's hidden tensor in backward
    block = SelfAttentionLayer(16, 32, 2, 0.1, kernel="eala")
    nodes = _graph_nodes(block(torch.randn(2, 12, 5, 16, requires_grad=True), dim=dim))
    assert "ReluBackward0" in nodes and "NativeLayerNormBackward0" in nodes
    assert not {"CopySlices", "AsStridedBackward0"} & nodes, sorted(nodes)


@pytest.mark.parametrize("kernel", [*EQUIVARIANT, "linformer"])
def test_spatial_block_is_node_permutation_equivariant(kernel: str) -> None:
    torch.manual_seed(0)
    n = 40  # > 2·head_dim, so EALA's auto rule takes the linear path
    block = SelfAttentionLayer(16, 32, 2, 0.0, kernel=kernel, seq_len=n, linformer_k=8)
    block = block.to(F64).eval()
    x = torch.randn(2, 3, n, 16, dtype=F64)
    perm = torch.randperm(n)
    permuted_then_block = block(x[:, :, perm], dim=2)
    block_then_permuted = block(x, dim=2)[:, :, perm]
    if kernel in EQUIVARIANT:
        torch.testing.assert_close(permuted_then_block, block_then_permuted)
    else:  # Linformer's E/F are node-specific parameters: the property must break
        assert not torch.allclose(permuted_then_block, block_then_permuted, atol=1e-6)


def test_eala_recompute_gives_the_same_gradients_and_keeps_only_q_k_v() -> None:
    """EALA's default recompute mode: identical gradients, fewer bytes kept for backward."""
    from linearcast.nn import MultiHeadAttention

    torch.manual_seed(0)
    x = torch.randn(3, 40, 16, dtype=torch.float64)
    results = []
    for recompute in (False, True):
        torch.manual_seed(1)
        mha = MultiHeadAttention(16, 2, kernel="eala", theta="gauss_hclamp", recompute=recompute)
        mha = mha.double()
        saved: dict[int, int] = {}  # storage -> bytes: views of one buffer count once

        def pack(t: torch.Tensor, saved: dict[int, int] = saved) -> torch.Tensor:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        xi = x.clone().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = mha(xi)
        out.square().sum().backward()
        grads = [xi.grad, *(p.grad for p in mha.parameters())]
        results.append((out.detach(), grads, sum(saved.values())))
    (o0, g0, s0), (o1, g1, s1) = results
    torch.testing.assert_close(o1, o0)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b)
    assert s1 < s0


def test_learned_theta_equals_the_constant_rule_at_its_value() -> None:
    """θ = exp(log_theta) per head gives exactly EALA with that constant θ (with and without
    padding, on the short and the linear path), and the parameter receives a gradient."""
    torch.manual_seed(0)
    learned = MultiHeadAttention(16, 2, kernel="eala", theta="learned").double()
    with torch.no_grad():
        learned.kernel.log_theta.copy_(torch.log(torch.tensor([0.5, 2.0])))
    for n in (6, 40):  # N <= 2·D: short path; N > 2·D: linear path
        q, k, v = (torch.randn(2, 2, n, 8, dtype=torch.float64) for _ in range(3))
        mask = torch.zeros(2, n, dtype=torch.bool)
        mask[1, n // 2 :] = True
        for m in (None, mask):
            got = learned.kernel(q, k, v, m)
            for head, value in enumerate((0.5, 2.0)):
                ref = MultiHeadAttention(16, 2, kernel="eala", theta=value).kernel(q, k, v, m)
                torch.testing.assert_close(got[:, head], ref[:, head])
    learned.kernel(q, k, v, mask).sum().backward()
    grad = learned.kernel.log_theta.grad
    assert grad is not None and torch.all(grad != 0)
    torch.testing.assert_close(learned.kernel.theta_values(), torch.tensor([0.5, 2.0]).double())


def test_learned_theta_refuses_causal_and_clamp() -> None:
    with pytest.raises(ConfigError, match="learned"):
        MultiHeadAttention(16, 2, kernel="eala", theta="learned", causal=True)
    with pytest.raises(ConfigError, match="learned"):
        MultiHeadAttention(16, 2, kernel="eala", theta="learned", clamp=True)
