"""STAEformer / ELinFormer: the official architecture, kernels, variable N, memory at N = 8600."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor

import linearcast.ops.eala as eala_module
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY, build

F64 = torch.float64
PROBE = Path(__file__).with_name("staeformer_large_n_probe.py")
# small but with the real structure: D = 8 + 4 + 4 + 8 = 24, 2 heads of 12
SMALL: dict[str, Any] = dict(
    input_embedding_dim=8,
    tod_embedding_dim=4,
    dow_embedding_dim=4,
    adaptive_embedding_dim=8,
    feed_forward_dim=32,
    num_heads=2,
    num_layers=1,
    dropout=0.0,
    linformer_k=8,
)


def _inputs(b: int, n: int, t: int = 12, dtype: torch.dtype = torch.float32) -> Tensor:
    x = torch.randn(b, t, n, 3, dtype=dtype)
    x[..., 1] = torch.rand(b, t, n, dtype=dtype)  # time of day in [0, 1)
    x[..., 2] = torch.randint(0, 7, (b, t, n)).to(dtype)  # day of week
    return x


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def official_parameter_count(n: int) -> int:
    """The official STAEformer's parameters (PEMS configs: input_dim 3, D = 152), by hand."""
    d, ff, t_in, t_out, heads_out = 24 + 24 + 24 + 80, 256, 12, 12, 1
    input_proj = 3 * 24 + 24
    tod, dow = 288 * 24, 7 * 24
    adaptive = t_in * n * 80
    output_proj = t_in * d * t_out * heads_out + t_out * heads_out
    attention = 4 * (d * d + d)  # FC_Q, FC_K, FC_V, out_proj
    ffn = (d * ff + ff) + (ff * d + d)
    layer_norms = 2 * 2 * d
    layers = 2 * 3 * (attention + ffn + layer_norms)  # 3 temporal + 3 spatial
    return input_proj + tod + dow + adaptive + output_proj + layers


@pytest.mark.parametrize("n", [170, 307, 883])
@pytest.mark.parametrize(
    "name",
    ["staeformer", "staeformer-naive", "elinformer", "elinformer-hclamp", "staeformer-linear"],
)
def test_parameter_count_is_the_official_one(name: str, n: int) -> None:
    model = build(name, num_nodes=n, in_steps=12, out_steps=12)
    assert _n_params(model) == official_parameter_count(n) == 1_060_260 + 960 * n


def test_parameter_count_values() -> None:
    # PEMS08, PEMS04, PEMS07
    assert [official_parameter_count(n) for n in (170, 307, 883)] == [1223460, 1354980, 1907940]


def test_linformer_adds_its_projections_and_varn_drops_the_adaptive_embedding() -> None:
    n, k = 307, 256
    linformer = build("staeformer-linformer", num_nodes=n, in_steps=12, out_steps=12)
    # per layer E and F: [12, 12] temporal (k capped at 12 steps), [256, N] spatial
    extra = 3 * 2 * 12 * 12 + 3 * 2 * k * n
    assert _n_params(linformer) == official_parameter_count(n) + extra
    varn = build("elinformer-varn", num_nodes=n, in_steps=12, out_steps=12)
    history_mlp = (12 * 80 + 80) + (80 * 12 * 80 + 12 * 80)
    assert _n_params(varn) == official_parameter_count(n) - 12 * n * 80 + history_mlp


def test_output_shape_and_mixed_projection_off() -> None:
    x = _inputs(2, 9)
    model = build("staeformer", num_nodes=9, in_steps=12, out_steps=6, output_dim=2, **SMALL)
    assert model(x).shape == (2, 6, 9, 2)
    plain = build("staeformer", num_nodes=9, in_steps=12, out_steps=6, use_mixed_proj=False)
    assert plain(x).shape == (2, 6, 9, 1)
    # official: temporal_proj Linear(12, 6) and output_proj Linear(152, 1) replace Linear(1824, 6)
    delta = (12 * 6 + 6 + 152 + 1) - (12 * 152 * 6 + 6)
    assert (
        _n_params(plain) - _n_params(build("staeformer", num_nodes=9, in_steps=12, out_steps=6))
        == delta
    )


