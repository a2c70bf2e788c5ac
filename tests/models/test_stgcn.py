"""STGCN: the reference's parameter count, its graph operators, which way the graph propagates,
and the one-sentence errors for a graph or window it cannot use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from linearcast.data import TimeSeriesDataset, get_protocol
from linearcast.engine.config import TrainConfig
from linearcast.engine.setup import build_model_for
from linearcast.errors import ConfigError
from linearcast.models import build
from linearcast.models.stgcn import MAX_NORMLAP_CHEB_K, STGCN, graph_operator

SMALL = dict(temporal_channels=8, graph_channels=4, output_channels=8, dropout=0.0)


def _ring(n: int) -> np.ndarray:
    a = np.zeros((n, n), dtype=np.float32)
    idx = np.arange(n)
    a[idx, (idx + 1) % n] = a[(idx + 1) % n, idx] = 1.0
    return a


def _model(n: int, adj: np.ndarray, seed: int = 0, **overrides: Any) -> STGCN:
    torch.manual_seed(seed)
    model = build("stgcn", num_nodes=n, in_steps=12, out_steps=12, adjacency=adj, **overrides)
    assert isinstance(model, STGCN)
    return model.double().eval()


@pytest.mark.parametrize(("n", "count"), [(170, 227_084), (307, 297_228), (207, 246_028)])
def test_parameter_count_is_the_reference_count(n: int, count: int) -> None:
    # docs/baselines.md "counted" (PEMS08, PEMS04, METR-LA); 14,784 of them are the Align convs
    # the reference builds and never calls, kept (frozen) so state dicts and counts match
    with torch.device("meta"):
        model = build("stgcn", num_nodes=n, in_steps=12, out_steps=12, adjacency=_ring(n))
    assert sum(p.numel() for p in model.parameters()) == count
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen == 14_784


def test_normlap_is_basicts_unscaled_laplacian_by_hand() -> None:
    # path 0-1-2 plus a node 3 without edges: degrees 1, 2, 1, 0
    a = np.zeros((4, 4))
    a[0, 1] = a[1, 0] = a[1, 2] = a[2, 1] = 1.0
    s = 1 / np.sqrt(2)
    want = np.array([[1, -s, 0, 0], [-s, 1, -s, 0], [0, -s, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(graph_operator(a, "normlap"), want, atol=1e-15)
    # a path is bipartite: λ_max = 2, so hazdzz's operator is L - I (the spectral shift of 1)
    np.testing.assert_allclose(graph_operator(a, "scaled"), want - np.eye(4), atol=1e-12)


def test_scaled_operator_symmetrises_and_has_spectrum_in_minus_one_one() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((9, 9)) * (rng.random((9, 9)) < 0.5)  # directed, weighted, not bipartite
    np.fill_diagonal(a, 0.0)
    gso = graph_operator(a, "scaled")
    np.testing.assert_allclose(gso, gso.T, atol=1e-14)
    eig = np.linalg.eigvalsh(gso)
    assert eig.min() >= -1 - 1e-12 and abs(eig.max() - 1.0) < 1e-12
    # normlap keeps the direction: D from row sums, no symmetrising
    lap = graph_operator(a, "normlap")
    d = a.sum(1) ** -0.5
    np.testing.assert_allclose(lap, np.eye(9) - d[:, None] * a * d[None, :], atol=1e-15)


def test_a_node_reads_the_nodes_its_row_points_to_within_ks_minus_one_hops() -> None:
    # directed chain A[i, i+1] = 1: (L x)_i mixes x_{i+1} into node i (BasicTS's gso @ x), so a
    # graph conv of Ks = 3 terms moves nodes j-2..j when node j changes, and no other
    n, j = 12, 7
    a = np.zeros((n, n), dtype=np.float32)
    a[np.arange(n - 1), np.arange(1, n)] = 1.0
    model = _model(n, a, **SMALL)
    gconv = model.blocks[0].gconv
    x = torch.randn(2, SMALL["temporal_channels"], 5, n, dtype=torch.float64)  # (B, C, T, N)
    x2 = x.clone()
    x2[..., j] += 1.0
    with torch.no_grad():
        moved = (gconv(x2, model.gso) - gconv(x, model.gso)).abs().amax(dim=(0, 1, 3)) > 0
    assert moved.nonzero().flatten().tolist() == [j - 2, j - 1, j]


def test_nodes_permuted_with_their_graph_permute_the_forecast() -> None:
    n = 10
    rng = np.random.default_rng(1)
    a = (rng.random((n, n)) < 0.3).astype(np.float32)
    a = np.maximum(a, a.T)
    perm = rng.permutation(n)
    x = torch.randn(2, 12, n, 1, dtype=torch.float64)
    # LayerNorm's affine starts at 1 and 0, so the fresh model is node-equivariant
    out = _model(n, a, **SMALL)(x)
    out_p = _model(n, a[np.ix_(perm, perm)], **SMALL)(x[:, :, perm])
    torch.testing.assert_close(out_p, out[:, :, perm], rtol=1e-12, atol=1e-12)


def test_the_graph_operator_changes_the_forecast() -> None:
    n = 10
    a = _ring(n)
    x = torch.randn(2, 12, n, 1, dtype=torch.float64)
    a_norm = _model(n, a, **SMALL)(x)
    a_scaled = _model(n, a, laplacian="scaled", **SMALL)(x)
    assert (a_norm - a_scaled).abs().max() > 1e-3


def test_unused_aligns_get_no_gradient_and_are_frozen() -> None:
    model = _model(8, _ring(8), **SMALL).train()
    model(torch.randn(2, 12, 8, 1, dtype=torch.float64)).square().mean().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
        if p.grad is not None:
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"adjacency": None}, "needs a graph"),
        ({"adjacency": -_ring(6)}, "non-negative edge weights"),
        ({"adjacency": _ring(5)}, "graph of 5 nodes for N=6"),
        ({"adjacency": np.full((6, 6), np.nan)}, "finite square adjacency"),
        ({"adjacency": _ring(6), "num_blocks": 3}, "needs in_steps >= 13.*in_steps=13, or"),
        ({"adjacency": _ring(6), "cheb_k": 0}, "cheb_k must be an integer >= 1"),
    ],
)
def test_unusable_graph_or_window_is_one_sentence(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        build("stgcn", num_nodes=6, in_steps=12, out_steps=12, **overrides)
    assert str(err.value).startswith("STGCN ") and "\n" not in str(err.value)


def test_both_fixes_the_short_window_message_names_build() -> None:
    # every window too short for the blocks: the message's two fixes (a longer window; fewer
    # blocks, or a shorter kernel where one block cannot fit) each give a model that builds
    tried = 0
    for in_steps in range(2, 15):
        for kernel in range(2, 6):
            for blocks in range(1, 5):
                if in_steps - blocks * 2 * (kernel - 1) >= 1:
                    continue
                opts = {"temporal_kernel": kernel, "num_blocks": blocks, "adjacency": _ring(6)}
                with pytest.raises(ConfigError) as err:
                    build("stgcn", num_nodes=6, in_steps=in_steps, out_steps=3, **opts)
                text = str(err.value)
                found = re.search(r"in_steps=(\d+), or .*model_overrides\.(\w+)=(\d+) to fit", text)
                assert found, text
                longer, name, value = int(found[1]), found[2], int(found[3])
                build("stgcn", num_nodes=6, in_steps=longer, out_steps=3, **opts)
                build("stgcn", num_nodes=6, in_steps=in_steps, out_steps=3,
                      **{**opts, name: value})  # fmt: skip
                tried += 1
    assert tried > 50


def test_data_without_a_graph_names_the_file_and_the_fix() -> None:
    values = np.random.default_rng(0).random((600, 5, 1)).astype(np.float32)
    ds = TimeSeriesDataset(values=values, steps_per_day=288, path=Path("flows.npy"))
    with pytest.raises(ConfigError) as err:
        build_model_for(TrainConfig(model="stgcn"), ds, get_protocol("pems"))
    message = str(err.value)
    assert "flows.npy" in message and "--set data_options.adjacency=FILE" in message
    assert "\n" not in message


def test_another_number_of_nodes_is_refused() -> None:
    model = _model(6, _ring(6), **SMALL)
    with pytest.raises(ConfigError, match="built for N=6"):
        model(torch.zeros(1, 12, 7, 1, dtype=torch.float64))


def test_chebyshev_orders_that_overflow_the_unscaled_operator_are_refused() -> None:
    # a 6-node ring is bipartite: the unscaled Laplacian reaches eigenvalue 2, where T_k grows
    # as 3.73^k; at order 40 float32 overflows and the forecast is NaN
    adj, x = _ring(6), torch.randn(2, 12, 6, 1)
    with pytest.raises(ConfigError, match=r"cheb_k=40 .*normlap.*model_overrides\.laplacian="):
        build("stgcn", num_nodes=6, in_steps=12, out_steps=12, adjacency=adj, cheb_k=40)
    with pytest.raises(ConfigError, match=rf"cheb_k={MAX_NORMLAP_CHEB_K + 1} "):
        build("stgcn", num_nodes=6, adjacency=adj, in_steps=12, out_steps=12,
              cheb_k=MAX_NORMLAP_CHEB_K + 1)  # fmt: skip
    for laplacian, k in (("normlap", MAX_NORMLAP_CHEB_K), ("scaled", 40)):
        torch.manual_seed(0)
        model = build("stgcn", num_nodes=6, in_steps=12, out_steps=12, adjacency=adj,
                      cheb_k=k, laplacian=laplacian)  # fmt: skip
        out = model(x)
        out.square().mean().backward()
        assert torch.isfinite(out).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
