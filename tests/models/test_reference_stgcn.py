"""STGCN against BasicTS's port (and hazdzz/STGCN when present) with shared weights, in float64.

Runs ``tools/reference_check/stgcn.py`` when ``LINEARCAST_REFERENCE_DIR`` names a folder holding
the reference code (see that script for the layouts it finds); otherwise skips, since the
reference code is never part of this repository.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

CHECKER = Path(__file__).resolve().parents[2] / "tools" / "reference_check" / "stgcn.py"
TOL = 1e-12


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("linearcast_reference_check_stgcn", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    with pytest.MonkeyPatch.context() as mp:  # the checker imports _common from its folder
        mp.syspath_prepend(str(CHECKER.parent))
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> tuple[ModuleType, dict[str, Any]]:
    ref = os.environ.get("LINEARCAST_REFERENCE_DIR")
    if not ref:
        pytest.skip("LINEARCAST_REFERENCE_DIR is not set (the STGCN reference code is not here)")
    checker = _checker()
    refs = checker.find_references(Path(ref))
    if "basicts" not in refs:
        pytest.skip(f"no BasicTS stgcn_arch.py/stgcn_layers.py below {ref}")
    return checker, refs


def _case(checker: ModuleType, refs: dict[str, Any], name: str) -> Any:
    case = next(c for c in checker.CASES if c.name == name)
    if case.reference not in refs:
        pytest.skip(f"no {case.reference} reference code below LINEARCAST_REFERENCE_DIR")
    return case


@pytest.mark.parametrize(
    "name", ["basicts-pems08-default", "basicts-weighted-directed-small", "hazdzz-scaled-laplacian"]
)
def test_outputs_and_gradients_equal_the_reference(
    reference: tuple[ModuleType, dict[str, Any]], name: str
) -> None:
    checker, refs = reference
    rec = checker.compare(refs, _case(checker, refs, name))
    assert rec["parameters"] == rec["reference_parameters"]
    assert rec["same_initial_weights_max_abs_diff"] == 0.0  # one seed, the reference's weights
    assert rec["graph_operator_max_abs_diff"] < TOL
    for mode in ("eval", "train"):  # train: dropout masks from one seed
        run = rec[mode]
        assert run["output_max_abs"] > 0.1  # not a trivially zero forecast
        assert run["output_max_abs_diff"] < TOL
        assert run["grad_max_abs_diff"] < TOL * max(1.0, run["grad_max_abs"])
        assert run["input_grad_max_abs_diff"] < TOL


def test_the_comparison_notices_a_transposed_graph(
    reference: tuple[ModuleType, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from linearcast.models import stgcn

    checker, refs = reference
    real = stgcn.graph_operator
    monkeypatch.setattr(stgcn, "graph_operator", lambda a, lap="normlap": real(a, lap).T)
    monkeypatch.setattr(checker, "graph_operator", stgcn.graph_operator)
    rec = checker.compare(refs, _case(checker, refs, "basicts-weighted-directed-small"))
    assert rec["eval"]["output_max_abs_diff"] > 1e-3
    assert torch.finfo(torch.float64).eps < rec["graph_operator_max_abs_diff"]
