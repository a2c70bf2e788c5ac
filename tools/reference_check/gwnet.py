"""Compare linearcast's Graph WaveNet with the official code, weights shared, float64.

    .venv/bin/python tools/reference_check/gwnet.py --ref DIR   # or LINEARCAST_REFERENCE_DIR=DIR

DIR holds the official ``model.py`` (and ``util.py``) of nnzhan/Graph-WaveNet (never committed
here): a checkout, a folder holding one, or the files themselves; the ``model.py`` that defines
``class gwnet`` is found up to three folders down. For each case the script builds both models
from one seed (and reports whether the initial weights agree), copies ours into theirs by
:func:`reference_name`, gives the reference our supports (``[D⁻¹A, D⁻¹Aᵀ]``, so both diffuse
over the same matrices), runs both in float64 on the same inputs in training mode (dropout 0,
BatchNorm on batch statistics), back-propagates ``sum(out · g)`` for a fixed random ``g`` and
prints, as JSON, max |Δ| of the outputs, of every parameter's gradient, of the input's gradient,
of the BatchNorm running statistics and of the eval-mode outputs. With scipy installed it also
compares our supports with the official ``util.asym_adj``. Exit status 1 when a difference
exceeds ``--tol``.

The official ``gate_convs``, ``residual_convs`` and ``skip_convs`` are ``nn.Conv1d`` given a
``(1, k)`` kernel; torch 1.x ran them on 4-D input as ``Conv2d`` (BasicTS's port writes
``Conv2d``), torch 2 refuses 4-D input to ``Conv1d``, so the reference module is loaded with
``nn.Conv1d`` standing for ``nn.Conv2d`` (the same weight shapes and initialisation).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
import torch
from torch import nn

from linearcast.models import build
from linearcast.models.gwnet import GWNet
from linearcast.models.gwnet_config import double_transition

#: what the docs' numbers were measured against
REFERENCE = "nnzhan/Graph-WaveNet @ 6b162e80c59a1d494809252eca055cff93dc66b1 model.py, util.py"
#: our layer's module name -> the official ModuleList holding it
LAYER_MAP = {
    "filter_conv": "filter_convs",
    "gate_conv": "gate_convs",
    "residual_conv": "residual_convs",
    "skip_conv": "skip_convs",
    "bn": "bn",
    "gconv.mlp": "gconv",  # official: gconv[i].mlp.mlp
}


@dataclass(frozen=True)
class Case:
    """One comparison.

    Attributes:
        name: the case's label.
        model: ``gwnet`` (given graph) or ``gwnet-adaptive``.
        batch: B.
        num_nodes: N.
        graph: ``"pems"`` (binary, symmetric, no self-loops, as PEMS0x's adj_mx.pkl) or
            ``"directed"`` (weighted, asymmetric, a node without out-edges and one without
            in-edges: P ≠ Pᵀ everywhere, so a flipped diffusion direction cannot pass).
        in_steps: T_in.
        out_steps: T_out.
        overrides: our model options.
    """

    name: str
    model: str
    batch: int
    num_nodes: int
    graph: str = "pems"
    in_steps: int = 12
    out_steps: int = 12
    overrides: dict[str, Any] = field(default_factory=dict)


_SMALL = dict(residual_channels=8, dilation_channels=6, skip_channels=16, end_channels=24)
CASES = (
    Case("pems08-default", "gwnet", batch=2, num_nodes=170),  # the official PEMS08 model
    Case(
        "directed-3x3-diffusion3",  # receptive field 22 > 12 steps: 10 steps of padding
        "gwnet",
        batch=3,
        num_nodes=9,
        graph="directed",
        out_steps=5,
        overrides=dict(_SMALL, blocks=3, layers=3, adaptive_embedding_dim=4, diffusion_steps=3),
    ),
    Case(
        "supports-only-kernel3",  # official without --addaptadj
        "gwnet",
        batch=2,
        num_nodes=9,
        graph="directed",
        overrides=dict(_SMALL, kernel_size=3, blocks=2, adaptive_embedding_dim=0),
    ),
    Case(
        "long-window-16-steps",  # receptive field 4 < 16: the last of 13 positions
        "gwnet",
        batch=2,
        num_nodes=9,
        graph="directed",
        in_steps=16,
        out_steps=3,
        overrides=dict(_SMALL, blocks=1, input_dim=1),
    ),
    Case("adaptive-only", "gwnet-adaptive", batch=2, num_nodes=11, overrides=dict(_SMALL)),
    Case(
        "no-graph-tcn",  # official gcn_bool=False: the 1x1 residual convolutions
        "gwnet-adaptive",
        batch=2,
        num_nodes=5,
        overrides=dict(_SMALL, adaptive_embedding_dim=0),
    ),
)


def graph(kind: str, n: int) -> np.ndarray:
    """A fixed ``[n, n]`` test graph (see :class:`Case`)."""
    rng = np.random.default_rng(n)
    if kind == "pems":
        upper = np.triu((rng.random((n, n)) < 4.0 / n).astype(np.float32), 1)
        return upper + upper.T
    a = (rng.random((n, n)) < 0.4) * rng.uniform(0.1, 3.0, (n, n))
    a[0, :] = 0.0  # no out-edges: a zero row of D⁻¹A
    a[:, 1] = 0.0  # no in-edges: a zero row of D⁻¹Aᵀ
    return a.astype(np.float32)


def find_reference(ref: Path) -> Path | None:
    """The official ``model.py`` below ``ref`` (up to three folders down), or None."""
    candidates = [ref] if ref.is_file() else [ref / "model.py"]
    if ref.is_dir():
        for depth in ("*/model.py", "*/*/model.py", "*/*/*/model.py"):
            candidates += sorted(ref.glob(depth))
    for path in candidates:
        if path.name == "model.py" and path.is_file() and "class gwnet(" in path.read_text():
            return path
    return None


def load_reference(model_py: Path) -> types.ModuleType:
    """The official ``model`` module, its ``nn.Conv1d`` standing for ``nn.Conv2d``."""
    module = common.module_from_file(model_py, "gwnet")
    shim = types.ModuleType("nn_conv1d_as_conv2d")
    shim.__dict__.update(vars(nn))
    shim.Conv1d = nn.Conv2d  # type: ignore[attr-defined]
    module.nn = shim  # type: ignore[attr-defined]
    return module


def reference_name(ours: str) -> str:
    """The official name of our parameter or buffer ``ours``."""
    parts = ours.split(".")
    if parts[0] != "layers":
        return ours
    i, rest = parts[1], ".".join(parts[2:])
    for prefix, theirs in LAYER_MAP.items():
        if rest.startswith(prefix + "."):
            tail = rest[len(prefix) + 1 :]
            return f"{theirs}.{i}.mlp.mlp.{tail}" if theirs == "gconv" else f"{theirs}.{i}.{tail}"
    raise KeyError(f"no reference name for {ours!r}")


def _build_pair(module: types.ModuleType, case: Case) -> tuple[GWNet, nn.Module, bool]:
    """Both models from seed 0 (ours with dropout 0), both float64, and whether the reference
    was built as the official code builds it (its adaptive embedding width is a literal 10)."""
    adjacency = graph(case.graph, case.num_nodes) if case.model == "gwnet" else None
    kwargs = dict(case.overrides, dropout=0.0)
    if adjacency is not None:
        kwargs["adjacency"] = adjacency
    torch.manual_seed(0)
    ours = build(
        case.model,
        num_nodes=case.num_nodes,
        in_steps=case.in_steps,
        out_steps=case.out_steps,
        **kwargs,
    ).to(common.DTYPE)
    assert isinstance(ours, GWNet)
    c = ours.config
    supports = ours.supports()[: ours.num_given] or None
    gcn_defaults = module.gcn.__init__.__defaults__
    module.gcn.__init__.__defaults__ = (3, c.diffusion_steps)  # the official `order` argument
    try:
        torch.manual_seed(0)
        theirs = module.gwnet(
            "cpu",
            case.num_nodes,
            dropout=0.0,
            supports=supports,
            gcn_bool=supports is not None or c.adaptive_embedding_dim > 0,
            addaptadj=c.adaptive_embedding_dim > 0,
            aptinit=None,
            in_dim=c.input_dim,
            out_dim=case.out_steps,
            residual_channels=c.residual_channels,
            dilation_channels=c.dilation_channels,
            skip_channels=c.skip_channels,
            end_channels=c.end_channels,
            kernel_size=c.kernel_size,
            blocks=c.blocks,
            layers=c.layers,
        )
    finally:
        module.gcn.__init__.__defaults__ = gcn_defaults
    as_built = c.adaptive_embedding_dim in (0, 10)
    if not as_built:  # resize the embeddings before our weights are copied in
        theirs.nodevec1 = nn.Parameter(torch.empty(case.num_nodes, c.adaptive_embedding_dim))
        theirs.nodevec2 = nn.Parameter(torch.empty(c.adaptive_embedding_dim, case.num_nodes))
    return ours, theirs.to(common.DTYPE), as_built


def compare(module: types.ModuleType, case: Case) -> dict[str, Any]:
    """Run one case; returns the JSON-able record (shapes, init, max |Δ|s)."""
    ours, theirs, as_built = _build_pair(module, case)
    ours_s, theirs_s = ours.state_dict(), theirs.state_dict()
    pairs = common.pair_names(
        [k for k in ours_s if not k.startswith("support_")], theirs_s, reference_name
    )
    # None: the reference's resized embeddings were never initialised
    init = common.initial_diff(ours_s, theirs_s, pairs) if as_built else None
    theirs.load_state_dict({t: ours_s[o] for o, t in pairs.items()})
    ours.train(), theirs.train()

    x = common.traffic_input(case.batch, case.in_steps, case.num_nodes)  # (B, T, N, 3)
    x_ours, x_theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    c = ours.config
    out_ours = ours(x_ours)  # (B, T_out, N, 1)
    out_theirs = theirs(x_theirs[..., : c.input_dim].permute(0, 3, 2, 1))  # (B, T_out, N, T')
    out_theirs = out_theirs[..., -1:]  # T' = 1 unless the window exceeds the receptive field
    common.backward(common.cotangent(out_ours.shape), out_ours, out_theirs)

    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    grads, no_grad = common.grad_diffs(
        ours_p, theirs_p, {k: pairs[k] for k in ours_p}, unused_ok=True
    )
    stats = [k for k in pairs if "running_" in k]
    ours_s, theirs_s = ours.state_dict(), theirs.state_dict()
    with torch.no_grad():
        eval_ours = ours.eval()(x)
        eval_theirs = theirs.eval()(x[..., : c.input_dim].permute(0, 3, 2, 1))[..., -1:]
    return {
        "case": case.name,
        "model": case.model,
        "graph": case.graph if case.model == "gwnet" else None,
        "input_shape": list(x.shape),
        "output_shape": list(out_ours.shape),
        "overrides": case.overrides,
        "receptive_field": c.receptive_field,
        "parameters": sum(p.numel() for p in ours_p.values()),
        "same_initial_weights_max_abs_diff": init,
        **common.output_and_grad_diffs(
            (out_ours, out_theirs), (x_ours.grad, x_theirs.grad), grads, ours_p.values()
        ),
        "no_grad_in_both": no_grad,
        "bn_running_stats_max_abs_diff": max(
            common.max_abs_diff(ours_s[k], theirs_s[pairs[k]]) for k in stats
        ),
        "eval_output_max_abs_diff": common.max_abs_diff(eval_ours, eval_theirs),
    }


def compare_supports(model_py: Path) -> dict[str, Any] | None:
    """Our ``[D⁻¹A, D⁻¹Aᵀ]`` against the official ``util.asym_adj`` (float32 both), or None
    when ``util.py`` or scipy is missing."""
    util_py = model_py.with_name("util.py")
    if not util_py.is_file() or importlib.util.find_spec("scipy") is None:
        return None
    util = common.module_from_file(util_py, "gwnet_util")
    out = {}
    for kind in ("pems", "directed"):
        a = graph(kind, 170)
        ours = double_transition(a, 170)
        with np.errstate(divide="ignore"):  # the official d_inv of a row without edges
            theirs = [np.asarray(util.asym_adj(a)), np.asarray(util.asym_adj(np.transpose(a)))]
        out[kind] = max(float(np.abs(o.numpy() - t).max()) for o, t in zip(ours, theirs))
    return out


def run(ref: Path) -> dict[str, Any]:
    """All :data:`CASES` against the reference found below ``ref``."""
    model_py = find_reference(ref)
    if model_py is None:
        raise SystemExit(
            f"{ref}: found no model.py defining `class gwnet` up to three folders down; give "
            "--ref the folder of an nnzhan/Graph-WaveNet checkout."
        )
    module = load_reference(model_py)
    return {
        "reference": str(model_py),
        "written_against": REFERENCE,
        **common.environment(),
        "supports_vs_util_asym_adj_float32_max_abs_diff": compare_supports(model_py),
        "cases": [compare(module, case) for case in CASES],
    }


if __name__ == "__main__":
    sys.exit(common.main(__doc__, run))
