"""AGCRN: the paper's equations step by step, the learned graph, the official sizes and init."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor

from linearcast.engine.config import preset
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY, build
from linearcast.models.agcrn import AGCRN, AGCRNConfig, chebyshev_supports
from linearcast.models.base import OPTION_CHECKS

F64 = torch.float64
#: baselines.md §3, counted from the official code at PEMS08 size (N = 170)
PEMS08_PARAMS = {10: 747_440, 2: 150_112}
SMALL: dict[str, Any] = dict(rnn_units=5, embed_dim=3, num_layers=2, cheb_k=3)


def _model(n: int = 6, seed: int = 0, **overrides: Any) -> AGCRN:
    torch.manual_seed(seed)
    kwargs = {**SMALL, **overrides}
    model = build("agcrn", num_nodes=n, in_steps=5, out_steps=4, **kwargs)
    assert isinstance(model, AGCRN)
    return model.to(F64)


def _x(n: int = 6, channels: int = 1, seed: int = 1) -> Tensor:
    return torch.randn(3, 5, n, channels, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _naive_forward(model: AGCRN, x: Tensor) -> Tensor:
    """The paper's equations as written: ``gconv([x_t, h])`` per step, supports incl. ``I``."""
    c = model.config
    e = model.node_embeddings
    s = torch.softmax(torch.relu(e @ e.T), dim=1)
    supports = [torch.eye(len(e), dtype=F64), s]
    while len(supports) < c.cheb_k:
        supports.append(2 * s @ supports[-1] - supports[-2])

    def gconv(conv: Any, inp: Tensor) -> Tensor:  # inp: (B, N, C)
        w = torch.einsum("nd,dkio->nkio", e, conv.weights_pool)
        out = sum(torch.einsum("nm,bmi,nio->bno", t, inp, w[:, k]) for k, t in enumerate(supports))
        return out + e @ conv.bias_pool

    seq = x[..., : c.input_dim]
    for cell in model.cells:
        h = torch.zeros(x.shape[0], x.shape[2], c.rnn_units, dtype=F64)
        states = []
        for t in range(seq.shape[1]):
            zr = torch.sigmoid(gconv(cell.gate, torch.cat([seq[:, t], h], -1)))
            z, r = zr[..., : c.rnn_units], zr[..., c.rnn_units :]
            cand = torch.tanh(gconv(cell.update, torch.cat([seq[:, t], z * h], -1)))
            h = r * h + (1 - r) * cand
            states.append(h)
        seq = torch.stack(states, 1)
    out = seq[:, -1] @ model.predictor.weight.T + model.predictor.bias  # (B, N, T_out·C)
    b, n = out.shape[:2]
    return out.view(b, n, c.out_steps, c.output_dim).transpose(1, 2)


@pytest.mark.parametrize(
    "overrides", [{}, {"cheb_k": 2, "num_layers": 1}, {"input_dim": 2, "output_dim": 3}]
)
def test_matches_the_papers_equations_in_outputs_and_gradients(overrides: dict[str, Any]) -> None:
    # the model computes the supports, the per-node weights and the input's share of the
    # convolutions once per forward; the naive form recomputes everything every step
    model = _model(**overrides)
    x = _x(channels=model.config.input_dim)
    out = model(x)
    ref = _naive_forward(model, x)
    assert out.shape == (3, 4, 6, model.config.output_dim)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    cot = torch.randn_like(out)
    params = list(model.parameters())
    grads = torch.autograd.grad((out * cot).sum(), params)
    grads_ref = torch.autograd.grad((ref * cot).sum(), params)
    for g, gr in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, gr, rtol=0, atol=1e-11)


def test_learned_graph_is_row_stochastic_and_supports_follow_chebyshev() -> None:
    e = torch.randn(7, 3, dtype=F64)
    sup = chebyshev_supports(e, 4)
    assert sup.shape == (4, 7, 7)
    torch.testing.assert_close(sup[0], torch.eye(7, dtype=F64))
    s = sup[1]
    assert (s >= 0).all()
    torch.testing.assert_close(s.sum(1), torch.ones(7, dtype=F64))
    torch.testing.assert_close(sup[3], 2 * s @ sup[2] - s)
    torch.testing.assert_close(sup[2], 2 * s @ s - torch.eye(7, dtype=F64))