def test_time_of_day_is_binned_by_steps_per_day() -> None:
    torch.manual_seed(0)
    # input_dim=1: with the official 3 the raw fraction also enters the input projection
    model = build("staeformer", num_nodes=5, in_steps=12, out_steps=12, input_dim=1, **SMALL)
    model.eval()
    x = _inputs(1, 5)
    x[..., 1] = 10.2 / 288  # inside bin 10
    same_bin, next_bin = x.clone(), x.clone()
    same_bin[..., 1] = 10.9 / 288
    next_bin[..., 1] = 11.1 / 288
    torch.testing.assert_close(model(x), model(same_bin))
    assert not torch.allclose(model(x), model(next_bin))


def test_day_of_week_is_read_from_its_own_channel() -> None:
    torch.manual_seed(0)
    # input_dim=1: only the embeddings see the time channels (with 3 the raw values also would)
    model = build("staeformer", num_nodes=5, in_steps=12, out_steps=12, input_dim=1, **SMALL)
    model.eval()
    x = _inputs(1, 5)
    x[..., 2] = 3.0  # Thursday
    same_day, next_day = x.clone(), x.clone()
    same_day[..., 2] = 3.6  # the day is the integer part
    next_day[..., 2] = 4.0
    torch.testing.assert_close(model(x), model(same_day))
    assert not torch.allclose(model(x), model(next_day))
    # each day has its own embedding row: day d's output equals the output with row d copied
    # into the row of another day
    with torch.no_grad():
        assert model.dow_embedding is not None
        model.dow_embedding.weight[4] = model.dow_embedding.weight[3]
    torch.testing.assert_close(model(x), model(next_day))


def test_temporal_layers_run_before_spatial_layers() -> None:
    """The output equals temporal blocks, then spatial blocks, then the projection.

    Only the input projection feeds the blocks here, so the composition is written out with the
    model's own modules; the reverse order gives another output (so order is visible).
    """
    torch.manual_seed(0)
    no_embeddings = {
        **SMALL, "tod_embedding_dim": 0, "dow_embedding_dim": 0, "adaptive_embedding_dim": 0,
        "num_layers": 2,
    }  # fmt: skip
    model = build("staeformer", num_nodes=7, in_steps=12, out_steps=6, **no_embeddings)
    model = model.to(F64).eval()
    x = _inputs(2, 7, dtype=F64)

    def compose(first: Any, second: Any, first_dim: int) -> Tensor:
        h = model.input_proj(x)  # (B, T, N, D)
        for layer in first:
            h = layer(h, dim=first_dim)
        for layer in second:
            h = layer(h, dim=3 - first_dim)
        b, t, n, d = h.shape
        out = model.output_proj(h.transpose(1, 2).reshape(b, n, t * d))  # (B, N, T'·C)
        return out.view(b, n, 6, 1).transpose(1, 2)  # (B, T', N, C)

    with torch.no_grad():
        temporal_first = compose(model.attn_layers_t, model.attn_layers_s, 1)
        spatial_first = compose(model.attn_layers_s, model.attn_layers_t, 2)
        torch.testing.assert_close(model(x), temporal_first, rtol=1e-12, atol=1e-12)
    assert (temporal_first - spatial_first).abs().max() > 1e-3


def test_bad_inputs_and_options_are_sentences() -> None:
    model = build("staeformer", num_nodes=5, in_steps=12, out_steps=12, **SMALL)
    with pytest.raises(ConfigError, match=r"\[B, T_in=12, N, C_in>=3\]"):
        model(torch.randn(2, 12, 5, 1))
    with pytest.raises(ConfigError, match="built for N=5"):
        model(_inputs(2, 6))
    with pytest.raises(ConfigError, match="unknown STAEformer option"):
        build("staeformer", num_nodes=5, in_steps=12, out_steps=12, num_layer=2)
    with pytest.raises(ConfigError, match="unknown attention kernel 'flash'"):
        build("staeformer", num_nodes=5, in_steps=12, out_steps=12, attention="flash")


