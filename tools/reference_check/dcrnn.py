"""Compare linearcast's DCRNN with chnsh/DCRNN_PyTorch, weights shared, float64.

    .venv/bin/python tools/reference_check/dcrnn.py --ref DIR   # or LINEARCAST_REFERENCE_DIR=DIR

DIR is a checkout of chnsh/DCRNN_PyTorch (branch ``pytorch_scratch``; never committed here), or a
folder holding one: the script needs its ``model/pytorch/dcrnn_{cell,model}.py`` and
``lib/utils.py``. That ``utils.py`` imports TensorFlow at the top for code the PyTorch model does
not call, so when TensorFlow is not installed an empty stand-in module is put in its place.

For each case both models are built in float64 on one graph (weighted and directed, or binary
and symmetric as PEMS04/08's; a node without edges in both), the reference's supports are
rebuilt with each value at its own index (:func:`fix_supports`: its sparse construction pairs
values with the wrong indices on weighted graphs; the size of that bug is reported), the
reference runs once to create its lazily made parameters, ours are copied into theirs by
:func:`reference_name`, and both run on the same inputs:

- ``eval``: the free-running decoder (what evaluation and forecasts use);
- ``train-mixed``: training mode with scheduled sampling at a clock where the teacher-forcing
  probability is 1/2, the same uniform draws fed to both (the reference's ``np.random.uniform``
  is replaced for the call), so some decoder steps take the truth and some the prediction;
- ``train-teacher``: every decoder step takes the truth (draws 0).

Each back-propagates ``sum(out · g)`` for a fixed random ``g``. The JSON gives max |Δ| of the
outputs, of every parameter's gradient and of the input's gradient, of the supports and of the
teacher-forcing probability. Exit status 1 when a difference exceeds ``--tol``.
"""

from __future__ import annotations

import importlib
import logging
import math
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
import torch
from torch import Tensor

from linearcast.models import build
from linearcast.models.dcrnn import DCRNN

REFERENCE = "chnsh/DCRNN_PyTorch @ d92490b808ba5c5be2f23d427d96e9a56b066d7f (pytorch_scratch)"
#: where ``model/pytorch/dcrnn_model.py`` may lie below ``--ref``
LAYOUTS = (".", "DCRNN_PyTorch", "chnsh/DCRNN_PyTorch", "dcrnn")
FILES = ("model/pytorch/dcrnn_model.py", "lib/utils.py")
TAU = 2000
#: the clock at which τ / (τ + exp(i / τ)) = 1/2
HALF_CLOCK = round(TAU * math.log(TAU))


@dataclass(frozen=True)
class Case:
    """One comparison: batch, graph size, windows and our overrides."""

    name: str
    batch: int
    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    overrides: dict[str, Any] = field(default_factory=dict)
    graph: str = "weighted"  # or "binary": symmetric 0/1, as PEMS04/08's


CASES = (
    Case("small", batch=3, num_nodes=7, overrides=dict(rnn_units=8)),
    Case("small-binary-graph", batch=3, num_nodes=7, overrides=dict(rnn_units=8), graph="binary"),
    Case(
        "k3-3layers-2outputs",
        batch=2,
        num_nodes=6,
        in_steps=5,
        out_steps=4,
        overrides=dict(rnn_units=5, num_rnn_layers=3, max_diffusion_step=3, output_dim=2),
    ),
    Case("default-width", batch=2, num_nodes=20, graph="binary"),  # 2 × 64 units, K = 2
)
MODES = ("eval", "train-mixed", "train-teacher")
#: our two ways of multiplying by the supports (DCRNNConfig.graph_impl), each checked
IMPLS = ("dense", "sparse")


def find_root(ref: Path) -> Path | None:
    """The folder below ``ref`` that holds ``model/pytorch/dcrnn_model.py`` and ``lib/utils.py``."""
    return common.find_folder(ref, LAYOUTS, *FILES)


def load_reference(root: Path) -> types.ModuleType:
    """The reference's ``model.pytorch.dcrnn_model`` module (its imports are absolute)."""
    try:
        importlib.import_module("tensorflow")
    except ImportError:  # lib/utils.py imports it for the TF data helpers only
        sys.modules["tensorflow"] = types.ModuleType("tensorflow")
    sys.path.insert(0, str(root))
    return importlib.import_module("model.pytorch.dcrnn_model")


