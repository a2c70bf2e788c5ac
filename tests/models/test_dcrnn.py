"""DCRNN: the published size, the supports, scheduled sampling (probability, clock, which steps
see the truth), node-permutation equivariance and the errors (the comparison with the reference
code itself is ``test_reference_dcrnn.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from linearcast.data import get_protocol, synthetic_traffic
from linearcast.engine.config import TrainConfig, preset
from linearcast.engine.setup import build_model_for
from linearcast.errors import ConfigError
from linearcast.models import build
from linearcast.models.dcrnn import DCRNN, random_walk_supports

N, B = 5, 2


def _graph(n: int = N) -> np.ndarray:
    a = np.zeros((n, n))
    for i in range(n - 1):  # a weighted directed ring on all but the last node, plus chords
        a[i, (i + 1) % (n - 1)] = 1.0 + i
        a[(i + 2) % (n - 1), i] = 0.5
    return a


def _model(**overrides: object) -> DCRNN:
    torch.manual_seed(0)
    kwargs = {"rnn_units": 6, **overrides}
    model = build("dcrnn", num_nodes=N, in_steps=4, out_steps=3, adjacency=_graph(), **kwargs)
    assert isinstance(model, DCRNN)
    return model.double()


def _xy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 4, N, 3, generator=g, dtype=torch.float64)
    return x, torch.randn(B, 3, N, 1, generator=g, dtype=torch.float64)


def test_pems08_size_has_the_published_parameter_count() -> None:
    # baselines.md §4 "counted": 372,353 whatever N (BasicTS's 0.37 M)
    for n in (170, 7):
        a = np.ones((n, n))
        model = build("dcrnn", num_nodes=n, in_steps=12, out_steps=12, adjacency=a)
        assert sum(p.numel() for p in model.parameters()) == 372_353


def test_supports_are_the_transposed_forward_and_backward_walks() -> None:
    a = _graph()
    s = random_walk_supports(a, N, "dual_random_walk").numpy()
    out_deg, in_deg = a.sum(1), a.sum(0)
    for i in range(N - 1):
        for j in range(N):
            assert s[0, j, i] == pytest.approx(a[i, j] / out_deg[i], abs=1e-15)
            assert s[1, j, i] == pytest.approx(a[j, i] / in_deg[i], abs=1e-15)
    assert (s[:, :, N - 1] == 0).all() and (s[:, N - 1, :] == 0).all()  # the isolated node
    assert random_walk_supports(a, N, "random_walk").shape == (1, N, N)


def test_teacher_forcing_probability_decays_as_the_inverse_sigmoid() -> None:
    model = _model()
    for seen, want in ((0, 2000 / 2001), (10_000, 0.93), (15_000, 0.53), (20_000, 0.08)):
        model.batches_seen.fill_(seen)
        assert model.teacher_forcing_probability() == pytest.approx(want, abs=0.005)
    model.batches_seen.fill_(10**12)  # exp would overflow: the probability is 0, not an error
    assert model.teacher_forcing_probability() == 0.0
    assert math.isfinite(model.teacher_forcing_probability())


def test_the_clock_counts_training_forwards_and_is_saved() -> None:
    model, (x, y) = _model(), _xy()
    with torch.no_grad():
        model.eval()(x)
        model.train()(x)
        model(x, targets=y)
    assert int(model.batches_seen) == 2
    other = _model()
    other.load_state_dict(model.state_dict())
    assert int(other.batches_seen) == 2
    assert "supports" not in model.state_dict()  # the graph comes from the data, not weights


def _forced(model: DCRNN, draws: list[float]) -> None:
    model.sampling_draws = lambda steps: torch.tensor(draws[:steps], dtype=torch.float64)  # type: ignore[method-assign]


def test_a_forced_step_feeds_its_target_to_the_next_step_only() -> None:
    model, (x, y) = _model(), _xy()
    model.train()
    _forced(model, [0.0, 0.0, 0.0])  # every step below the probability: all forced
    base = model(x, targets=y)
    y2 = y.clone()
    y2[:, 1] += 1.0  # the truth of step 1 enters step 2 only
    moved = (model(x, targets=y2) - base).abs().amax(dim=(0, 2, 3))
    assert moved[0] == 0 and moved[1] == 0 and moved[2] > 1e-6
    _forced(model, [0.0, 1.0, 0.0])  # step 1 feeds back its prediction: y[:, 1] unused
    assert torch.equal(model(x, targets=y), model(x, targets=y2))


def test_free_running_ignores_targets_and_matches_eval() -> None:
    model, (x, y) = _model(), _xy()
    with torch.no_grad():
        free = model.eval()(x)
        model.train()
        assert torch.equal(model(x), free)  # no targets: no draw, no truth
        _forced(model, [1.0, 1.0, 1.0])  # every draw above the probability
        assert torch.equal(model(x, targets=y), free)
        _forced(model, [0.0, 0.0, 0.0])
        nan_targets = torch.full_like(y, float("nan"))  # missing truths: the prediction instead
        assert torch.equal(model(x, targets=nan_targets), free)
        off = _model(use_curriculum_learning=False).train()
        assert torch.equal(off(x, targets=y), free)


def test_the_draws_follow_the_seed() -> None:
    model, (x, y) = _model(), _xy()
    model.train().batches_seen.fill_(round(2000 * math.log(2000)))  # probability 1/2
    torch.manual_seed(3)
    first = model(x, targets=y)
    model.batches_seen.fill_(round(2000 * math.log(2000)))
    torch.manual_seed(3)
    assert torch.equal(model(x, targets=y), first)


def test_permuting_the_nodes_permutes_the_forecast() -> None:
    perm = torch.tensor([3, 0, 4, 1, 2])
    a = _graph()
    x, _ = _xy()
    torch.manual_seed(0)
    model = build("dcrnn", num_nodes=N, in_steps=4, out_steps=3, adjacency=a, rnn_units=6)
    torch.manual_seed(0)
    permuted = build("dcrnn", num_nodes=N, in_steps=4, out_steps=3, rnn_units=6,
                     adjacency=a[np.ix_(perm.numpy(), perm.numpy())])  # fmt: skip
    with torch.no_grad():
        out = model.double().eval()(x)
        out_p = permuted.double().eval()(x[:, :, perm])
    torch.testing.assert_close(out_p, out[:, :, perm], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "adjacency, match",
    [
        (None, "needs a graph and none was given"),
        (np.ones((4, 4)), r"shape \(5, 5\) .* found shape \(4, 4\)"),
        (-np.ones((5, 5)), "non-negative"),
        (np.full((5, 5), np.nan), "non-finite"),
    ],
)
def test_a_bad_graph_is_refused_with_the_fix(adjacency: np.ndarray | None, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        build("dcrnn", num_nodes=N, in_steps=4, out_steps=3, adjacency=adjacency)
    assert "--set data_options.adjacency=FILE" in str(err.value)


def test_data_without_a_graph_names_the_file_and_the_fix() -> None:
    ds = synthetic_traffic(num_nodes=4, days=1, seed=0)
    ds.adjacency = None
    with pytest.raises(ConfigError) as err:
        build_model_for(TrainConfig(model="dcrnn"), ds, get_protocol("pems"))
    message = str(err.value)
    assert str(ds.source) in message and "--set data_options.adjacency=FILE" in message


def test_bad_inputs_and_options_are_refused() -> None:
    model, (x, y) = _model(), _xy()
    with pytest.raises(ConfigError, match="N=5"):
        model(x[:, :, :4])
    with pytest.raises(ConfigError, match="targets of shape"):
        model.train()(x, targets=y[:, :2])
    with pytest.raises(ConfigError, match="unknown DCRNN option"):
        _model(num_layers=2)
    with pytest.raises(ConfigError, match="cl_decay_steps must be >= 1"):
        _model(cl_decay_steps=0)


@pytest.mark.parametrize("name", ["dcrnn", "dcrnn-pems04", "dcrnn-pems08", "dcrnn-metr-la"])
def test_presets_hold_the_published_recipes(name: str) -> None:
    cfg = preset(name)
    assert (cfg.model, cfg.optimizer, cfg.weight_decay, cfg.batch_size) == ("dcrnn", "adam", 0, 64)
    assert (cfg.loss, cfg.max_epochs, cfg.scheduler) == ("masked_mae", 100, "multistep")
    assert cfg.model_overrides == {"use_curriculum_learning": True, "cl_decay_steps": 2000}
    assert cfg.adam_eps == 1e-3  # both references' Adam eps
    if name in ("dcrnn", "dcrnn-metr-la"):  # chnsh dcrnn_la.yaml, BasicTS METR-LA.py
        assert (cfg.lr, cfg.milestones, cfg.gamma, cfg.grad_clip) == (
            1e-2,
            [20, 30, 40, 50],
            0.1,
            5,
        )
        assert cfg.protocol == "metr" and cfg.patience == (50 if name == "dcrnn" else 0)
    else:  # BasicTS v0.5.8 PEMS04.py / PEMS08.py (no clipping on PEMS08)
        assert (cfg.lr, cfg.milestones, cfg.gamma, cfg.protocol) == (3e-3, [80], 0.3, "pems")
        assert cfg.grad_clip == (0.0 if name == "dcrnn-pems08" else 5.0)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"max_diffusion_step": 3, "num_rnn_layers": 2}, {"max_diffusion_step": 1},
     {"filter_type": "random_walk", "output_dim": 2}],
)  # fmt: skip
def test_sparse_supports_give_the_dense_values_and_gradients(overrides: dict[str, object]) -> None:
    # the dense path is the one checked against the reference code (test_reference_dcrnn.py)
    x, y = _xy()
    dense = _model(graph_impl="dense", **overrides).train()
    sparse = _model(graph_impl="sparse", **overrides).train()
    sparse.load_state_dict(dense.state_dict())
    draws = torch.tensor([0.1, 0.9, 0.1], dtype=torch.float64)  # teacher-forced, fed back, ...
    outs, grads = [], []
    for model in (dense, sparse):
        model.sampling_draws = lambda steps: draws[:steps]  # type: ignore[method-assign]
        xi = x.clone().requires_grad_(True)
        out = model(xi, targets=y.expand(-1, -1, -1, model.config.output_dim).contiguous())
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        outs.append(out)
        grads.append([xi.grad, *(p.grad for p in model.parameters())])
    assert sparse.resolved_impl(x.device) == "sparse"
    assert dense.resolved_impl(x.device) == "dense"
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=1e-12)
    assert float(outs[0].abs().max()) > 0.1
    for g_sparse, g_dense in zip(grads[1], grads[0], strict=True):
        assert g_sparse is not None and g_dense is not None
        torch.testing.assert_close(g_sparse, g_dense, rtol=0, atol=1e-11)


def test_auto_multiplies_by_sparse_supports_on_the_cpu_only_for_a_sparse_graph() -> None:
    ring = np.roll(np.eye(40), 1, axis=1)  # 1/40 of the entries
    sparse = build("dcrnn", num_nodes=40, in_steps=2, out_steps=2, adjacency=ring)
    full = build("dcrnn", num_nodes=N, in_steps=2, out_steps=2, adjacency=np.ones((N, N)))
    assert isinstance(sparse, DCRNN) and isinstance(full, DCRNN)
    assert sparse.resolved_impl(torch.device("cpu")) == "sparse"
    assert sparse.resolved_impl(torch.device("meta")) == "dense"  # e.g. CUDA: not measured
    assert full.resolved_impl(torch.device("cpu")) == "dense"


def test_sparse_supports_stay_out_of_an_export() -> None:
    # torch.export with a dynamic batch (as the ONNX export runs it) does not take sparse CSR:
    # the same model exports on dense supports and gives the same forecast
    model = build("dcrnn", num_nodes=N, in_steps=2, out_steps=2, adjacency=_graph(),
                  rnn_units=4, graph_impl="sparse").eval()  # fmt: skip
    x = torch.randn(B, 2, N, 3)
    batch = torch.export.Dim("batch", min=1)
    exported = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    torch.testing.assert_close(exported.module()(x), model(x))
    torch.testing.assert_close(exported.module()(x[:1]), model(x[:1]))
