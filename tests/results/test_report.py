"""The results report: README's table and ranks are the committed run JSONs, and the standing
of a model is judged by the same tests as every verdict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "results"))

from report import DOCS_COLUMNS, lh_tables, load_runs, mae_table, readme_block  # noqa: E402
from report_verdicts import prediction_note, standing  # noqa: E402


def _run(model: str, seed: int, mae: float, trainable: int = 10) -> dict[str, Any]:
    return {
        "model": model,
        "seed": seed,
        "parameters": {"trainable": trainable},
        "metrics": {"test": {"overall": {"MAE": mae}}},
        "masked_fraction": {"test": 0.0},
    }


def _runs(table: dict[str, list[float]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {
        ("d", m): [_run(m, s, v, 0 if m == "last-value" else 10) for s, v in enumerate(vs)]
        for m, vs in table.items()
    }


def _block(page: Path, name: str) -> str:
    text = page.read_text()
    start, end = f"<!-- {name} -->\n", f"\n<!-- /{name} -->"
    assert start in text and end in text, f"{page.name} lost its {name} markers"
    return text.split(start, 1)[1].split(end, 1)[0]


def test_readme_and_docs_tables_are_what_the_committed_jsons_give() -> None:
    st, lh = load_runs("spatiotemporal"), load_runs("longhorizon")
    stale = "is stale: run `python results/report.py spatiotemporal` (and `longhorizon`)"
    assert _block(ROOT / "README.md", "standing:spatiotemporal") == readme_block(st), stale
    docs = ROOT / "docs" / "results.md"
    assert _block(docs, "table:spatiotemporal") == "\n".join(mae_table(st, DOCS_COLUMNS)), stale
    assert _block(docs, "table:longhorizon") == lh_tables(lh).strip(), stale


def test_standing_ranks_by_mean_and_tests_the_gap_to_the_best() -> None:
    runs = _runs({"elinformer": [2.0, 2.1, 2.2], "stid": [1.0, 1.05, 1.1], "last-value": [3.0]})
    s = standing(runs, "d", "elinformer")
    assert s is not None and (s.position, s.of, s.other) == (2, 3, "stid")
    assert s.verdict.test is not None and s.verdict.test.name == "paired t-test"
    assert s.verdict.test.low > 0 and "excludes 0" in s.gap_words()


def test_the_best_model_is_compared_with_the_runner_up() -> None:
    runs = _runs({"elinformer": [1.0, 1.5, 0.5], "stid": [1.1, 0.9, 1.3], "last-value": [3.0]})
    s = standing(runs, "d", "elinformer")
    assert s is not None and (s.position, s.other) == (1, "stid")
    assert "contains 0" in s.gap_words()  # a noisy lead is not called a win


def test_standing_is_only_among_the_models_asked_for() -> None:
    runs = _runs({"elinformer": [2.0, 2.1], "elinformer-gauss": [1.0, 1.1], "stid": [3.0, 3.1]})
    s = standing(runs, "d", "elinformer", among=("stid",))
    assert s is not None and (s.position, s.of) == (1, 2)


def test_one_seed_baseline_has_no_interval_but_a_prediction_note() -> None:
    runs = _runs({"elinformer": [2.0, 2.1, 2.2], "stid": [9.0]})
    s = standing(runs, "d", "elinformer")
    assert s is not None and s.verdict.test is None and "no interval" in s.gap_words()
    note = prediction_note(runs, "d", "elinformer", "stid")
    assert note is not None and "outside" in note
    runs3 = _runs({"elinformer": [2.0, 2.1, 2.2], "stid": [9.0, 9.1, 9.2]})
    assert prediction_note(runs3, "d", "elinformer", "stid") is None  # tested, not placed