def graph(n: int, kind: str) -> np.ndarray:
    """An ``[n, n]`` graph on a ring with chords i→i+2 and the last node isolated: weighted and
    directed, or (``binary``) symmetric with unit weights."""
    rng = np.random.default_rng(5)
    a = np.zeros((n, n))
    for i in range(n - 1):
        a[i, (i + 1) % (n - 1)] = rng.uniform(0.2, 1.0)
        a[(i + 2) % (n - 1), i] = rng.uniform(0.2, 1.0)
    if kind == "binary":
        return (np.maximum(a, a.T) > 0).astype(np.float64)
    return a


def fix_supports(reference: types.ModuleType, model: Any, a: np.ndarray) -> float:
    """Rebuild the reference's sparse supports with each value at its own index.

    Its ``_build_sparse_matrix`` reorders the COO indices column-major but not the values, so
    where scipy's product leaves a row's columns unsorted (it does: a row comes out in reverse
    order) the values of a column are permuted. That is invisible on a graph whose rows hold
    equal weights (binary graphs: every row of D⁻¹A is constant) and changes the model on a
    weighted one. Returns max |Δ| between the reference's original supports and the rebuilt ones.
    """
    utils = sys.modules["lib.utils"]
    walks = [utils.calculate_random_walk_matrix(a).T, utils.calculate_random_walk_matrix(a.T).T]
    rebuilt = []
    for w in walks:
        w = w.tocoo()
        indices = torch.as_tensor(np.vstack([w.row, w.col]), dtype=torch.int64)
        rebuilt.append(torch.sparse_coo_tensor(indices, w.data, w.shape).coalesce())
    cells = [*model.encoder_model.dcgru_layers, *model.decoder_model.dcgru_layers]
    before = torch.stack([s.to_dense() for s in cells[0]._supports])
    after = torch.stack([s.to_dense() for s in rebuilt])
    for cell in cells:
        cell._supports = [s.to(reference.device) for s in rebuilt]
    return (before - after).abs().max().item()


def reference_name(ours: str, param: Tensor) -> str:
    """The reference's name of our parameter (theirs are named by shape, made on first use)."""
    if ours.startswith("projection."):
        return "decoder_model.projection_layer." + ours.split(".", 1)[1]
    part, layer, _conv, kind = ours.split(".")
    prefix = {"encoder": "encoder_model", "decoder": "decoder_model"}[part]
    shape = f"weight_{tuple(param.shape)}" if kind == "weight" else f"biases_{param.shape[0]}"
    return f"{prefix}.dcgru_layers.{layer}.gconv_{shape}"


@contextmanager
def numpy_uniform(draws: list[float]) -> Iterator[None]:
    """``np.random.uniform`` returns ``draws`` in order (the reference's coin per step)."""
    saved = np.random.uniform
    it = iter(draws)
    np.random.uniform = lambda *args, **kwargs: next(it)  # type: ignore[assignment]
    try:
        yield
    finally:
        np.random.uniform = saved


def _draws(mode: str, steps: int) -> list[float]:
    if mode == "train-teacher":
        return [0.0] * steps
    return [0.25 if t % 3 != 1 else 0.75 for t in range(steps)]  # below / above 1/2


def compare(
    reference: types.ModuleType, case: Case, mode: str, impl: str = "dense"
) -> dict[str, Any]:
    """Run one case in one mode with our ``graph_impl=impl``; returns the JSON-able record
    (shapes, max |Δ|s)."""
    with common.default_float64():
        return _compare(reference, case, mode, impl)