def test_permuting_nodes_and_their_embeddings_permutes_the_forecast() -> None:
    model = _model()
    x = _x()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    out = model(x)
    with torch.no_grad():
        model.node_embeddings.copy_(model.node_embeddings[perm])
    torch.testing.assert_close(model(x[:, :, perm]), out[:, :, perm], rtol=0, atol=1e-12)


def test_reads_only_the_first_input_dim_channels() -> None:
    x = _x(channels=3)
    x2 = x.clone()
    x2[..., 1:] += 5.0
    one = _model(input_dim=1)
    torch.testing.assert_close(one(x), one(x2), rtol=0, atol=0)
    two = _model(input_dim=2)
    assert (two(x) - two(x2)).abs().max() > 1e-6


def test_a_node_sees_others_only_through_the_learned_graph() -> None:
    # a change at node 0 reaches node 3 (the softmax graph is dense) and stays in its batch row
    model = _model()
    x = _x()
    x2 = x.clone()
    x2[0, :, 0] += 1.0
    diff = (model(x) - model(x2)).abs()
    assert diff[0, :, 3].max() > 1e-8
    assert diff[1:].max() == 0


@pytest.mark.parametrize("embed_dim", sorted(PEMS08_PARAMS))
def test_parameter_count_at_pems08_size_is_the_counted_one(embed_dim: int) -> None:
    with torch.device("meta"):
        model = build("agcrn", num_nodes=170, in_steps=12, out_steps=12, embed_dim=embed_dim)
    assert sum(p.numel() for p in model.parameters()) == PEMS08_PARAMS[embed_dim]


def test_default_is_basicts_and_the_pems08_preset_gives_the_published_size() -> None:
    assert AGCRNConfig(num_nodes=170).embed_dim == 10
    cfg = preset("agcrn-pems08")
    assert cfg.model == "agcrn" and cfg.model_overrides == {"embed_dim": 2}
    assert (cfg.lr, cfg.batch_size, cfg.weight_decay, cfg.patience) == (3e-3, 64, 0.0, 15)
    with torch.device("meta"):
        model = build("agcrn", num_nodes=170, in_steps=12, out_steps=12, **cfg.model_overrides)
    assert sum(p.numel() for p in model.parameters()) == PEMS08_PARAMS[2]


def test_initialisation_is_the_official_one() -> None:
    # Xavier-uniform on every tensor of >= 2 dims (4-D pools: torch's fans of [d, K, C_in, C_out]),
    # the predictor's weight with the fans of the official Conv2d [T·C, 1, 1, H], U(0, 1) bias
    torch.manual_seed(0)
    model = AGCRN(AGCRNConfig(num_nodes=40, out_steps=12, rnn_units=16, embed_dim=4))
    h, tc = 16, 12
    bounds = {
        "node_embeddings": math.sqrt(6 / (4 + 40)),
        "cells.1.gate.weights_pool": math.sqrt(6 / (2 * 32 * 32 + 4 * 32 * 32)),
        "cells.1.gate.bias_pool": math.sqrt(6 / (32 + 4)),
        "predictor.weight": math.sqrt(6 / (h + tc * h)),
    }
    params = dict(model.named_parameters())
    for name, bound in bounds.items():
        top = params[name].abs().max().item()
        assert 0.9 * bound < top <= bound, (name, top, bound)
    bias = params["predictor.bias"]
    assert bias.min() >= 0 and bias.max() < 1 and bias.std() > 0.1


def test_refusals_are_one_sentence_config_errors() -> None:
    model = _model(n=6)
    with pytest.raises(ConfigError, match=r"built for N=6 nodes and found 7"):
        model(_x(n=7))
    with pytest.raises(ConfigError, match=r"model_overrides\.input_dim"):
        _model(input_dim=2)(_x(channels=1))
    with pytest.raises(ConfigError, match=r"cheb_k=2"):
        _model(cheb_k=1)
    with pytest.raises(ConfigError, match=r"unknown AGCRN option\(s\) hidden"):
        _model(hidden=3)


def test_spec_needs_no_graph_and_every_option_has_a_range() -> None:
    spec = REGISTRY["agcrn"]
    assert not spec.needs_graph and not spec.needs_time_features and spec.fixed_num_nodes
    assert spec.options is not None
    assert spec.options <= set(OPTION_CHECKS)
    assert not OPTION_CHECKS["cheb_k"].accepts(0)
