"""The verdicts of each results table (``results/verdicts.py`` does the statistics).

Written by ``python results/report.py TABLE`` into ``results/TABLE/verdicts.md`` and
``verdicts.json``, and into the marked block of README.md's "What we found".
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from verdicts import Verdict, judge, rank

Runs = dict[tuple[str, str], list[dict[str, Any]]]

#: relative non-inferiority margin of "keeps the accuracy" (+2% of the reference's MAE/MSE)
MARGIN = 0.02


def values(runs: Runs, ds: str, model: str, metric: str) -> dict[int, float] | float | None:
    """``{seed: test metric}`` of a seeded model; one float for a model with no trainable
    parameters (deterministic: its one run is its value); None when it did not run."""
    rs = runs.get((ds, model))
    if not rs:
        return None
    per_seed = {int(r["seed"]): float(r["metrics"]["test"]["overall"][metric]) for r in rs}
    if rs[0]["parameters"]["trainable"] == 0:
        return next(iter(per_seed.values()))
    return per_seed


def _mean(v: dict[int, float] | float) -> float:
    return v if isinstance(v, float) else statistics.fmean(v.values())


def st_verdicts(runs: Runs, datasets: list[str], baselines: tuple[str, ...]) -> list[Verdict]:
    """The spatio-temporal claims, per dataset."""
    out: list[Verdict] = []
    claims = [
        ("elinformer", "staeformer", "keeps"),
        ("elinformer", "staeformer", "better"),
        ("elinformer", "elinformer-gauss", "better"),  # the paper's θ vs θ = 1, trained
        ("elinformer-learned", "elinformer", "keeps"),
        ("elinformer", "last-value", "better"),
        *((b, "elinformer", "better") for b in baselines),
        # issue 26: with instance normalisation (NYC taxi only)
        ("elinformer-revin", "last-value", "better"),
        ("staeformer-revin", "last-value", "better"),
        ("elinformer-revin", "staeformer-revin", "keeps"),
        ("elinformer-revin", "staeformer-revin", "better"),
        ("staeformer-revin", "staeformer", "better"),  # what instance normalisation buys
        ("elinformer-revin", "elinformer", "better"),
    ]
    for ds in datasets:
        for a, b, claim in claims:
            va, vb = values(runs, ds, a, "MAE"), values(runs, ds, b, "MAE")
            if va is None or vb is None:
                continue
            out.append(judge(va, vb, names=(a, b), dataset=ds, metric="MAE", claim=claim,
                             margin=MARGIN))  # fmt: skip
    return out


@dataclass(frozen=True)
class Standing:
    """Where one model stands among the models of a dataset (by mean test MAE)."""

    dataset: str
    focus: str
    position: int  # 1 = best
    of: int
    other: str  # the best model, or the runner-up when ``focus`` is the best
    other_mean: float
    verdict: Verdict  # focus against ``other``: the gap, its test and interval

    def gap_words(self) -> str:
        """The gap to ``other`` and whether its 95% interval contains 0."""
        v = self.verdict
        if v.test is None:
            return f"{v.mean_a - v.mean_b:+.3f}, no interval (one seed on a side)"
        where = "contains 0" if v.test.low <= 0 <= v.test.high else "excludes 0"
        return f"{v.test.interval()} ({v.test.name}): the interval {where}"

    def line(self) -> str:
        head = f"- {self.dataset}: {self.focus} ranks {self.position} of {self.of} by mean test MAE"
        role = "the runner-up" if self.position == 1 else "the best"
        return f"{head}; {role} is {self.other} ({self.other_mean:.3f}), gap {self.gap_words()}."


def standing(
    runs: Runs, ds: str, focus: str = "elinformer", among: tuple[str, ...] | None = None
) -> Standing | None:
    """Where ``focus`` stands on ``ds`` among ``among`` (every model run there when None), with
    the gap to the best (to the runner-up when ``focus`` is the best) tested as
    :func:`verdicts.judge` tests any pair."""
    means = {}
    for d, m in runs:
        if d == ds and (among is None or m in among or m == focus):
            v = values(runs, d, m, "MAE")
            if v is not None:
                means[m] = _mean(v)
    if focus not in means or len(means) < 2:
        return None
    order = rank(means)
    pos = order.index(focus) + 1
    other = order[1] if pos == 1 else order[0]
    v = judge(values(runs, ds, focus, "MAE"), values(runs, ds, other, "MAE"),  # type: ignore[arg-type]
              names=(focus, other), dataset=ds, metric="MAE", claim="better")  # fmt: skip
    return Standing(ds, focus, pos, len(order), other, means[other], v)


def st_ranks(
    runs: Runs, datasets: list[str], focus: str = "elinformer", among: tuple[str, ...] | None = None
) -> list[str]:
    """Where ``focus`` stands among the models of each dataset, and whether the gap to the
    best (or to the runner-up) is inside the interval."""
    return [s.line() for ds in datasets if (s := standing(runs, ds, focus, among))]


def lh_verdicts(runs: Runs, datasets: list[str]) -> list[Verdict]:
    """SAMoVAR against its controls and DLinear, and causal EALA inside SAMoVAR, per dataset."""
    out: list[Verdict] = []
    claims = [
        ("samovar", "samovar-lintrans", "better"),
        ("samovar", "samovar-fixedvar", "better"),
        ("samovar", "dlinear", "better"),
        ("samovar", "dlinear-released", "better"),  # DLinear with its own recipe
        ("samovar-eala", "samovar", "better"),
    ]
    for ds in datasets:
        for a, b, claim in claims:
            va, vb = values(runs, ds, a, "MSE"), values(runs, ds, b, "MSE")
            if va is None or vb is None:
                continue
            out.append(judge(va, vb, names=(a, b), dataset=ds, metric="MSE", claim=claim))
    return out


def prediction_note(runs: Runs, ds: str, seeded: str, single: str) -> str | None:
    """Is a one-seed variant outside the 95% prediction interval of one more seed of a
    3-seed model? (mean ± t·sd·√(1 + 1/n): where one seed of another kernel can be placed)."""
    import math

    from verdicts import t_quantile

    a, b = values(runs, ds, seeded, "MAE"), values(runs, ds, single, "MAE")
    if not isinstance(a, dict) or len(a) < 2 or b is None:
        return None
    if isinstance(b, dict) and len(b) != 1:
        return None  # several seeds: judged by a test, not placed by a prediction interval
    vs = list(a.values())
    n, mean, sd = len(vs), statistics.fmean(vs), statistics.stdev(vs)
    half = t_quantile(0.975, n - 1) * sd * math.sqrt(1 + 1 / n)
    x = _mean(b)
    where = "outside" if abs(x - mean) > half else "inside"
    return (
        f"{single} on {ds} (one seed, MAE {x:.3f}) lies {where} the 95% prediction interval of "
        f"one more seed of {seeded} ({mean:.3f} ± {half:.3f}, from {n} seeds)"
    )


def markdown(verdicts: list[Verdict], extra: list[str]) -> str:
    lines = [
        "## Verdicts",
        "",
        "Each claim is tested over seeds (`results/verdicts.py`): the mean difference A − B "
        "with its 95% confidence interval from a paired t-test (same seeds), Welch's t-test "
        "(different seeds) or a one-sample t-test against a deterministic model; 'keeps' uses a "
        f"non-inferiority margin of +{MARGIN:.0%} of B's mean. One seed on a side: cannot tell.",
        "",
        *(f"- {v.sentence()}" for v in verdicts),
        "",
        *extra,
    ]
    return "\n".join(lines) + "\n"
