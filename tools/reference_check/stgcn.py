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

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

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
DTYPE = torch.float64


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


def _first(ref: Path, layouts: tuple[str, ...], *files: str) -> Path | None:
    for rel in layouts:
        d = ref / rel
        if all((d / f).is_file() for f in files):
            return d
    return None


def _package(name: str, folder: Path) -> None:
    """Register ``folder`` as the package ``name`` (so relative and ``from name import``
    imports of the reference work without touching ``sys.path``)."""
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        sys.modules[name] = importlib.util.module_from_spec(spec)


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_references(ref: Path) -> dict[str, dict[str, Any]]:
    """The references found below ``ref``: ``{"basicts": {...}, "hazdzz": {...}}`` (either may
    be missing; BasicTS's graph function is optional, then our normlap is used for both)."""
    found: dict[str, dict[str, Any]] = {}
    arch = _first(ref, BASICTS_ARCH, "stgcn_arch.py", "stgcn_layers.py")
    if arch is not None:
        pkg = f"_linearcast_ref_stgcn_basicts_{abs(hash(str(arch.resolve())))}"
        _package(pkg, arch)
        cls = importlib.import_module(f"{pkg}.stgcn_arch").STGCNChebGraphConv
        utils = _first(ref, BASICTS_UTILS, "adjacent_matrix_norm.py")
        norm = _module(f"{pkg}_norm", utils / "adjacent_matrix_norm.py") if utils else None
        found["basicts"] = {"dir": str(arch), "cls": cls, "norm": norm}
    root = _first(ref, HAZDZZ_ROOTS, "model/models.py", "model/layers.py", "script/utility.py")
    if root is not None:
        _package("model", root / "model")  # hazdzz's models.py does `from model import layers`
        models = importlib.import_module("model.models")
        utility = _module("_linearcast_ref_stgcn_hazdzz_utility", root / "script/utility.py")
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


def _run(ours: STGCN, theirs: nn.Module, case: Case, train: bool) -> dict[str, Any]:
    """One forward and backward of both models; max |Δ|s."""
    c = ours.config
    g = torch.Generator().manual_seed(1)
    x = torch.randn(case.batch, case.in_steps, case.num_nodes, case.in_channels, generator=g)
    x = x.to(DTYPE) + torch.linspace(0, 2, case.in_steps, dtype=DTYPE)[None, :, None, None]
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
    w = torch.randn(out_ours.shape, generator=torch.Generator().manual_seed(2), dtype=DTYPE)
    (out_ours * w).sum().backward()
    (out_theirs * w).sum().backward()
    theirs_p = dict(theirs.named_parameters())
    grads: dict[str, float | None] = {}
    for k, p in ours.named_parameters():
        q = theirs_p[reference_name(k)]
        if p.grad is None or q.grad is None:
            # only the Align convs the reference never calls: no gradient on either side
            assert p.grad is None and (q.grad is None or not q.grad.any()), k
            grads[k] = None
            continue
        grads[k] = (p.grad.reshape(-1) - q.grad.reshape(-1)).abs().max().item()
    assert x_ours.grad is not None and x_theirs.grad is not None
    used = [v for v in grads.values() if v is not None]
    return {
        "output_shape": list(out_ours.shape),
        "output_max_abs_diff": (out_ours - out_theirs).abs().max().item(),
        "output_max_abs": out_ours.abs().max().item(),
        "grad_max_abs_diff": max(used),
        "grad_max_abs": max(
            p.grad.abs().max().item() for p in ours.parameters() if p.grad is not None
        ),
        "input_grad_max_abs_diff": (x_ours.grad[..., : c.input_dim] - x_theirs.grad)
        .abs()
        .max()
        .item(),
        "params_without_grad_both": [k for k, v in grads.items() if v is None],
        "grad_max_abs_diff_by_param": grads,
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
    mapped = {reference_name(k): k for k in ours_p}
    if set(mapped) != set(theirs_p):
        raise SystemExit(f"name map mismatch: ours {sorted(mapped)} vs {sorted(theirs_p)}")
    init = max((ours_p[k] - theirs_p[r]).abs().max().item() for r, k in mapped.items())
    with torch.no_grad():
        for r, k in mapped.items():
            theirs_p[r].copy_(ours_p[k])
    ours.to(DTYPE)
    theirs.to(DTYPE)
    ours.gso = ours_gso  # the float64 operator, not the float32 buffer cast up
    return {
        "case": case.name,
        "reference": REFERENCES[case.reference],
        "input_shape": [case.batch, case.in_steps, case.num_nodes, case.in_channels],
        "overrides": case.overrides,
        "parameters": sum(p.numel() for p in ours_p.values()),
        "reference_parameters": sum(p.numel() for p in theirs_p.values()),
        "same_initial_weights_max_abs_diff": init,
        "graph_operator_max_abs_diff": (ours_gso - theirs_gso).abs().max().item(),
        "eval": _run(ours, theirs, case, train=False),
        "train": _run(ours, theirs, case, train=True),
    }


def run(ref: Path) -> dict[str, Any]:
    """Every case whose reference is found below ``ref``."""
    refs = find_references(ref)
    if "basicts" not in refs:
        raise SystemExit(
            f"{ref}: found no stgcn_arch.py and stgcn_layers.py in any of "
            f"{', '.join(BASICTS_ARCH)}; give --ref the folder that holds BasicTS's STGCN."
        )
    return {
        "reference_dirs": {k: v["dir"] for k, v in refs.items()},
        "basicts_graph_function": refs["basicts"]["norm"] is not None,
        "dtype": "float64",
        "torch": torch.__version__,
        "cases": [compare(refs, case) for case in CASES if case.reference in refs],
    }


def worst(report: dict[str, Any]) -> float:
    """The largest output, gradient or operator difference of a report."""
    keys = ("output_max_abs_diff", "grad_max_abs_diff", "input_grad_max_abs_diff")
    return max(
        max(c["graph_operator_max_abs_diff"], *(c[m][k] for m in ("eval", "train") for k in keys))
        for c in report["cases"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default=os.environ.get("LINEARCAST_REFERENCE_DIR"))
    parser.add_argument("--tol", type=float, default=1e-12)
    args = parser.parse_args(argv)
    if not args.ref:
        parser.error("give --ref DIR or set LINEARCAST_REFERENCE_DIR")
    torch.set_num_threads(1)
    report = run(Path(args.ref))
    print(json.dumps(report, indent=1))
    return int(worst(report) > args.tol)


if __name__ == "__main__":
    sys.exit(main())
