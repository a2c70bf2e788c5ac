"""Compare linearcast's STID with the official code (or BasicTS's port), weights shared, float64.

    .venv/bin/python tools/reference_check/stid.py --ref DIR   # or LINEARCAST_REFERENCE_DIR=DIR

DIR holds the reference's ``stid_arch.py`` and ``mlp.py`` (never committed here): a checkout of
GestaltCogTeam/STID (``stid/arch/``), of BasicTS v0.5.8 (``baselines/STID/arch/``), a folder
holding one of those, or the two files themselves. For each case the script builds both models
from one seed (and reports whether the initial weights agree), copies ours into theirs by
:data:`NAME_MAP`, runs both in float64 on the same inputs (eval mode: the reference's dropout
rate is hard-coded), back-propagates ``sum(out · g)`` for a fixed random ``g`` and prints, as
JSON, max |Δ| of the outputs, of every parameter's gradient and of the input's gradient. Exit
status 1 when a difference exceeds ``--tol``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import torch
from torch import nn

from linearcast.models import build
from linearcast.models.stid import STID, STIDConfig

#: what the docs' numbers were measured against
REFERENCES = {
    "official": "GestaltCogTeam/STID @ 10563014eb025a1a406eefc8b533b6889df359a8 stid/arch/",
    "basicts": "GestaltCogTeam/BasicTS @ 63fa7192a94c7a59519c0a891f0ad9622f3da37c "
    "baselines/STID/arch/",
}
#: where ``stid_arch.py`` may lie below ``--ref``
LAYOUTS = (
    ".",
    "arch",
    "stid/arch",
    "STID/stid/arch",
    "stid/stid/arch",
    "STID/arch",
    "baselines/STID/arch",
    "BasicTS/baselines/STID/arch",
    "official/stid/arch",
    "basicts/baselines/STID/arch",
)
ARCH_FILES = ("stid_arch.py", "mlp.py")
#: our parameter name prefix -> the reference's (the rest of the name is the same)
NAME_MAP = {
    "node_emb": "node_emb",
    "tod_emb": "time_in_day_emb",
    "dow_emb": "day_in_week_emb",
    "series_emb.": "time_series_emb_layer.",
    "encoder.": "encoder.",
    "regression.": "regression_layer.",
}


@dataclass(frozen=True)
class Case:
    """One comparison: the batch, the shape and our overrides (0 width = identity off)."""

    name: str
    batch: int
    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    overrides: dict[str, Any] = field(default_factory=dict)


CASES = (
    Case("pems08-default", batch=2, num_nodes=170),  # the official PEMS08 model
    Case(
        "small",
        batch=3,
        num_nodes=7,
        out_steps=5,
        overrides=dict(
            input_embedding_dim=8,
            spatial_embedding_dim=6,
            tod_embedding_dim=6,
            dow_embedding_dim=6,
            num_layers=2,
        ),
    ),
    Case(
        "ablation-no-node-no-tod-input_dim1-144steps",
        batch=2,
        num_nodes=5,
        out_steps=3,
        overrides=dict(
            steps_per_day=144,
            input_dim=1,
            input_embedding_dim=8,
            spatial_embedding_dim=0,
            tod_embedding_dim=0,
            dow_embedding_dim=6,
            num_layers=1,
        ),
    ),
)


def find_arch_dir(ref: Path) -> Path | None:
    """The folder below ``ref`` that holds ``stid_arch.py`` and ``mlp.py`` (None if none)."""
    return common.find_folder(ref, LAYOUTS, *ARCH_FILES)


def load_reference(arch_dir: Path) -> type[nn.Module]:
    """The reference ``STID`` class, imported as a package so its relative import works."""
    cls: type[nn.Module] = common.module_from_folder(arch_dir, "stid_arch", "stid").STID
    return cls


def reference_kwargs(case: Case, c: STIDConfig) -> dict[str, Any]:
    """The reference's ``model_args`` for our model's config ``c``.

    An identity that is off gets the other time identity's width: the official hidden-width
    formula swaps the two time widths, so with equal widths both formulas give our width.
    """
    tid, diw = c.tod_embedding_dim, c.dow_embedding_dim
    return {
        "num_nodes": case.num_nodes,
        "node_dim": c.spatial_embedding_dim or 1,
        "input_len": case.in_steps,
        "input_dim": c.input_dim,
        "embed_dim": c.input_embedding_dim,
        "output_len": case.out_steps,
        "num_layer": c.num_layers,
        "temp_dim_tid": tid or diw or 1,
        "temp_dim_diw": diw or tid or 1,
        "time_of_day_size": c.steps_per_day,
        "day_of_week_size": 7,
        "if_node": c.spatial_embedding_dim > 0,
        "if_T_i_D": tid > 0,
        "if_D_i_W": diw > 0,
    }


def reference_name(ours: str) -> str:
    """The reference's name of our parameter ``ours`` (by :data:`NAME_MAP`)."""
    for prefix, theirs in NAME_MAP.items():
        if ours.startswith(prefix):
            return theirs + ours[len(prefix) :]
    raise KeyError(f"no reference name for parameter {ours!r}")


