"""The verdict statistics of results/verdicts.py against scipy's own tests, and the rules that
turn an interval into "holds", "does not" or "cannot tell"."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

stats = pytest.importorskip("scipy.stats", reason="scipy is in the dev extra")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "results"))

from verdicts import judge, one_sample, paired, welch  # noqa: E402

A = {0: 21.9, 1: 22.1, 2: 21.7, 3: 22.4}
B = {0: 22.3, 1: 22.2, 2: 22.0, 3: 22.9}


def test_paired_and_welch_equal_scipys_tests() -> None:
    p = paired(A, B)
    ref = stats.ttest_rel(list(A.values()), list(B.values()))
    assert p is not None and p.p == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (p.low, p.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    w = welch(list(A.values()), [22.3, 22.2, 22.0])
    ref_w = stats.ttest_ind(list(A.values()), [22.3, 22.2, 22.0], equal_var=False)
    assert w is not None and w.p == pytest.approx(ref_w.pvalue, rel=1e-9)
    ci_w = ref_w.confidence_interval(0.95)
    assert (w.low, w.high) == (pytest.approx(ci_w.low), pytest.approx(ci_w.high))
    o = one_sample(list(A.values()), 23.0)
    ref_o = stats.ttest_1samp(list(A.values()), 23.0)
    assert o is not None and o.p == pytest.approx(ref_o.pvalue, rel=1e-9)


def test_the_same_seeds_use_the_paired_test_others_welch() -> None:
    v = judge(A, B, names=("a", "b"), dataset="d", metric="MAE")
    assert v.test is not None and v.test.name == "paired t-test" and v.other is not None
    v2 = judge({0: 1.0, 1: 1.1, 2: 1.2}, {5: 2.0, 6: 2.1}, names=("a", "b"), dataset="d",
               metric="MAE")  # fmt: skip
    assert v2.test is not None and v2.test.name == "Welch's t-test"


def test_one_seed_is_always_cannot_tell_however_large_the_gap() -> None:
    v = judge({0: 1.0}, {0: 100.0}, names=("a", "b"), dataset="d", metric="MAE")
    assert v.outcome == "cannot tell" and v.test is None


def test_outcomes_follow_the_interval() -> None:
    clearly_better = judge({0: 1.0, 1: 1.1, 2: 1.05}, {0: 2.0, 1: 2.1, 2: 2.05},
                           names=("a", "b"), dataset="d", metric="MAE")  # fmt: skip
    assert clearly_better.outcome == "holds" and clearly_better.test.high < 0  # type: ignore[union-attr]
    clearly_worse = judge({0: 2.0, 1: 2.1, 2: 2.02}, {0: 1.0, 1: 1.1, 2: 1.01},
                          names=("a", "b"), dataset="d", metric="MAE")  # fmt: skip
    assert clearly_worse.outcome == "does not"
    noisy = judge({0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 1.0, 2: 2.5}, names=("a", "b"),
                  dataset="d", metric="MAE")  # fmt: skip
    assert noisy.outcome == "cannot tell"


def test_keeps_the_accuracy_uses_the_margin_not_zero() -> None:
    # A is slightly worse (+0.5%) with a tight interval: non-inferior at a 2% margin, and
    # not "better"
    a = {0: 10.05, 1: 10.06, 2: 10.04}
    b = {0: 10.0, 1: 10.01, 2: 9.99}
    keeps = judge(a, b, names=("a", "b"), dataset="d", metric="MAE", claim="keeps")
    assert keeps.outcome == "holds" and keeps.margin == pytest.approx(0.2)
    assert judge(a, b, names=("a", "b"), dataset="d", metric="MAE").outcome == "does not"
    far = {0: 10.5, 1: 10.51, 2: 10.49}  # +5%: outside the margin
    assert judge(far, b, names=("a", "b"), dataset="d", metric="MAE", claim="keeps").outcome == (
        "does not"
    )


def test_a_deterministic_reference_uses_the_one_sample_test_either_way() -> None:
    seeded = {0: 5.0, 1: 5.2, 2: 5.1}
    v1 = judge(seeded, 6.0, names=("a", "floor"), dataset="d", metric="MAE")
    v2 = judge(6.0, seeded, names=("floor", "a"), dataset="d", metric="MAE")
    assert v1.test is not None and v2.test is not None
    assert v1.test.name == v2.test.name == "one-sample t-test"
    assert v1.test.mean == pytest.approx(-v2.test.mean)
    assert v1.outcome == "holds" and v2.outcome == "does not"