def test_variable_n_model_runs_on_another_n() -> None:
    torch.manual_seed(0)
    model = build("elinformer-varn", num_nodes=10, in_steps=12, out_steps=12, **SMALL).eval()
    assert not REGISTRY["elinformer-varn"].fixed_num_nodes
    assert REGISTRY["elinformer"].fixed_num_nodes
    for n in (10, 3, 57):
        y = model(_inputs(2, n))
        assert y.shape == (2, 12, n, 1) and torch.isfinite(y).all()


def _permutation_gap(model: torch.nn.Module, n: int) -> float:
    torch.manual_seed(3)
    x = _inputs(2, n, dtype=F64)
    perm = torch.randperm(n)
    return (model(x[:, :, perm]) - model(x)[:, :, perm]).abs().max().item()


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("elinformer-varn", {}),
        ("staeformer", {"adaptive_embedding_dim": 0}),
        ("elinformer-gauss", {"adaptive_embedding_dim": 0}),
        ("staeformer-linear", {"adaptive_embedding_dim": 0}),
    ],
)
def test_without_node_specific_parameters_the_model_is_permutation_equivariant(
    name: str, overrides: dict[str, Any]
) -> None:
    n = 40  # > 2·head_dim: spatial EALA takes the linear path
    torch.manual_seed(0)
    model = build(name, num_nodes=n, in_steps=12, out_steps=12, **{**SMALL, **overrides})
    assert _permutation_gap(model.to(F64).eval(), n) < 1e-10


@pytest.mark.parametrize("name", ["staeformer", "elinformer", "staeformer-linformer"])
def test_node_specific_parameters_break_equivariance(name: str) -> None:
    # the control for the test above: adaptive embedding / Linformer E are per node
    torch.manual_seed(0)
    model = build(name, num_nodes=40, in_steps=12, out_steps=12, **SMALL)
    assert _permutation_gap(model.to(F64).eval(), 40) > 1e-4


@pytest.mark.parametrize("theta", ["paper", "gauss", "gauss_hclamp"])
@pytest.mark.parametrize("axis", ["temporal_impl", "spatial_impl"])
def test_eala_quadratic_and_linear_paths_give_the_same_model(theta: str, axis: str) -> None:
    x = _inputs(2, 30, dtype=F64)
    outs = []
    for impl in ("quadratic", "linear"):
        torch.manual_seed(0)
        model = build(
            "elinformer", num_nodes=30, in_steps=12, out_steps=12, theta=theta,
            **{**SMALL, "num_layers": 2, axis: impl},
        )  # fmt: skip
        outs.append(model.to(F64).eval()(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-9, atol=1e-10)


def test_auto_rule_takes_quadratic_over_time_and_linear_over_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int]] = []
    real = eala_module.choose_impl

    def spy(n_keys: int, d: int, **kw: Any) -> str:
        calls.append((real(n_keys, d, **kw), n_keys))
        return calls[-1][0]

    monkeypatch.setattr(eala_module, "choose_impl", spy)
    n = 100  # the real dims: head dim 38, so linear once N > 76
    model = build("elinformer", num_nodes=n, in_steps=12, out_steps=12, num_layers=2).eval()
    with torch.no_grad():
        model(_inputs(1, n))
    assert calls == [("quadratic", 12)] * 2 + [("linear", n)] * 2


