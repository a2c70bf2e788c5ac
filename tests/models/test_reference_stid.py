"""STID against the official code (GestaltCogTeam/STID) with shared weights, in float64.

Runs ``tools/reference_check/stid.py`` when ``LINEARCAST_REFERENCE_DIR`` names a folder holding
the reference's ``stid_arch.py`` and ``mlp.py`` (see that script for the layouts it finds);
otherwise skips, since the reference code is never part of this repository.
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

CHECKER = Path(__file__).resolve().parents[2] / "tools" / "reference_check" / "stid.py"
TOL = 1e-12


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("linearcast_reference_check_stid", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    with pytest.MonkeyPatch.context() as mp:  # the checker imports _common from its folder
        mp.syspath_prepend(str(CHECKER.parent))
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> tuple[ModuleType, type[torch.nn.Module]]:
    ref = os.environ.get("LINEARCAST_REFERENCE_DIR")
    if not ref:
        pytest.skip("LINEARCAST_REFERENCE_DIR is not set (the STID reference code is not here)")
    checker = _checker()
    arch = checker.find_arch_dir(Path(ref))
    if arch is None:
        pytest.skip(f"no STID stid_arch.py/mlp.py below LINEARCAST_REFERENCE_DIR={ref}")
    return checker, checker.load_reference(arch)


def _case(checker: ModuleType, name: str) -> Any:
    return next(c for c in checker.CASES if c.name == name)


@pytest.mark.parametrize(
    "name", ["pems08-default", "small", "ablation-no-node-no-tod-input_dim1-144steps"]
)
def test_outputs_and_gradients_equal_the_reference(
    reference: tuple[ModuleType, type[torch.nn.Module]], name: str
) -> None:
    checker, cls = reference
    rec = checker.compare(cls, _case(checker, name))
    assert rec["same_initial_weights_max_abs_diff"] == 0.0  # one seed, the official weights
    assert rec["output_max_abs"] > 0.1  # not a trivially zero forecast
    assert rec["output_max_abs_diff"] < TOL
    assert rec["grad_max_abs_diff"] < TOL
    assert rec["input_grad_max_abs_diff"] < TOL


def test_the_comparison_notices_a_wrong_model(
    reference: tuple[ModuleType, type[torch.nn.Module]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from linearcast.models.stid import STIDBlock

    def without_residual(self: STIDBlock, h: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.fc1(h))))

    checker, cls = reference
    monkeypatch.setattr(STIDBlock, "forward", without_residual)
    rec = checker.compare(cls, _case(checker, "small"))
    assert rec["output_max_abs_diff"] > 1e-3
