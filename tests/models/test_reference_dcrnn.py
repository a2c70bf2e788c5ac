"""DCRNN against chnsh/DCRNN_PyTorch (BasicTS's stated source) with shared weights, in float64.

Runs ``tools/reference_check/dcrnn.py`` when ``LINEARCAST_REFERENCE_DIR`` names a checkout of the
reference (a folder holding ``model/pytorch/dcrnn_model.py`` and ``lib/utils.py``); otherwise
skips, since the reference code is never part of this repository. Every case runs the
free-running decoder (eval), scheduled sampling with a mix of teacher-forced and fed-back steps,
and full teacher forcing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

CHECKER = Path(__file__).resolve().parents[2] / "tools" / "reference_check" / "dcrnn.py"
TOL = 1e-12


def _checker() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("linearcast_reference_check_dcrnn", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    with pytest.MonkeyPatch.context() as mp:  # the checker imports _common from its folder
        mp.syspath_prepend(str(CHECKER.parent))
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> tuple[types.ModuleType, types.ModuleType]:
    ref = os.environ.get("LINEARCAST_REFERENCE_DIR")
    if not ref:
        pytest.skip("LINEARCAST_REFERENCE_DIR is not set (the DCRNN reference code is not here)")
    checker = _checker()
    root = checker.find_root(Path(ref))
    if root is None:
        pytest.skip(f"no DCRNN model/pytorch/dcrnn_model.py below LINEARCAST_REFERENCE_DIR={ref}")
    return checker, checker.load_reference(root)


def _case(checker: types.ModuleType, name: str) -> Any:
    return next(c for c in checker.CASES if c.name == name)


@pytest.mark.parametrize("impl", ["dense", "sparse"])
@pytest.mark.parametrize("mode", ["eval", "train-mixed", "train-teacher"])
@pytest.mark.parametrize("name", ["small", "small-binary-graph", "k3-3layers-2outputs"])
def test_outputs_and_gradients_equal_the_reference(
    reference: tuple[types.ModuleType, types.ModuleType], name: str, mode: str, impl: str
) -> None:
    checker, module = reference
    rec = checker.compare(module, _case(checker, name), mode, impl)
    assert rec["output_max_abs"] > 0.1  # not a trivially zero forecast
    assert checker.worst(rec) < TOL
    if mode == "train-mixed":  # both kinds of decoder step are exercised
        assert 0 < len(rec["teacher_forced_steps"]) < rec["output_shape"][1]


def test_the_reference_supports_bug_shows_on_weighted_graphs_only(
    reference: tuple[types.ModuleType, types.ModuleType],
) -> None:
    checker, module = reference
    assert (
        checker.compare(module, _case(checker, "small"), "eval")[
            "reference_support_order_bug_max_abs"
        ]
        > 0.1
    )
    assert (
        checker.compare(module, _case(checker, "small-binary-graph"), "eval")[
            "reference_support_order_bug_max_abs"
        ]
        == 0.0
    )


def test_the_comparison_notices_a_wrong_model(
    reference: tuple[types.ModuleType, types.ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from linearcast.models import dcrnn

    def fresh_support_start(z: torch.Tensor, supports: torch.Tensor, k: int) -> torch.Tensor:
        # the textbook recurrence (each support starts from z): not what the reference does
        n, b, f = z.shape
        terms = [z.reshape(n, b * f)]
        for s in supports:
            x0, x1 = terms[0], s @ terms[0]
            terms.append(x1)
            for _ in range(2, k + 1):
                x0, x1 = x1, 2 * (s @ x1) - x0
                terms.append(x1)
        return torch.stack(terms, dim=-1).view(n, b, f, len(terms))

    checker, module = reference
    monkeypatch.setattr(dcrnn, "diffusion_terms", fresh_support_start)
    for impl in ("dense", "sparse"):
        rec = checker.compare(module, _case(checker, "small"), "eval", impl)
        assert rec["output_max_abs_diff"] > 1e-6, impl