def _compare(reference: types.ModuleType, case: Case, mode: str, impl: str) -> dict[str, Any]:
    b, n, t_in, t_out = case.batch, case.num_nodes, case.in_steps, case.out_steps
    a = graph(n, case.graph)
    torch.manual_seed(0)
    ours = build("dcrnn", num_nodes=n, in_steps=t_in, out_steps=t_out, adjacency=a,
                 cl_decay_steps=TAU, graph_impl=impl, **case.overrides)  # fmt: skip
    assert isinstance(ours, DCRNN)
    c = ours.config
    kwargs = dict(
        max_diffusion_step=c.max_diffusion_step, cl_decay_steps=TAU, filter_type=c.filter_type,
        num_nodes=n, num_rnn_layers=c.num_rnn_layers, rnn_units=c.rnn_units,
        input_dim=c.input_dim, output_dim=c.output_dim, seq_len=t_in, horizon=t_out,
        use_curriculum_learning=True,
    )  # fmt: skip
    theirs: Any = reference.DCRNNModel(a, logging.getLogger("dcrnn-reference"), **kwargs)
    support_bug = fix_supports(reference, theirs, a)
    ours = ours.to(reference.device)

    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, t_in, n, 3, generator=g)
    x[..., 1] = torch.randint(0, 288, (b, t_in, n), generator=g) / 288  # time of day
    x[..., 2] = torch.randint(0, 7, (b, t_in, n), generator=g).to(common.DTYPE)  # day of week
    y = torch.randn(b, t_out, n, c.output_dim, generator=g)
    x, y = x.to(reference.device), y.to(reference.device)

    def ref_layout(v: Tensor, channels: int) -> Tensor:  # (T, B, N·C), node-major
        return v[..., :channels].permute(1, 0, 2, 3).reshape(v.shape[1], b, n * channels)

    with torch.no_grad():  # the reference makes its parameters on the first forward
        theirs.eval()(ref_layout(x, c.input_dim))
    ours_p, theirs_p = dict(ours.named_parameters()), dict(theirs.named_parameters())
    pairs = common.pair_names(ours_p, theirs_p, lambda k: reference_name(k, ours_p[k]))
    common.copy_weights(ours_p, theirs_p, pairs)

    x_ours, x_theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    draws = _draws(mode, t_out)
    if mode == "eval":
        ours.eval(), theirs.eval()
        out_ours = ours(x_ours)
        out_theirs = theirs(ref_layout(x_theirs, c.input_dim))
    else:
        ours.train(), theirs.train()
        ours.batches_seen.fill_(HALF_CLOCK)
        probability = ours.teacher_forcing_probability()  # the forward moves the clock on
        ours.sampling_draws = lambda steps: torch.tensor(draws[:steps], dtype=common.DTYPE)  # type: ignore[method-assign]
        out_ours = ours(x_ours, targets=y)
        with numpy_uniform(draws):
            out_theirs = theirs(ref_layout(x_theirs, c.input_dim), ref_layout(y, c.output_dim),
                                HALF_CLOCK)  # fmt: skip
    out_theirs = out_theirs.reshape(t_out, b, n, c.output_dim).permute(1, 0, 2, 3)
    common.backward(common.cotangent(out_ours.shape).to(x.device), out_ours, out_theirs)
    grads, _ = common.grad_diffs(ours_p, theirs_p, pairs)
    cell = theirs.encoder_model.dcgru_layers[0]
    their_supports = torch.stack([s.to_dense() for s in cell._supports])
    threshold = theirs._compute_sampling_threshold(HALF_CLOCK)
    if mode == "eval":
        probability = threshold
    return {
        "case": case.name,
        "mode": mode,
        "graph_impl": impl,
        "teacher_forced_steps": []
        if mode == "eval"
        else [t for t, u in enumerate(draws) if u < threshold],
        "input_shape": list(x.shape),
        "output_shape": list(out_ours.shape),
        "overrides": case.overrides,
        "parameters": sum(p.numel() for p in ours_p.values()),
        "graph": case.graph,
        "supports_max_abs_diff": (ours.supports - their_supports).abs().max().item(),
        "reference_support_order_bug_max_abs": support_bug,
        "teacher_forcing_probability_abs_diff": abs(probability - threshold),
        **common.output_and_grad_diffs(
            (out_ours, out_theirs), (x_ours.grad, x_theirs.grad), grads, ours_p.values()
        ),
    }


def run(ref: Path) -> dict[str, Any]:
    """All :data:`CASES` in all :data:`MODES` against the reference found below ``ref``."""
    root = find_root(ref)
    if root is None:
        raise common.not_found(ref, LAYOUTS, FILES, "a checkout of chnsh/DCRNN_PyTorch")
    reference = load_reference(root)
    return {
        "reference_dir": str(root),
        "written_against": REFERENCE,
        **common.environment(),
        "cases": [
            compare(reference, case, mode, impl)
            for case in CASES
            for mode in MODES
            for impl in IMPLS
        ],
    }


def worst(record: dict[str, Any]) -> float:
    """The largest difference of one record, the gradients' relative to their largest value
    (recurrences over 24 steps sum gradients of size ~50: a few 1e-13 is float64 rounding)."""
    grad_scale = max(1.0, float(record["grad_max_abs"]))
    keys = ("output_max_abs_diff", "supports_max_abs_diff", "teacher_forcing_probability_abs_diff")
    return max(
        *(float(record[k]) for k in keys),
        float(record["grad_max_abs_diff"]) / grad_scale,
        float(record["input_grad_max_abs_diff"]) / grad_scale,
    )


if __name__ == "__main__":
    sys.exit(common.main(__doc__, run, worst=lambda report: max(worst(r) for r in report["cases"])))
