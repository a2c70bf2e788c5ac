"""What the reference checks share: the command line, loading the reference's code, pairing and
copying weights, and the max |Δ| of outputs and gradients.

Each ``tools/reference_check/<model>.py`` compares one linearcast model with published code
(weights shared, float64) and prints a JSON report. What belongs to one model stays in its file:
where its reference lies, how the reference is built and called, the name map and the cases.

The checkers import this module by its plain name: running one as a script puts this folder
first on ``sys.path``; the tests that load a checker from its path put it there while they do.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

#: where ``--ref`` comes from when it is not given
ENV_VAR = "LINEARCAST_REFERENCE_DIR"
DTYPE = torch.float64
#: the default ``--tol``: float64 rounding of these models stays below 1e-13
TOL = 1e-12
#: the differences of a case record that decide the exit status, unless a checker says otherwise
DIFF_KEYS = ("output_max_abs_diff", "grad_max_abs_diff", "input_grad_max_abs_diff")

Report = dict[str, Any]


# --- the command line


def parser(doc: str | None, *, ref_help: str | None = None) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--ref DIR`` (default
    ``$LINEARCAST_REFERENCE_DIR``)."""
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--ref", default=os.environ.get(ENV_VAR), help=ref_help)
    return p


def parse_args(
    p: argparse.ArgumentParser,
    argv: list[str] | None,
    *,
    missing: str = f"give --ref DIR or set {ENV_VAR}",
) -> argparse.Namespace:
    """Parse ``argv`` (a usage error saying ``missing`` when no reference folder is given), then
    give torch one intra-op thread, so that the numbers do not depend on the machine's cores."""
    args = p.parse_args(argv)
    if not args.ref:
        p.error(missing)
    torch.set_num_threads(1)
    return args


def print_report(report: Report) -> None:
    """The report on stdout, as JSON."""
    print(json.dumps(report, indent=1))


def largest_diff(records: Iterable[Mapping[str, Any]], keys: Iterable[str] = DIFF_KEYS) -> float:
    """The largest of the differences ``keys`` over ``records``."""
    keys = tuple(keys)
    return max(r[k] for r in records for k in keys)


def worst_case(report: Report) -> float:
    """The largest output, parameter-gradient or input-gradient difference of the report's
    cases."""
    return largest_diff(report["cases"])


def main(
    doc: str | None,
    run: Callable[[Path], Report],
    argv: list[str] | None = None,
    *,
    worst: Callable[[Report], float] = worst_case,
) -> int:
    """A checker's command line: ``--ref DIR`` and ``--tol`` (default :data:`TOL`); prints
    ``run(DIR)`` as JSON and returns the exit status, 1 when ``worst(report)`` exceeds ``--tol``."""
    p = parser(doc)
    p.add_argument("--tol", type=float, default=TOL)
    args = parse_args(p, argv)
    report = run(Path(args.ref))
    print_report(report)
    return int(worst(report) > args.tol)


def environment() -> dict[str, str]:
    """What every report says about the run besides its cases."""
    return {"dtype": "float64", "torch": torch.__version__}


# --- finding and loading the reference's code


def find_folder(ref: Path, layouts: Iterable[str], *files: str) -> Path | None:
    """The first folder ``ref / layout`` that holds every one of ``files``, or None."""
    for rel in layouts:
        d = ref / rel
        if all((d / f).is_file() for f in files):
            return d
    return None


def not_found(ref: Path, layouts: Iterable[str], files: Iterable[str], give: str) -> SystemExit:
    """The exit for a ``--ref`` below which :func:`find_folder` found nothing; ``give`` says
    what ``--ref`` should name."""
    return SystemExit(
        f"{ref}: found no {' and '.join(files)} in any of {', '.join(layouts)}; give --ref {give}."
    )


def _unique_name(tag: str, path: Path) -> str:
    # one module per file: two checkouts of one reference may be compared in one process
    return f"_linearcast_reference_{tag}_{abs(hash(str(path.resolve())))}"


def module_from_file(path: Path, tag: str) -> ModuleType:
    """The module in the file ``path``, run under a name of its own (not put in
    ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(_unique_name(tag, path), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_from_folder(folder: Path, module: str, tag: str) -> ModuleType:
    """The module ``module`` of ``folder``, the folder imported as a package of its own name, so
    that the reference's relative imports (``from .mlp import``) work and ``sys.path`` is not
    touched."""
    name = _unique_name(tag, folder)
    if name not in sys.modules:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{name}.{module}")


@contextmanager
def checkout_importable(root: Path, *packages: str) -> Iterator[None]:
    """Within the block, the checkout at ``root`` is first on ``sys.path``, for references whose
    modules import each other by absolute names (``from model.AGCN import``).

    Their top-level ``packages`` may clash with another reference's (several have a ``model``):
    modules of those names loaded before are set aside for the block and put back after it, and
    the checkout's own are dropped from ``sys.modules`` (what was imported keeps working).
    """
    clash = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in packages}
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for k in [k for k in sys.modules if k.split(".")[0] in packages]:
            del sys.modules[k]
        sys.modules.update(clash)


@contextmanager
def default_float64() -> Iterator[None]:
    """``torch.get_default_dtype()`` is float64 within the block (for references that make
    tensors such as ``torch.eye`` or zero states in the default dtype)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(DTYPE)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