def compare(reference: type[nn.Module], case: Case) -> dict[str, Any]:
    """Run one case; returns the JSON-able record (shapes, init, max |Δ|s)."""
    torch.manual_seed(0)
    ours = build(
        "stid",
        num_nodes=case.num_nodes,
        in_steps=case.in_steps,
        out_steps=case.out_steps,
        dropout=0.0,
        **case.overrides,
    )
    assert isinstance(ours, STID)
    torch.manual_seed(0)
    theirs = reference(**reference_kwargs(case, ours.config))
    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    pairs = common.pair_names(ours_p, theirs_p, reference_name)
    init = common.initial_diff(ours_p, theirs_p, pairs)
    common.copy_weights(ours_p, theirs_p, pairs)
    ours, theirs = ours.to(common.DTYPE).eval(), theirs.to(common.DTYPE).eval()

    x = common.traffic_input(case.batch, case.in_steps, case.num_nodes, ours.config.steps_per_day)
    target, time = x[..., 0], x[..., 1:]  # time of day k / steps_per_day, day of week 0..6
    x_ours = target.clone().requires_grad_(True)
    x_theirs = target.clone().requires_grad_(True)
    # BasicTS stores the day of week as d/7; ours carries the index d
    time_theirs = torch.stack([time[..., 0], time[..., 1] / 7], dim=-1)
    out_ours = ours(torch.cat([x_ours[..., None], time], dim=-1))
    out_theirs = theirs(
        history_data=torch.cat([x_theirs[..., None], time_theirs], dim=-1),
        future_data=None,
        batch_seen=0,
        epoch=0,
        train=False,
    )
    common.backward(common.cotangent(out_ours.shape), out_ours, out_theirs)
    grads, _ = common.grad_diffs(ours_p, theirs_p, pairs)
    return {
        "case": case.name,
        "input_shape": [case.batch, case.in_steps, case.num_nodes, 3],
        "output_shape": list(out_ours.shape),
        "overrides": case.overrides,
        "parameters": sum(p.numel() for p in ours_p.values()),
        "same_initial_weights_max_abs_diff": init,
        **common.output_and_grad_diffs(
            (out_ours, out_theirs), (x_ours.grad, x_theirs.grad), grads, ours_p.values()
        ),
    }


def run(ref: Path) -> dict[str, Any]:
    """All :data:`CASES` against the reference found below ``ref``."""
    arch = find_arch_dir(ref)
    if arch is None:
        raise common.not_found(
            ref, LAYOUTS, ARCH_FILES, "the folder that holds the reference's STID arch files"
        )
    reference = load_reference(arch)
    return {
        "reference_dir": str(arch),
        "written_against": REFERENCES,
        **common.environment(),
        "cases": [compare(reference, case) for case in CASES],
    }


if __name__ == "__main__":
    sys.exit(common.main(__doc__, run))