def _load_probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("staeformer_large_n_probe", PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_sees_the_n_by_n_scores_of_materialised_softmax(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the control for the N = 8600 test: the same probe on the paper's baseline (meta device:
    # nothing is allocated) must find [T·H, N, N] scores
    _load_probe().main(["--model", "staeformer-naive", "--num-nodes", "8600", "--device", "meta"])
    report = json.loads(capsys.readouterr().out)
    assert report["quadratic_outputs"] > 0
    assert report["max_shape"] == [12 * 4, 8600, 8600]


@pytest.mark.slow
def test_elinformer_forward_at_n_8600_never_forms_an_n_by_n_tensor() -> None:
    """LargeST scale, batch 1, the real config, on CPU, in its own process (for its peak RSS)."""
    done = subprocess.run(
        [sys.executable, str(PROBE), "--model", "elinformer", "--num-nodes", "8600"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(report)
    n = 8600
    assert report["out_shape"] == [1, 12, n, 1] and report["finite"]
    assert report["quadratic_outputs"] == 0  # no op output with >= N² elements or two N axes
    # the largest tensor is the fused Q/K/V projection of the 12 steps, [12·N, 3·152]: linear in N
    assert report["max_numel"] <= 12 * n * 3 * 152 < n * n
    # one [T·H, N, N] float32 score tensor alone would be 14 GB
    assert report["peak_rss_mib"] < 3 * 1024


def test_activation_checkpointing_gives_the_same_gradients_and_saves_less() -> None:
    """Memory-saving mode: same values and gradients, fewer bytes kept for backward."""
    from linearcast.models import build

    torch.manual_seed(0)
    x = _inputs(2, 90, dtype=torch.float64)
    results = []
    for ckpt in (False, True):
        torch.manual_seed(1)
        model = build("elinformer", num_nodes=90, in_steps=12, out_steps=12,
                      dropout=0.0, checkpoint_activations=ckpt).double()  # fmt: skip
        model.train()
        saved: list[int] = []

        def pack(t: torch.Tensor, saved: list[int] = saved) -> torch.Tensor:
            saved.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
        out.square().sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((out.detach(), grads, sum(saved)))
    (o0, g0, s0), (o1, g1, s1) = results
    torch.testing.assert_close(o1, o0)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b)
    assert s1 < s0 / 3


@pytest.mark.parametrize("fast_dropout", [True, False])
def test_activation_checkpointing_redraws_the_same_dropout_masks(fast_dropout: bool) -> None:
    """With dropout on, the recomputed forward must draw the masks of the first forward (the
    RNG state is restored), else the gradients belong to another network."""
    from linearcast.models import build

    torch.manual_seed(0)
    x = _inputs(2, 20, dtype=torch.float64)
    results = []
    for ckpt in (False, True):
        torch.manual_seed(1)
        model = build("elinformer", num_nodes=20, in_steps=12, out_steps=12, dropout=0.3,
                      fast_dropout=fast_dropout, checkpoint_activations=ckpt).double()  # fmt: skip
        model.train()
        torch.manual_seed(2)
        out = model(x)
        out.square().sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    (o0, g0), (o1, g1) = results
    torch.testing.assert_close(o1, o0, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fast_dropout_is_the_default_and_false_gives_nn_dropout() -> None:
    from linearcast.nn.blocks import FastDropout

    kw: dict[str, Any] = {"num_nodes": 5, "in_steps": 12, "out_steps": 12, "num_layers": 1}
    for name in ("staeformer", "elinformer", "staeformer-naive"):
        default, ref = build(name, **kw), build(name, fast_dropout=False, **kw)
        layers = (default.attn_layers_t[0], default.attn_layers_s[0])
        assert all(isinstance(m.dropout1, FastDropout) for m in layers), name
        assert all(type(m.dropout2) is torch.nn.Dropout for m in (ref.attn_layers_s[0],)), name


def test_fast_dropout_changes_only_the_training_masks() -> None:
    kw: dict[str, Any] = {"num_nodes": 5, "in_steps": 12, "out_steps": 12, "num_layers": 1}
    torch.manual_seed(0)
    plain = build("elinformer", **kw)
    torch.manual_seed(0)
    fast = build("elinformer", fast_dropout=True, **kw)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    for a, b in zip(plain.state_dict().values(), fast.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same parameters from the same seed
    x = torch.randn(2, 12, 5, 3)
    x[..., 1], x[..., 2] = torch.rand(2, 12, 5), torch.randint(0, 7, (2, 12, 5)).float()
    plain.eval(), fast.eval()
    torch.testing.assert_close(fast(x), plain(x), rtol=0, atol=0)  # no dropout in eval
    fast.train()
    torch.manual_seed(1)
    a = fast(x)
    torch.manual_seed(2)
    b = fast(x)
    assert torch.isfinite(a).all() and not torch.equal(a, b)  # masks drawn while training
    drop = fast.attn_layers_s[0].dropout1
    kept = drop(torch.ones(200_000)) != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.005  # STAEformer's p = 0.1
