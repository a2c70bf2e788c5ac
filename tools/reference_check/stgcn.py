"""Compare linearcast's STGCN with BasicTS's port and with hazdzz/STGCN, weights shared, float64.

    .venv/bin/python tools/reference_check/stgcn.py --ref DIR   # or LINEARCAST_REFERENCE_DIR=DIR

DIR holds the reference code (never committed here), in the layout of its repository:

- BasicTS v0.5.8 (GestaltCogTeam/BasicTS @ 63fa719): ``stgcn_arch.py`` + ``stgcn_layers.py``
  (``baselines/STGCN/arch/``), and for the graph ``adjacent_matrix_norm.py``
  (``basicts/utils/``); a checkout of BasicTS, a folder ``BasicTS/`` holding one, or the files.
- hazdzz/STGCN @ 10d7d8d (optional): ``model/models.py``, ``model/layers.py``,
  ``script/utility.py`` in a checkout or a folder ``STGCN/`` below DIR.

For each case both models are built from one seed (the script reports whether the initial
weights agree), ours are copied into theirs by :func:`reference_name`, each model gets the graph
operator its own code computes from the same adjacency (the max |Δ| between the two operators is
reported), and both run in float64 on the same input: eval mode, and train mode with dropout
from one seed (the masks are drawn in the same order). ``sum(out · g)`` for a fixed random ``g``
is back-propagated; the JSON gives max |Δ| of the outputs, of every parameter's gradient and of
the input's gradient. Exit status 1 when a difference exceeds ``--tol``.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _common as common
import numpy as np
import torch
from torch import Tensor, nn

from linearcast.models import build
from linearcast.models.stgcn import STGCN, graph_operator

REFERENCES = {
    "basicts": "GestaltCogTeam/BasicTS @ 63fa7192a94c7a59519c0a891f0ad9622f3da37c "
    "baselines/STGCN/arch/, basicts/utils/adjacent_matrix_norm.py",
    "hazdzz": "hazdzz/STGCN @ 10d7d8d6902c7abc994a9a1edccaeb229ac7689a model/, script/utility.py",
}
BASICTS_ARCH = (".", "arch", "baselines/STGCN/arch", "BasicTS/baselines/STGCN/arch")
BASICTS_ARCH_FILES = ("stgcn_arch.py", "stgcn_layers.py")
BASICTS_UTILS = (".", "utils", "basicts/utils", "BasicTS/basicts/utils")
HAZDZZ_ROOTS = (".", "STGCN", "hazdzz")
#: our parameter name -> the reference's, applied in order (same for BasicTS and hazdzz)
NAME_RULES = (
    (r"^blocks\.", "st_blocks."),
    (r"\.tconv1\.", ".tmp_conv1."),
    (r"\.tconv2\.", ".tmp_conv2."),
    (r"\.tconv\.", ".tmp_conv1."),
    (r"\.gconv\.align\.", ".graph_conv.align.align_conv."),
    (r"\.gconv\.(weight|bias)$", r".graph_conv.cheb_graph_conv.\1"),
    (r"\.tmp_conv(\d)\.align\.", r".tmp_conv\1.align.align_conv."),
    (r"\.tmp_conv(\d)\.conv\.", r".tmp_conv\1.causal_conv."),
    (r"^(st_blocks\.\d+)\.norm\.", r"\1.tc2_ln."),
    (r"^output\.norm\.", "output.tc1_ln."),
)


@dataclass(frozen=True)
class Case:
    """One comparison.

    Attributes:
        name: the case's name in the JSON.
        reference: ``"basicts"`` or ``"hazdzz"``.
        batch, num_nodes, in_steps, out_steps: the shape.
        graph: ``"pems"`` (binary, symmetric, no self-loops) or ``"weighted"`` (asymmetric
            weights in [0, 1] and a node without edges).
        overrides: our model options (the reference gets the same widths).
        in_channels: channels of our input; the reference sees the first ``input_dim``.
    """

    name: str
    reference: str
    batch: int
    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    graph: str = "pems"
    overrides: dict[str, Any] = field(default_factory=dict)
    in_channels: int = 1


CASES = (
    Case("basicts-pems08-default", "basicts", batch=2, num_nodes=170),
    Case(
        "basicts-weighted-directed-small",
        "basicts",
        batch=3,
        num_nodes=7,
        out_steps=5,
        graph="weighted",
        in_channels=3,
        overrides=dict(
            input_dim=2,
            temporal_kernel=2,
            cheb_k=4,
            num_blocks=3,
            temporal_channels=6,
            graph_channels=9,  # wider than the temporal convs: the zero-padding Align
            output_channels=5,  # narrower: the output block's 1×1 Align conv
            act_func="gtu",
        ),
    ),
    Case(
        "hazdzz-scaled-laplacian",
        "hazdzz",
        batch=2,
        num_nodes=20,
        graph="weighted",
        overrides=dict(laplacian="scaled", temporal_channels=16, graph_channels=8),
    ),
)


def find_references(ref: Path) -> dict[str, dict[str, Any]]:
    """The references found below ``ref``: ``{"basicts": {...}, "hazdzz": {...}}`` (either may
    be missing; BasicTS's graph function is optional, then our normlap is used for both)."""
    found: dict[str, dict[str, Any]] = {}
    arch = common.find_folder(ref, BASICTS_ARCH, *BASICTS_ARCH_FILES)
    if arch is not None:
        cls = common.module_from_folder(arch, "stgcn_arch", "stgcn_basicts").STGCNChebGraphConv
        utils = common.find_folder(ref, BASICTS_UTILS, "adjacent_matrix_norm.py")
        norm = (
            common.module_from_file(utils / "adjacent_matrix_norm.py", "stgcn_basicts_norm")
            if utils
            else None
        )
        found["basicts"] = {"dir": str(arch), "cls": cls, "norm": norm}
    root = common.find_folder(
        ref, HAZDZZ_ROOTS, "model/models.py", "model/layers.py", "script/utility.py"
    )
    if root is not None:
        with common.checkout_importable(root, "model"):  # models.py does `from model import layers`
            models = importlib.import_module("model.models")
        utility = common.module_from_file(root / "script/utility.py", "stgcn_hazdzz_utility")
        found["hazdzz"] = {"dir": str(root), "cls": models.STGCNChebGraphConv, "util": utility}
    return found


def reference_name(ours: str) -> str:
    """The reference's name of our parameter ``ours``."""
    name = ours
    for pattern, repl in NAME_RULES:
        name = re.sub(pattern, repl, name)
    return name


def adjacency(case: Case) -> np.ndarray:
    """The case's ``[N, N]`` graph (seeded)."""
    rng = np.random.default_rng(3)
    n = case.num_nodes
    if case.graph == "pems":
        a = np.triu((rng.random((n, n)) < 0.05).astype(np.float32), 1)
        a = a + a.T
        a[np.arange(n - 1), np.arange(1, n)] = a[np.arange(1, n), np.arange(n - 1)] = 1.0
        return a
    a = (rng.random((n, n)) * (rng.random((n, n)) < 0.4)).astype(np.float32)
    a[-1, :] = a[:, -1] = 0.0  # a node without edges: D^{-1/2} = 0 there
    return a


def reference_operator(case: Case, ref: dict[str, Any], adj: np.ndarray) -> np.ndarray:
    """The graph operator as the reference's own code computes it, in float64."""
    a = adj.astype(np.float64)
    if case.reference == "hazdzz":
        util = ref["util"]
        gso = util.calc_gso(a, "sym_norm_lap")
        return np.asarray(util.calc_chebynet_gso(gso).toarray(), dtype=np.float64)
    if ref["norm"] is None:
        return graph_operator(a, "normlap")
    lap = ref["norm"].calculate_symmetric_normalized_laplacian(a)
    return np.asarray(lap.toarray(), dtype=np.float64)


def _build_reference(case: Case, ref: dict[str, Any], model: STGCN, gso: Tensor) -> nn.Module:
    c = model.config
    blocks = [[c.input_dim]]
    blocks += [[c.temporal_channels, c.graph_channels, c.temporal_channels]] * c.num_blocks
    blocks += [[c.output_channels, c.output_channels], [c.out_steps * c.output_dim]]
    if case.reference == "hazdzz":
        args = SimpleNamespace(
            Kt=c.temporal_kernel, Ks=c.cheb_k, n_his=c.in_steps, act_func=c.act_func,
            graph_conv_type="cheb_graph_conv", gso=gso, enable_bias=True, droprate=c.dropout,
        )  # fmt: skip
        return ref["cls"](args, blocks, c.num_nodes)
    return ref["cls"](
        Kt=c.temporal_kernel, Ks=c.cheb_k, blocks=blocks, T=c.in_steps, n_vertex=c.num_nodes,
        act_func=c.act_func, graph_conv_type="cheb_graph_conv", gso=gso, bias=True,
        droprate=c.dropout,
    )  # fmt: skip


def _reference_forward(case: Case, theirs: nn.Module, x: Tensor) -> Tensor:
    """The reference's forecast as ``[B, T_out, N, 1]`` (``x: [B, T, N, C]``)."""
    if case.reference == "hazdzz":
        return theirs(x.permute(0, 3, 1, 2)).transpose(2, 3)
    out = theirs(history_data=x, future_data=None, batch_seen=0, epoch=0, train=theirs.training)
    return out


def _run(
    ours: STGCN, theirs: nn.Module, pairs: dict[str, str], case: Case, train: bool
) -> dict[str, Any]:
    """One forward and backward of both models; max |Δ|s."""
    c = ours.config
    g = torch.Generator().manual_seed(1)
    x = torch.randn(case.batch, case.in_steps, case.num_nodes, case.in_channels, generator=g)
    x = (
        x.to(common.DTYPE)
        + torch.linspace(0, 2, case.in_steps, dtype=common.DTYPE)[None, :, None, None]
    )
    x_ours = x.clone().requires_grad_(True)
    x_theirs = x[..., : c.input_dim].clone().requires_grad_(True)
    ours.train(train)
    theirs.train(train)
    for p in (*ours.parameters(), *theirs.parameters()):
        p.grad = None
    torch.manual_seed(7)  # the same dropout masks: drawn in the same order
    out_ours = ours(x_ours)
    torch.manual_seed(7)
    out_theirs = _reference_forward(case, theirs, x_theirs)
    common.backward(common.cotangent(out_ours.shape), out_ours, out_theirs)
    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    # only the Align convs the reference never calls have no gradient, on either side
    grads, unused = common.grad_diffs(ours_p, theirs_p, pairs, unused_ok=True)
    x_grad = x_ours.grad[..., : c.input_dim] if x_ours.grad is not None else None
    return {
        "output_shape": list(out_ours.shape),
        **common.output_and_grad_diffs(
            (out_ours, out_theirs), (x_grad, x_theirs.grad), grads, ours_p.values()
        ),
        "params_without_grad_both": unused,
        "grad_max_abs_diff_by_param": {k: grads.get(k) for k in ours_p},  # None: no gradient
    }


def compare(refs: dict[str, dict[str, Any]], case: Case) -> dict[str, Any]:
    """Run one case; returns the JSON-able record."""
    ref = refs[case.reference]
    adj = adjacency(case)
    theirs_gso = torch.from_numpy(reference_operator(case, ref, adj))
    ours_gso = torch.from_numpy(graph_operator(adj, case.overrides.get("laplacian", "normlap")))
    torch.manual_seed(0)
    ours = build(
        "stgcn", num_nodes=case.num_nodes, in_steps=case.in_steps, out_steps=case.out_steps,
        adjacency=adj, **case.overrides,
    )  # fmt: skip
    assert isinstance(ours, STGCN)
    torch.manual_seed(0)
    theirs = _build_reference(case, ref, ours, theirs_gso)
    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    pairs = common.pair_names(ours_p, theirs_p, reference_name)
    init = common.initial_diff(ours_p, theirs_p, pairs)
    common.copy_weights(ours_p, theirs_p, pairs)
    ours.to(common.DTYPE)
    theirs.to(common.DTYPE)
    ours.gso = ours_gso  # the float64 operator, not the float32 buffer cast up
    return {
        "case": case.name,
        "reference": REFERENCES[case.reference],
        "input_shape": [case.batch, case.in_steps, case.num_nodes, case.in_channels],
        "overrides": case.overrides,
        "parameters": sum(p.numel() for p in ours_p.values()),
        "reference_parameters": sum(p.numel() for p in theirs_p.values()),
        "same_initial_weights_max_abs_diff": init,
        "graph_operator_max_abs_diff": common.max_abs_diff(ours_gso, theirs_gso),
        "eval": _run(ours, theirs, pairs, case, train=False),
        "train": _run(ours, theirs, pairs, case, train=True),
    }


def run(ref: Path) -> dict[str, Any]:
    """Every case whose reference is found below ``ref``."""
    refs = find_references(ref)
    if "basicts" not in refs:
        raise common.not_found(
            ref, BASICTS_ARCH, BASICTS_ARCH_FILES, "the folder that holds BasicTS's STGCN"
        )
    return {
        "reference_dirs": {k: v["dir"] for k, v in refs.items()},
        "basicts_graph_function": refs["basicts"]["norm"] is not None,
        **common.environment(),
        "cases": [compare(refs, case) for case in CASES if case.reference in refs],
    }


def worst(report: dict[str, Any]) -> float:
    """The largest output, gradient or operator difference of a report."""
    runs = [c[mode] for c in report["cases"] for mode in ("eval", "train")]
    return max(
        common.largest_diff(report["cases"], ["graph_operator_max_abs_diff"]),
        common.largest_diff(runs),
    )


if __name__ == "__main__":
    sys.exit(common.main(__doc__, run, worst=worst))
