"""Tables and plots of a results table, from its per-run JSON files (nothing is re-trained).

    python results/report.py spatiotemporal    # -> results/spatiotemporal/README.md + .png
    python results/report.py longhorizon       # -> results/longhorizon/README.md + .png

Each also rewrites its verdict block (between ``<!-- verdicts:TABLE -->`` markers) in
docs/results.md; ``spatiotemporal`` also rewrites README.md's table and ELinFormer's rank among
the baselines (between ``<!-- standing:spatiotemporal -->`` markers).

Seeds of one (dataset, model) are aggregated as mean ± sample standard deviation; a model run
with one seed shows its value alone. Timings are CPU seconds per epoch of the training process
(``cpu_seconds``; wall time on a shared machine moves with the other load), peak memory the
process's peak RSS, as ``metrics.json`` records them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "results"))

from plans import CORE, FLOORS, ONE_SEED, REVIN, ST_DATASETS, TABLES  # noqa: E402
from report_verdicts import (  # noqa: E402
    MARGIN,
    lh_verdicts,
    markdown,
    prediction_note,
    st_ranks,
    st_verdicts,
    standing,
    values,
)
from verdicts import judge  # noqa: E402

#: the field's baselines (issue 25), in the order the tables show them
BASELINES = ("stid", "gwnet", "gwnet-adaptive", "agcrn", "dcrnn", "stgcn")

#: the models ELinFormer is ranked among on the README's front page: STAEformer, the field's
#: baselines and the floors (not our own kernel ablations or the instance-normalised variants,
#: which the verdict block ranks too)
FIELD = ("staeformer", *BASELINES, "last-value", "historical-average", "dlinear", "var")
#: the README table's columns and their names
README_COLUMNS = {
    "elinformer": "ELinFormer",
    "staeformer": "STAEformer",
    "stid": "STID",
    "gwnet": "GWNet",
    "gwnet-adaptive": "GWNet (adaptive)",
    "agcrn": "AGCRN",
    "dcrnn": "DCRNN",
    "stgcn": "STGCN",
    "last-value": "last value",
    "dlinear": "DLinear",
}
NAMES = {**README_COLUMNS, "historical-average": "historical average", "var": "VAR"}
#: docs/results.md's spatio-temporal table: the core pair, our θ variants and the floors
DOCS_COLUMNS = {
    "staeformer": "STAEformer",
    "elinformer": "ELinFormer",
    "elinformer-gauss": "ELinFormer θ=1",
    "elinformer-learned": "ELinFormer learned θ",
    "last-value": "last value",
    "historical-average": "hist. average",
    "dlinear": "DLinear",
    "var": "VAR",
}
README_DATASETS = {
    "hzmetro": "HZMetro inflow, 80 stations",
    "los_loop": "Los-loop speed, 207 sensors",
    "nyc_taxi": "NYC taxi inflow, 69 zones",
    "chickenpox": "chickenpox, 20 counties",
}

Runs = dict[tuple[str, str], list[dict[str, Any]]]


def load_runs(table: str) -> Runs:
    """``{(dataset, model): [run summaries]}`` of a table."""
    runs: Runs = defaultdict(list)
    for path in sorted((ROOT / "results" / table / "runs").glob("*.json")):
        r = json.loads(path.read_text())
        key = r["model"] if r.get("width", "reduced") == "reduced" else f"{r['model']} (official)"
        runs[(r["dataset"], key)].append(r)
    return runs


def _stat(values: list[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else None


def _fmt(values: list[float], digits: int = 3) -> str:
    mean, std = _stat(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _metric(r: dict[str, Any], horizon: str, name: str) -> float:
    return float(r["metrics"]["test"][horizon][name])


# ---------------------------------------------------------------------------- spatio-temporal
ST_ORDER = (*CORE, *REVIN, *BASELINES, *ONE_SEED, *FLOORS)


def _best_epochs(rs: list[dict[str, Any]]) -> str:
    """The best validation epoch of each seed of the epochs run (a best epoch equal to the last
    one means the model was still improving when the budget ended)."""
    return ", ".join(str(r.get("best_epoch", "?")) for r in rs) + f" of {rs[0].get('epochs', '?')}"


def st_tables(runs: Runs) -> str:
    """Markdown tables per dataset, each with the tested ELinFormer-vs-STAEformer verdict."""
    lines: list[str] = []
    datasets = [d for d in ST_DATASETS if any(k[0] == d for k in runs)]
    for ds in datasets:
        note = ST_DATASETS[ds].note
        models = [m for m in ST_ORDER if (ds, m) in runs]
        models += sorted(m for (d, m) in runs if d == ds and m not in models)
        some = runs[(ds, models[0])][0]
        masked = some.get("masked_fraction") or {}
        lines += [
            f"### {ds}",
            "",
            f"{note}; protocol `{some['protocol']}`, test windows {some['windows']['test']}, "
            f"{100 * masked.get('test', 0):.1f}% of the test targets masked (null "
            f"{some.get('null_value')}), MAPE over |y| > {some.get('mape_floor', 0):.3g}.",
            "",
            "| model | seeds | MAE | RMSE | MAPE % | MAE @3 | MAE @6 | MAE @12 | RMSE @12 | "
            "best epoch | s/epoch (CPU) | peak MiB | parameters |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in models:
            rs = runs[(ds, m)]
            trained = rs[0].get("cpu_seconds_per_epoch") is not None
            cells = [
                m,
                str(len(rs)),
                _fmt([_metric(r, "overall", "MAE") for r in rs]),
                _fmt([_metric(r, "overall", "RMSE") for r in rs]),
                _fmt([_metric(r, "overall", "MAPE") for r in rs], 2),
                *(_fmt([_metric(r, f"horizon_{h}", "MAE") for r in rs]) for h in (3, 6, 12)),
                _fmt([_metric(r, "horizon_12", "RMSE") for r in rs]),
                _best_epochs(rs) if trained else "—",
                _fmt([r["cpu_seconds_per_epoch"] for r in rs], 0) if trained else "—",
                f"{statistics.fmean(r['peak_memory']['MiB'] for r in rs):.0f}",
                f"{rs[0]['parameters']['trainable']:,}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if (ds, "elinformer") in runs and (ds, "staeformer") in runs:
            keeps = judge(values(runs, ds, "elinformer", "MAE"),  # type: ignore[arg-type]
                          values(runs, ds, "staeformer", "MAE"),  # type: ignore[arg-type]
                          names=("elinformer", "staeformer"), dataset=ds, metric="MAE",
                          claim="keeps", margin=MARGIN)  # fmt: skip
            lines += [keeps.sentence(), ""]
    return "\n".join(lines)


def learned_theta(runs: Runs) -> str:
    """Mean learned θ per layer (temporal / spatial), over heads and seeds, per dataset."""
    rows = []
    for (ds, m), rs in sorted(runs.items()):
        if m != "elinformer-learned":
            continue
        layers: dict[str, list[float]] = defaultdict(list)
        for r in rs:
            for name, thetas in (r.get("learned_theta") or {}).items():
                layers[name].extend(thetas)
        if layers:
            cells = ", ".join(
                f"{name.replace('attn_layers_', '').replace('.attn', '')}: "
                f"{min(v):.2f}..{max(v):.2f}"
                for name, v in layers.items()
            )
            rows.append(f"| {ds} | {len(rs)} | {cells} |")
    if not rows:
        return ""
    return "\n".join(
        [
            "### Learned θ (elinformer-learned; range over the heads and seeds of each layer; "
            "t = temporal, s = spatial layer)",
            "",
            "| dataset | seeds | θ per layer |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


def _bar_panel(
    ax: Any,
    runs: Runs,
    ds: str,
    models: list[str],
    metric: str,
    labels: list[str],
    colors: list[str],
) -> list[float]:
    """Horizontal bars of one dataset's test ``metric`` per model, mean ± std over seeds, the
    first model on top; returns the means (the caller sets limits, labels and title)."""
    stats = [_stat([_metric(r, "overall", metric) for r in runs[(ds, m)]]) for m in models]
    means = [mean for mean, _ in stats]
    ax.barh(range(len(models)), means, xerr=[std or 0.0 for _, std in stats], color=colors,
            capsize=3)  # fmt: skip
    for i, (mean, std) in enumerate(stats):  # the number, readable where bars look alike
        text = f"{mean:.4g}" + (f" ± {std:.2g}" if std is not None else "")
        ax.annotate(text, (mean + (std or 0.0), i), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(models)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)
    return means


def st_plot(runs: Runs, path: Path) -> None:
    """One panel per dataset: test MAE per model (mean ± std over seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = [d for d in ST_DATASETS if any(k[0] == d for k in runs)]
    if not datasets:
        return
    fig = Figure(figsize=(4.2 * len(datasets), 4.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets, strict=True):
        models = [m for m in ST_ORDER if (ds, m) in runs]
        colors = ["tab:blue" if m in CORE else "tab:orange" if m in ONE_SEED else "tab:grey"
                  for m in models]  # fmt: skip
        labels = [f"{m} ({len(runs[(ds, m)])})" for m in models]
        means = _bar_panel(ax, runs, ds, models, "MAE", labels, colors)
        ax.set_xlim(left=min(means) * 0.9, right=max(means) * 1.3)  # room for the numbers
        ax.set_xlabel("test MAE (data units), mean ± std over seeds")
        ax.set_title(ds)
    fig.suptitle(
        "Spatio-temporal test MAE: blue = core models (3 seeds planned), orange = one-seed "
        "variants, grey = baselines; (seeds run), mean ± std"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------------- long horizon
LH_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "exchange", "ili")
LH_ORDER = (
    "samovar",
    "samovar-lintrans",
    "samovar-fixedvar",
    "samovar-eala",
    "dlinear",
    "dlinear-released",
)


def lh_tables(runs: Runs) -> str:
    """MSE/MAE per dataset and model (standardised units), persistence from the baseline."""
    lines = [
        "| dataset | horizon | model | seeds | MSE | MAE | s/epoch (CPU) | parameters |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ds in [d for d in LH_DATASETS if any(k[0] == d for k in runs)]:
        models = [m for m in LH_ORDER if (ds, m) in runs]
        horizon = None
        for m in models:
            rs = runs[(ds, m)]
            horizon = rs[0]["config"]["protocol_overrides"].get("out_steps")
            lines.append(
                f"| {ds} | {horizon} | {m} | {len(rs)} | "
                f"{_fmt([_metric(r, 'overall', 'MSE') for r in rs])} | "
                f"{_fmt([_metric(r, 'overall', 'MAE') for r in rs])} | "
                f"{_fmt([r['cpu_seconds_per_epoch'] for r in rs], 0)} | "
                f"{rs[0]['parameters']['trainable']:,} |"
            )
        base = next((rs[0]["baseline"] for (d, _), rs in runs.items() if d == ds), None)
        if base:
            t = base["test"]["overall"]
            lines.append(
                f"| {ds} | {horizon} | persistence (last value) | — | {t['MSE']:.3f} | "
                f"{t['MAE']:.3f} | — | 0 |"
            )
    return "\n".join(lines) + "\n"


LH_NOTE = """
MSE/MAE in standardised units (per-channel z-score fit on the training split), every test
window; persistence repeats the last observed step. SAMoVAR's VAR coefficients of the seed-0
model per dataset: `python results/analyze.py var` -> `results/analysis/var_<dataset>.png`.
"""


def lh_plot(runs: Runs, path: Path) -> None:
    """One panel per dataset: test MSE per model, mean ± std over seeds (persistence: axis)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = [d for d in LH_DATASETS if any(k[0] == d for k in runs)]
    if not datasets:
        return
    fig = Figure(figsize=(3.6 * len(datasets), 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets, strict=True):
        models = [m for m in LH_ORDER if (ds, m) in runs]
        colors = ["tab:blue" if m == "samovar" else "tab:grey" if m.startswith("dlinear")
                  else "tab:orange" for m in models]  # fmt: skip
        labels = [f"{m} ({len(runs[(ds, m)])})" for m in models]
        means = _bar_panel(ax, runs, ds, models, "MSE", labels, colors)
        ax.set_xlim(left=min(means) * 0.9, right=max(means) * 1.15)  # room for the numbers
        base = runs[(ds, models[0])][0]["baseline"]["test"]["overall"]["MSE"]
        ax.set_xlabel(f"test MSE, standardised (persistence {base:.2f})", fontsize=8)
        horizon = runs[(ds, models[0])][0]["config"]["protocol_overrides"].get("out_steps")
        ax.set_title(f"{ds}, horizon {horizon}")
    fig.suptitle("SAMoVAR (blue) vs its controls (orange) and DLinear; (seeds), mean ± std")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=sorted(TABLES))
    args = parser.parse_args(argv)
    runs = load_runs(args.table)
    out_dir = ROOT / "results" / args.table
    out_dir.mkdir(parents=True, exist_ok=True)
    n_runs = sum(len(v) for v in runs.values())
    planned = len(TABLES[args.table].runs)
    head = [
        f"# {TABLES[args.table].title}",
        "",
        f"{n_runs} of {planned} planned runs finished; regenerate with `python results/report.py "
        f"{args.table}` (runs: `python results/run.py {args.table}`, resumable). Each run's JSON "
        f"in `runs/` holds its command, resolved config, metrics, timing, memory and commit.",
        "",
    ]
    from linearcast import jsonio

    if args.table in ("spatiotemporal", "official-width"):
        body = st_tables(runs)
        datasets = [d for d in ST_DATASETS if any(k[0] == d for k in runs)]
        verdicts = st_verdicts(runs, datasets, BASELINES)
        notes = [
            note
            for ds in datasets
            for single in (*ONE_SEED, *BASELINES)
            if (note := prediction_note(runs, ds, "elinformer", single))
        ]
        extra = [
            "Where ELinFormer stands:",
            "",
            *st_ranks(runs, datasets),
            "",
            "One-seed kernels and baselines against the 3-seed ELinFormer:",
            "",
            *(f"- {n}." for n in notes),
        ]
        verdict_md = markdown(verdicts, extra)
        text = "\n".join(head) + body + "\n" + learned_theta(runs) + "\n" + verdict_md
        st_plot(runs, out_dir / f"{args.table}.png")
        if args.table == "spatiotemporal":
            _replace_block(ROOT / "README.md", "standing:spatiotemporal", readme_block(runs))
            table = "\n".join(mae_table(runs, DOCS_COLUMNS))
            _replace_block(ROOT / "docs" / "results.md", "table:spatiotemporal", table)
    else:
        datasets = [d for d in LH_DATASETS if any(k[0] == d for k in runs)]
        verdicts = lh_verdicts(runs, datasets)
        verdict_md = markdown(verdicts, [])
        text = "\n".join(head) + "\n" + lh_tables(runs) + LH_NOTE + "\n" + verdict_md
        lh_plot(runs, out_dir / f"{args.table}.png")
        _replace_block(ROOT / "docs" / "results.md", "table:longhorizon", lh_tables(runs).strip())
    (out_dir / "verdicts.json").write_text(
        jsonio.dumps([v.as_dict() for v in verdicts], indent=1) + "\n"
    )
    (out_dir / "README.md").write_text(text)
    _update_results_page(args.table, verdict_md)
    print(text)
    return 0


def mae_table(runs: Runs, columns: dict[str, str]) -> list[str]:
    """A markdown table of test MAE per dataset (rows) and model (``columns``: key -> title):
    mean ± std over seeds, seeds in brackets for trained models, the row's best in bold, "—"
    where a model has not run."""
    lines = [
        "| dataset (targets masked) | " + " | ".join(columns.values()) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for ds, title in README_DATASETS.items():
        means = {
            m: statistics.fmean(_metric(r, "overall", "MAE") for r in runs[(ds, m)])
            for m in columns
            if (ds, m) in runs
        }
        if not means:
            continue
        best = min(means, key=lambda m: means[m])
        cells = []
        for m in columns:
            if m not in means:
                cells.append("—")
                continue
            rs = runs[(ds, m)]
            text = _fmt([_metric(r, "overall", "MAE") for r in rs], 3 if means[m] < 10 else 2)
            text = f"**{text}**" if m == best else text
            trained = rs[0]["parameters"]["trainable"] > 0
            cells.append(f"{text} ({len(rs)})" if trained else text)
        masked = runs[(ds, next(iter(means)))][0]["masked_fraction"].get("test", 0)
        lines.append(f"| {title} ({100 * masked:.1f}%) | " + " | ".join(cells) + " |")
    return lines


def readme_block(runs: Runs) -> str:
    """The README's spatio-temporal table (:func:`mae_table` of :data:`README_COLUMNS`) and
    where ELinFormer stands among :data:`FIELD` on each dataset."""
    lines = mae_table(runs, README_COLUMNS)
    ranks = []
    for ds, title in README_DATASETS.items():
        s = standing(runs, ds, "elinformer", FIELD)
        if s is not None:
            name = NAMES.get(s.other, s.other)
            where = "best" if s.position > 1 else "runner-up"
            ranks.append(
                f"- {title.split(',')[0]}: **{s.position} of {s.of}**; the {where} is {name} "
                f"({s.other_mean:.3f}), ELinFormer − {name} = {s.gap_words()}."
            )
    return "\n".join(
        [
            *lines,
            "",
            "ELinFormer's rank by mean test MAE among STAEformer, the baselines above, historical "
            "average and VAR, with the gap to the best (or the runner-up) and its 95% interval "
            "(`results/verdicts.py`; one seed on a side: no interval):",
            "",
            *ranks,
        ]
    )


def _replace_block(page: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->`` of ``page`` (if it has
    that block)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = page.read_text()
    if start not in text or end not in text:
        return
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    page.write_text(f"{before}{start}\n{body}\n{end}{after}")


def _update_results_page(table: str, verdict_md: str) -> None:
    """Replace the marked verdict block of docs/results.md (if it has one for ``table``)."""
    body = verdict_md.split("\n", 2)[2].strip()  # without the "## Verdicts" heading
    _replace_block(ROOT / "docs" / "results.md", f"verdicts:{table}", body)


if __name__ == "__main__":
    raise SystemExit(main())
