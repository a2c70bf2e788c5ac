"""AGCRN against the official code (LeiBAI/AGCRN), when a checkout of it is given.

The official code is not part of this repository; set ``LINEARCAST_REFERENCE_DIR`` to the root
of a checkout at the commit ``tools/reference_check/agcrn.py`` names (see its docstring).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

CHECKER = Path(__file__).parents[2] / "tools" / "reference_check" / "agcrn.py"
REF_DIR = os.environ.get("LINEARCAST_REFERENCE_DIR", "")
TOL = 1e-12  # float64; measured: outputs 1e-15, gradients 4e-15 (docs/models.md)


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agcrn_reference_check", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as mp:  # the checker imports _common from its folder
        mp.syspath_prepend(str(CHECKER.parent))
        spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not (REF_DIR and (Path(REF_DIR) / "model" / "AGCRN.py").is_file()),
    reason="set LINEARCAST_REFERENCE_DIR to a LeiBAI/AGCRN checkout (the folder with "
    "model/AGCRN.py) to compare with the official code",
)
def test_outputs_gradients_and_initial_weights_equal_the_official_code() -> None:
    result = _checker().run(REF_DIR)
    assert result["max_abs_diff_output"] < TOL
    assert result["max_abs_diff_grad"] < TOL
    for name, case in result["cases"].items():
        assert case["same_initial_weights_for_one_seed"], name
        assert case["output_max_abs"] > 0.1 and case["grad_max_abs"] > 0.1, name  # not vacuous


def test_the_name_map_covers_every_parameter() -> None:
    # runs without the official code: our side of the map is every parameter we have
    from linearcast.models.agcrn import AGCRN, AGCRNConfig

    checker = _checker()
    for c in checker.CONFIGS.values():
        model = AGCRN(AGCRNConfig(**c))
        assert set(checker.name_map(c["num_layers"])) == {n for n, _ in model.named_parameters()}
