"""Compare linearcast's AGCRN with the official code (LeiBAI/AGCRN) in float64.

The official code is not part of this repository. Get it at the commit we checked against and
point this script at the checkout's root (the folder holding ``model/AGCRN.py``)::

    git clone https://github.com/LeiBAI/AGCRN /tmp/AGCRN
    git -C /tmp/AGCRN checkout 7fbbf2aeb099242098a3cf482b55cd45d7295c28
    .venv/bin/python tools/reference_check/agcrn.py --ref /tmp/AGCRN
    # or: LINEARCAST_REFERENCE_DIR=/tmp/AGCRN .venv/bin/python tools/reference_check/agcrn.py

For each small configuration both models are built in float64 with the same weights (ours copied
into theirs through :data:`NAME_MAP`), run forward on the same input and backward from the same
random cotangent; the script prints, as JSON, the max |Δ| of the outputs, of every parameter's
gradient and of the input's gradient, and whether one seed gives both models the same initial
weights (their initialisation is the loop in the official ``model/Run.py``, repeated here).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _common as common
import torch
from torch import nn

from linearcast.models.agcrn import AGCRN, AGCRNConfig

COMMIT = "7fbbf2aeb099242098a3cf482b55cd45d7295c28"

#: small configurations that still reach every path: Chebyshev supports beyond S (cheb_k 3),
#: more input and output channels than one (the predictor's t·C + c channel order), one layer
CONFIGS: dict[str, dict[str, int]] = {
    "default-k2": dict(num_nodes=7, in_steps=12, out_steps=12, input_dim=1, output_dim=1,
                       rnn_units=8, num_layers=2, embed_dim=3, cheb_k=2),
    "k3-io2": dict(num_nodes=9, in_steps=6, out_steps=5, input_dim=2, output_dim=2,
                   rnn_units=6, num_layers=3, embed_dim=2, cheb_k=3),
    "k4-one-layer": dict(num_nodes=5, in_steps=4, out_steps=3, input_dim=3, output_dim=1,
                         rnn_units=4, num_layers=1, embed_dim=4, cheb_k=4),
}  # fmt: skip
#: the published sizes (PEMS08, N = 170; d = 2 as the official PEMSD8 config), with --full
FULL_CONFIGS: dict[str, dict[str, int]] = {
    "pems08-d2": dict(num_nodes=170, in_steps=12, out_steps=12, input_dim=1, output_dim=1,
                      rnn_units=64, num_layers=2, embed_dim=2, cheb_k=2),
    "pems08-d10": dict(num_nodes=170, in_steps=12, out_steps=12, input_dim=1, output_dim=1,
                       rnn_units=64, num_layers=2, embed_dim=10, cheb_k=2),
}  # fmt: skip
BATCH = 3


def name_map(num_layers: int) -> dict[str, str]:
    """Our parameter name → the official one."""
    names = {"node_embeddings": "node_embeddings", "predictor.bias": "end_conv.bias"}
    names["predictor.weight"] = "end_conv.weight"
    for i in range(num_layers):
        for conv in ("gate", "update"):
            for pool in ("weights_pool", "bias_pool"):
                names[f"cells.{i}.{conv}.{pool}"] = f"encoder.dcrnn_cells.{i}.{conv}.{pool}"
    return names


def load_reference(ref_dir: str | os.PathLike[str]) -> type[nn.Module]:
    """The official ``AGCRN`` class from the checkout at ``ref_dir``."""
    root = Path(ref_dir)
    if not (root / "model" / "AGCRN.py").is_file():
        raise SystemExit(f"{root} has no model/AGCRN.py: give the AGCRN checkout's root folder")
    with common.checkout_importable(root, "model"):  # the official modules import model.*
        module = importlib.import_module("model.AGCRN")
    cls: type[nn.Module] = module.AGCRN
    return cls


def _official_args(c: dict[str, int]) -> SimpleNamespace:
    return SimpleNamespace(
        num_nodes=c["num_nodes"], input_dim=c["input_dim"], rnn_units=c["rnn_units"],
        output_dim=c["output_dim"], horizon=c["out_steps"], num_layers=c["num_layers"],
        default_graph=True, embed_dim=c["embed_dim"], cheb_k=c["cheb_k"],
    )  # fmt: skip


def _official_init(model: nn.Module) -> None:
    # model/Run.py, after building the model
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
        else:
            nn.init.uniform_(p)


def compare(ref_cls: type[nn.Module], c: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """Build both models for config ``c`` and return the max |Δ| of everything compared."""
    with common.default_float64():
        torch.manual_seed(seed)
        ours = AGCRN(AGCRNConfig(**c)).to(common.DTYPE)
        torch.manual_seed(seed)
        theirs = ref_cls(_official_args(c)).to(common.DTYPE)
        _official_init(theirs)
    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    pairs = common.pair_names(ours_p, theirs_p, name_map(c["num_layers"]).__getitem__)
    same_init = all(
        torch.equal(ours_p[o].detach().reshape(-1), theirs_p[t].detach().reshape(-1))
        for o, t in pairs.items()
    )
    common.copy_weights(ours_p, theirs_p, pairs)

    g = torch.Generator().manual_seed(seed + 1)
    b, n = BATCH, c["num_nodes"]
    x = torch.randn(b, c["in_steps"], n, c["input_dim"], generator=g, dtype=common.DTYPE)
    cotangent = torch.randn(b, c["out_steps"], n, c["output_dim"], generator=g, dtype=common.DTYPE)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours = ours(x_ours)
    with common.default_float64():
        out_theirs = theirs(x_theirs, None, teacher_forcing_ratio=0.0)
    assert out_ours.shape == out_theirs.shape, (out_ours.shape, out_theirs.shape)
    common.backward(cotangent, out_ours, out_theirs)

    grads, _ = common.grad_diffs(ours_p, theirs_p, pairs)
    assert x_ours.grad is not None and x_theirs.grad is not None
    return {
        "config": c,
        "batch": b,
        "output_shape": list(out_ours.shape),
        "output_max_abs": float(out_theirs.detach().abs().max()),
        "max_abs_diff_output": common.max_abs_diff(out_ours, out_theirs),
        "max_abs_diff_grad": max(grads.values()),
        "max_abs_diff_grad_input": common.max_abs_diff(x_ours.grad, x_theirs.grad),
        "grad_max_abs": common.largest_grad(theirs_p.values()),
        "max_abs_diff_grad_by_parameter": grads,
        "same_initial_weights_for_one_seed": same_init,
    }


def run(ref_dir: str | os.PathLike[str], *, full: bool = False) -> dict[str, Any]:
    """Every configuration of :data:`CONFIGS` (and :data:`FULL_CONFIGS` with ``full``), and
    the max |Δ| over all of them."""
    ref_cls = load_reference(ref_dir)
    configs = {**CONFIGS, **(FULL_CONFIGS if full else {})}
    cases = {name: compare(ref_cls, c) for name, c in configs.items()}
    return {
        "reference": f"LeiBAI/AGCRN@{COMMIT}",
        **common.environment(),
        "max_abs_diff_output": max(r["max_abs_diff_output"] for r in cases.values()),
        "max_abs_diff_grad": max(
            max(r["max_abs_diff_grad"], r["max_abs_diff_grad_input"]) for r in cases.values()
        ),
        "cases": cases,
    }


def main(argv: list[str] | None = None) -> None:
    """The command line: ``--ref DIR`` and ``--full``; prints the report (exit status 0)."""
    p = common.parser(__doc__, ref_help=f"checkout (or ${common.ENV_VAR})")
    p.add_argument("--full", action="store_true", help="also the PEMS08-size models")
    args = common.parse_args(
        p, argv, missing=f"give the official AGCRN checkout with --ref DIR or ${common.ENV_VAR}"
    )
    common.print_report(run(args.ref, full=args.full))


if __name__ == "__main__":
    main()