# --- weights shared, outputs and gradients compared


def pair_names(
    ours: Iterable[str], theirs: Iterable[str], reference_name: Callable[[str], str]
) -> dict[str, str]:
    """Our name → the reference's, for each of ``ours``; exits, naming both sides, unless the
    map takes ours one to one onto ``theirs``."""
    pairs = {k: reference_name(k) for k in ours}
    mapped, expected = sorted(pairs.values()), sorted(theirs)
    if mapped != expected:
        raise SystemExit(f"name map mismatch: ours {mapped} vs {expected}")
    return pairs


def max_abs_diff(a: Tensor, b: Tensor) -> float:
    """max |a - b| over the elements in order (shapes may differ; the sizes may not)."""
    return (a.detach().reshape(-1) - b.detach().reshape(-1)).abs().max().item()


def initial_diff(
    ours: Mapping[str, Tensor], theirs: Mapping[str, Tensor], pairs: Mapping[str, str]
) -> float:
    """max |Δ| between our tensors and the reference's before any were copied (float64, so
    integer buffers count too): 0 when one seed gives both models the same weights."""
    return max(max_abs_diff(ours[o].double(), theirs[t].double()) for o, t in pairs.items())


def copy_weights(
    ours: Mapping[str, Tensor], theirs: Mapping[str, Tensor], pairs: Mapping[str, str]
) -> None:
    """Copy each of our tensors into its pair in the reference, reshaped to the reference's
    shape (a linear layer there may be a 1×1 convolution here)."""
    with torch.no_grad():
        for o, t in pairs.items():
            theirs[t].copy_(ours[o].reshape(theirs[t].shape))


def cotangent(shape: Iterable[int], seed: int = 2) -> Tensor:
    """A fixed random ``g`` for back-propagating ``sum(out · g)``: every output element gets its
    own weight, so a permuted output cannot pass."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def backward(g: Tensor, *outputs: Tensor) -> None:
    """Back-propagate ``sum(out · g)`` from each of ``outputs``."""
    for out in outputs:
        (out * g).sum().backward()


def grad_diffs(
    ours: Mapping[str, Tensor],
    theirs: Mapping[str, Tensor],
    pairs: Mapping[str, str],
    *,
    unused_ok: bool = False,
) -> tuple[dict[str, float], list[str]]:
    """max |Δ| of each pair's gradients by our name, and the names of the pairs that have none
    on either side (no gradient, or zeros on a side the forward never reached).

    Exits when one side only has a gradient, or when a pair has none and not ``unused_ok``.
    """
    diffs: dict[str, float] = {}
    unused: list[str] = []
    for o, t in pairs.items():
        g_ours, g_theirs = ours[o].grad, theirs[t].grad
        if g_ours is None or g_theirs is None:
            other = g_theirs if g_ours is None else g_ours
            if other is not None and other.any():
                raise SystemExit(f"{o} ({t}): a gradient in one model only")
            unused.append(o)
            continue
        diffs[o] = max_abs_diff(g_ours, g_theirs)
    if unused and not unused_ok:
        raise SystemExit(f"no gradient in either model for {unused}")
    return diffs, unused


def largest_grad(params: Iterable[Tensor]) -> float:
    """The largest |gradient| of ``params`` (a scale for the gradient differences)."""
    return max(p.grad.abs().max().item() for p in params if p.grad is not None)


def output_and_grad_diffs(
    out: tuple[Tensor, Tensor],
    input_grad: tuple[Tensor | None, Tensor | None],
    grads: dict[str, float],
    params: Iterable[Tensor],
) -> Report:
    """The record's usual keys, from ``(ours, theirs)`` pairs of the outputs and of the input's
    gradients, :func:`grad_diffs`' ``grads`` and our ``params``: max |Δ| of each, and our largest
    output and gradient (a comparison of zeros would pass)."""
    g_ours, g_theirs = input_grad
    assert g_ours is not None and g_theirs is not None, "the input has no gradient"
    return {
        "output_max_abs_diff": max_abs_diff(*out),
        "output_max_abs": out[0].abs().max().item(),
        "grad_max_abs_diff": max(grads.values()),
        "grad_max_abs": largest_grad(params),
        "grad_max_abs_diff_by_param": grads,
        "input_grad_max_abs_diff": max_abs_diff(g_ours, g_theirs),
    }


def traffic_input(
    batch: int, steps: int, nodes: int, steps_per_day: int = 288, seed: int = 1
) -> Tensor:
    """``[B, T, N, 3]`` in our layout: a standard-normal signal, the time of day on the data's
    grid ``k / steps_per_day`` and the day of week ``0..6``, from one seed."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, steps, nodes)
    target = torch.randn(shape, generator=g, dtype=DTYPE)
    tod = torch.randint(0, steps_per_day, shape, generator=g).to(DTYPE) / steps_per_day
    dow = torch.randint(0, 7, shape, generator=g).to(DTYPE)
    return torch.stack([target, tod, dow], dim=-1)
