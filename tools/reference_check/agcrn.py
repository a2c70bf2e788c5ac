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

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor, nn

from linearcast.models.agcrn import AGCRN, AGCRNConfig

COMMIT = "7fbbf2aeb099242098a3cf482b55cd45d7295c28"
ENV_VAR = "LINEARCAST_REFERENCE_DIR"
F64 = torch.float64

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


@contextmanager
def _default_float64() -> Iterator[None]:
    # the official code makes torch.eye and the zero state in the default dtype
    before = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def load_reference(ref_dir: str | os.PathLike[str]) -> type[nn.Module]:
    """The official ``AGCRN`` class from the checkout at ``ref_dir``."""
    root = Path(ref_dir)
    if not (root / "model" / "AGCRN.py").is_file():
        raise SystemExit(f"{root} has no model/AGCRN.py: give the AGCRN checkout's root folder")
    # the official modules import each other as model.*; another reference checked in the same
    # process may have its own top-level "model" (Graph WaveNet's model.py), so set it aside
    clash = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == "model"}
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("model.AGCRN")
    finally:
        sys.path.remove(str(root))
        for k in [k for k in sys.modules if k.split(".")[0] == "model"]:
            del sys.modules[k]
        sys.modules.update(clash)
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


def _max_abs(a: Tensor, b: Tensor) -> float:
    return float((a - b).detach().abs().max())


def compare(ref_cls: type[nn.Module], c: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """Build both models for config ``c`` and return the max |Δ| of everything compared."""
    names = name_map(c["num_layers"])
    with _default_float64():
        torch.manual_seed(seed)
        ours = AGCRN(AGCRNConfig(**c)).to(F64)
        torch.manual_seed(seed)
        theirs = ref_cls(_official_args(c)).to(F64)
        _official_init(theirs)
    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert set(names) == set(ours_p) and set(names.values()) == set(theirs_p), "name map"
    same_init = all(
        torch.equal(ours_p[o].detach().reshape(-1), theirs_p[t].detach().reshape(-1))
        for o, t in names.items()
    )
    with torch.no_grad():
        for o, t in names.items():
            theirs_p[t].copy_(ours_p[o].reshape(theirs_p[t].shape))

    g = torch.Generator().manual_seed(seed + 1)
    b, n = BATCH, c["num_nodes"]
    x = torch.randn(b, c["in_steps"], n, c["input_dim"], generator=g, dtype=F64)
    cotangent = torch.randn(b, c["out_steps"], n, c["output_dim"], generator=g, dtype=F64)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours = ours(x_ours)
    with _default_float64():
        out_theirs = theirs(x_theirs, None, teacher_forcing_ratio=0.0)
    assert out_ours.shape == out_theirs.shape, (out_ours.shape, out_theirs.shape)
    (out_ours * cotangent).sum().backward()
    (out_theirs * cotangent).sum().backward()

    grads: dict[str, float] = {}
    for o, t in names.items():
        go, gt = ours_p[o].grad, theirs_p[t].grad
        assert go is not None and gt is not None, o
        grads[o] = _max_abs(go.reshape(gt.shape), gt)
    assert x_ours.grad is not None and x_theirs.grad is not None
    return {
        "config": c,
        "batch": b,
        "output_shape": list(out_ours.shape),
        "output_max_abs": float(out_theirs.detach().abs().max()),
        "max_abs_diff_output": _max_abs(out_ours, out_theirs),
        "max_abs_diff_grad": max(grads.values()),
        "max_abs_diff_grad_input": _max_abs(x_ours.grad, x_theirs.grad),
        "grad_max_abs": max(
            float(p.grad.abs().max()) for p in theirs_p.values() if p.grad is not None
        ),
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
        "dtype": "float64",
        "torch": torch.__version__,
        "max_abs_diff_output": max(r["max_abs_diff_output"] for r in cases.values()),
        "max_abs_diff_grad": max(
            max(r["max_abs_diff_grad"], r["max_abs_diff_grad_input"]) for r in cases.values()
        ),
        "cases": cases,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default=os.environ.get(ENV_VAR), help=f"checkout (or ${ENV_VAR})")
    parser.add_argument("--full", action="store_true", help="also the PEMS08-size models")
    args = parser.parse_args(argv)
    if not args.ref:
        parser.error(f"give the official AGCRN checkout with --ref DIR or ${ENV_VAR}")
    torch.set_num_threads(1)
    print(json.dumps(run(args.ref, full=args.full), indent=1))


if __name__ == "__main__":
    main()
