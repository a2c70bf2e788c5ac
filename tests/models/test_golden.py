"""Golden outputs: every registry model computes today what it computed when recorded.

Pins behaviour before restructurings that promise not to change it. For each case of
``golden_cases.py`` (one per registry entry, plus extra cases for options no entry turns on) the
test rebuilds the model exactly as ``make_golden.py`` did and compares with
``golden_outputs.json``: the case description, output shape, parameter counts (also at default
width) and ``params_without_grad`` exactly; eval-mode values, sum and sum of squares, the
train-mode loss, SAMoVAR's ``aux_loss``, the gradient norm and ``Σ <grad, param>`` to rtol 1e-10,
atol 1e-12. Values were recorded with torch 2.13 CPU in float64 (stable to ~1e-15 across
machines, hence the tolerance).

A registry model without a record fails: record it with ``python tests/models/make_golden.py``
(and regenerate only for an intended change of behaviour, saying why in the commit).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from golden_cases import (
    ATOL,
    EXTRA_CASES,
    GOLDEN_PATH,
    RTOL,
    Case,
    all_cases,
    build_case,
    mismatches,
    record,
    registry_case,
)

from linearcast.models import REGISTRY
from linearcast.ops.eala import choose_impl

HOW = "run `python tests/models/make_golden.py` and commit golden_outputs.json, saying why"


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN_PATH.read_text())
    return data["cases"]


def _check(case: Case, golden: dict[str, Any]) -> None:
    assert case.id in golden, f"no golden record for {case.id!r}: {HOW}"
    diffs = mismatches(golden[case.id], record(case), case.id)
    assert not diffs, f"{case.id} differs from its golden record:\n" + "\n".join(diffs)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_model_matches_its_golden_record(name: str, golden: dict[str, Any]) -> None:
    _check(registry_case(name), golden)


@pytest.mark.parametrize("case", EXTRA_CASES, ids=lambda c: c.id)
def test_extra_case_matches_its_golden_record(case: Case, golden: dict[str, Any]) -> None:
    _check(case, golden)


def test_no_stale_records(golden: dict[str, Any]) -> None:
    stale = sorted(set(golden) - {c.id for c in all_cases()})
    assert not stale, f"records without a case (renamed or removed model?): {stale}; {HOW}"


def test_cases_reach_both_eala_paths_and_record_the_aux_loss(golden: dict[str, Any]) -> None:
    # the sizes promise these paths; a later edit of the sizes must not silently lose one
    st = build_case(registry_case("elinformer"))[0].config
    _, n, t_in, _ = registry_case("elinformer").dims
    head_dim = st.model_dim // st.num_heads
    assert st.num_heads >= 2 and st.num_layers >= 2
    assert choose_impl(t_in, head_dim) == "quadratic" and choose_impl(n, head_dim) == "linear"
    sv = build_case(registry_case("samovar-eala"))[0].config
    assert choose_impl(sv.n_tokens, sv.d_head) == "linear"
    assert sv.n_tokens > 64  # more than one chunk of the causal kernels (chunk_size=64)
    assert sv.n_heads >= 2 and sv.n_attn_layers >= 2 and sv.n_mlp_layers >= 2
    (short,) = [c for c in EXTRA_CASES if c.id == "samovar-eala[quadratic]"]
    sq = build_case(short)[0].config
    assert choose_impl(sq.n_tokens, sq.d_head) == "quadratic"
    for name in ("samovar", "samovar-lintrans", "samovar-fixedvar", "samovar-eala"):
        assert golden[name]["train"]["aux_loss"] > 0, name
    assert golden["staeformer"]["train"]["aux_loss"] is None


def test_comparison_flags_changes_beyond_the_tolerance() -> None:
    rec = {"a": [1.0, 2.5], "n": 3, "s": None, "d": {"x": -4.0}}
    assert mismatches(rec, json.loads(json.dumps(rec))) == []
    assert mismatches(rec, {**rec, "a": [1.0, 2.5 * (1 + 0.1 * RTOL)]}) == []
    assert len(mismatches(rec, {**rec, "a": [1.0, 2.5 * (1 + 10 * RTOL)]})) == 1
    assert len(mismatches(rec, {**rec, "d": {"x": -4.0 + 1e-9}})) == 1
    assert len(mismatches({"z": 0.0}, {"z": 10 * ATOL})) == 1
    assert len(mismatches(rec, {**rec, "n": 4, "s": 0.0})) == 2
    assert len(mismatches(rec, {k: v for k, v in rec.items() if k != "d"})) == 1
