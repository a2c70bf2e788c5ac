"""Graph WaveNet against the official code (nnzhan/Graph-WaveNet @ 6b162e8), weights shared,
float64: outputs, every parameter's gradient, the input's gradient, BatchNorm's running
statistics and the eval-mode outputs agree to 1e-12 in every case of
``tools/reference_check/gwnet.py``.

The official code is not part of this repository: set ``LINEARCAST_REFERENCE_DIR`` to a folder
holding a checkout (the checker finds its ``model.py`` up to three folders down); without it
the test is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOL = 1e-12
_CHECKER = Path(__file__).parents[2] / "tools" / "reference_check" / "gwnet.py"


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gwnet_reference_check", _CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    with pytest.MonkeyPatch.context() as mp:  # the checker imports _common from its folder
        mp.syspath_prepend(str(_CHECKER.parent))
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference_dir() -> Path:
    ref = os.environ.get("LINEARCAST_REFERENCE_DIR")
    if not ref:
        pytest.skip("LINEARCAST_REFERENCE_DIR is not set: no official Graph WaveNet to compare")
    return Path(ref)


def test_gwnet_equals_the_official_code(reference_dir: Path) -> None:
    checker = _checker()
    if checker.find_reference(reference_dir) is None:
        pytest.skip(f"{reference_dir} holds no Graph-WaveNet model.py (class gwnet)")
    report = checker.run(reference_dir)
    assert {c["case"] for c in report["cases"]} == {c.name for c in checker.CASES}
    for case in report["cases"]:
        for key in (
            "output_max_abs_diff",
            "grad_max_abs_diff",
            "input_grad_max_abs_diff",
            "bn_running_stats_max_abs_diff",
            "eval_output_max_abs_diff",
        ):
            assert case[key] <= TOL, f"{case['case']}: {key} = {case[key]}"
        # a gradient compared for every trainable parameter (none lost by the name map)
        assert len(case["grad_max_abs_diff_by_param"]) + len(case["no_grad_in_both"]) > 0
    supports = report["supports_vs_util_asym_adj_float32_max_abs_diff"]
    if supports is not None:  # float32 rounding of D⁻¹A (the official casts to float32)
        assert max(supports.values()) <= 1e-7
