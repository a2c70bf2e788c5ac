"""Verdicts from tests, not from eyeballing the spread.

A verdict compares model A with model B on one dataset and one metric (lower is better) over
seeds. The difference d = A − B is summarised by its mean and a 95% confidence interval from

- a **paired t-test** when both models ran the same seeds (seed s of A against seed s of B:
  the data split and the batches' order are the same, so pairing removes what the seeds share);
- **Welch's t-test** when both ran at least two seeds but not the same ones;
- a **one-sample t-test** against a deterministic model (last value, historical average: one
  run, no seed, no spread) when the other ran at least two seeds.

Both the paired and Welch's results are computed whenever possible and printed; the verdict uses
the one named in ``test``. One seed on either side of a seeded comparison is always "cannot
tell". The claims:

- ``better``: A is better than B. **holds** when the whole interval is below 0, **does not** when
  the whole interval is above 0 (B is better), **cannot tell** otherwise.
- ``keeps``: A keeps B's accuracy (non-inferiority): **holds** when the interval's upper end is
  below the margin (``margin`` × B's mean, e.g. +2% MAE), **does not** when its lower end is
  above it, **cannot tell** otherwise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Literal

Claim = Literal["better", "keeps"]


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (scipy)."""
    from scipy import stats

    return float(stats.t.ppf(p, df))


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic."""
    from scipy import stats

    return float(2 * stats.t.sf(abs(t), df))


@dataclass(frozen=True)
class TestResult:
    """One test of the mean difference: which, its interval and p-value."""

    name: str  # "paired t-test", "Welch's t-test", "one-sample t-test"
    n: str  # the seeds behind it, e.g. "3 pairs" or "3 and 3 seeds"
    mean: float
    low: float
    high: float
    df: float
    p: float

    def interval(self, digits: int = 3) -> str:
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def paired(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> TestResult | None:
    """Paired t-test over the seeds both ran (None with fewer than two pairs)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    d = [a[s] - b[s] for s in seeds]
    n = len(d)
    mean, sd = statistics.fmean(d), statistics.stdev(d)
    se = sd / math.sqrt(n)
    q = t_quantile(0.5 + level / 2, n - 1)
    p = t_two_sided_p(mean / se, n - 1) if se > 0 else (0.0 if mean != 0 else 1.0)
    return TestResult("paired t-test", f"{n} pairs", mean, mean - q * se, mean + q * se, n - 1, p)


def welch(a: list[float], b: list[float], level: float = 0.95) -> TestResult | None:
    """Welch's unequal-variance t-test (None when either side has fewer than two values)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    mean = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return TestResult("Welch's t-test", f"{len(a)} and {len(b)} seeds", mean, mean, mean,
                          math.inf, 0.0 if mean != 0 else 1.0)  # fmt: skip
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    q = t_quantile(0.5 + level / 2, df)
    return TestResult("Welch's t-test", f"{len(a)} and {len(b)} seeds", mean, mean - q * se,
                      mean + q * se, df, t_two_sided_p(mean / se, df))  # fmt: skip


def one_sample(a: list[float], constant: float, level: float = 0.95) -> TestResult | None:
    """t-test of A's seeds against a deterministic value (None with fewer than two seeds)."""
    if len(a) < 2:
        return None
    n = len(a)
    mean, se = statistics.fmean(a) - constant, statistics.stdev(a) / math.sqrt(n)
    q = t_quantile(0.5 + level / 2, n - 1)
    p = t_two_sided_p(mean / se, n - 1) if se > 0 else (0.0 if mean != 0 else 1.0)
    return TestResult("one-sample t-test", f"{n} seeds vs a deterministic value", mean,
                      mean - q * se, mean + q * se, n - 1, p)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim, with the test it rests on."""

    a: str
    b: str
    dataset: str
    metric: str
    claim: Claim
    outcome: Literal["holds", "does not", "cannot tell"]
    test: TestResult | None
    other: TestResult | None  # Welch's when the verdict uses the paired test
    margin: float | None  # absolute non-inferiority margin (claim "keeps")
    mean_a: float
    mean_b: float
    seeds_a: int
    seeds_b: int
    reason: str

    def sentence(self) -> str:
        """One line for a README: the claim, the outcome, the test and its interval."""
        what = "is better than" if self.claim == "better" else "keeps the accuracy of"
        head = (
            f"{self.a} {what} {self.b} on {self.dataset} ({self.metric} {self.mean_a:.3f} vs "
            f"{self.mean_b:.3f}): **{self.outcome}**"
        )
        if self.test is None:
            return f"{head} — {self.reason}."
        margin = f", margin +{self.margin:.3f}" if self.margin is not None else ""
        other = f"; Welch: {self.other.interval()}, p = {self.other.p:.2g}" if self.other else ""
        return (
            f"{head} — {self.test.name} ({self.test.n}): difference {self.test.interval()} "
            f"(95% CI{margin}), p = {self.test.p:.2g}{other}."
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"sentence": self.sentence()}


def judge(
    a: dict[int, float] | float,
    b: dict[int, float] | float,
    *,
    names: tuple[str, str],
    dataset: str,
    metric: str,
    claim: Claim = "better",
    margin: float = 0.02,
) -> Verdict:
    """Test a claim about A against B (lower is better).

    Args:
        a, b: ``{seed: value}`` of a seeded model, or one float for a deterministic model.
        names: (A, B) for the sentence.
        dataset, metric: for the sentence.
        claim: ``"better"`` (A below B) or ``"keeps"`` (A not worse than B by more than
            ``margin`` × B's mean).
        margin: relative non-inferiority margin of ``"keeps"``.
    """
    va = [a] if isinstance(a, float) else list(a.values())
    vb = [b] if isinstance(b, float) else list(b.values())
    mean_a, mean_b = statistics.fmean(va), statistics.fmean(vb)
    test = other = None
    if isinstance(a, dict) and isinstance(b, dict):
        pair, w = paired(a, b), welch(va, vb)
        test, other = (pair, w) if pair is not None and set(a) == set(b) else (w, None)
    elif isinstance(a, dict) and isinstance(b, float):
        test = one_sample(va, b)
    elif isinstance(a, float) and isinstance(b, dict):
        flipped = one_sample(vb, a)
        if flipped is not None:  # the difference A - B is minus B's difference to A
            test = TestResult(flipped.name, flipped.n, -flipped.mean, -flipped.high,
                              -flipped.low, flipped.df, flipped.p)  # fmt: skip
    abs_margin = margin * mean_b if claim == "keeps" else None
    if test is None:
        reason = "one seed on a side, no interval: cannot tell"
        if isinstance(a, float) and isinstance(b, float):
            reason = "two deterministic values, no seeds to test"
        return Verdict(*names, dataset, metric, claim, "cannot tell", None, None, abs_margin,
                       mean_a, mean_b, len(va), len(vb), reason)  # fmt: skip
    bound = abs_margin if abs_margin is not None else 0.0
    if test.high < bound:
        outcome: Literal["holds", "does not", "cannot tell"] = "holds"
    elif test.low > bound:
        outcome = "does not"
    else:
        outcome = "cannot tell"
    return Verdict(*names, dataset, metric, claim, outcome, test, other, abs_margin, mean_a,
                   mean_b, len(va), len(vb), "")  # fmt: skip


def rank(means: dict[str, float]) -> list[str]:
    """Model names by mean, best (lowest) first."""
    return sorted(means, key=lambda m: means[m])
