"""The files a backtest writes, into a folder of their own (by default a new one in the run
directory), checked before any work is done and each written whole or not at all::

    backtest.csv            the long frame (or --out FILE: .csv or .parquet)
    backtest_metrics.csv    one row per cutoff: window, cutoff, MAE, RMSE, MAPE (%), MSE,
                            scored, targets
    backtest_metrics.json   {"info", "overall" (with "by_horizon"), "per_cutoff"}; NaN as null
    backtest.png            the error per cutoff over time
    refits/                 with --refit: one run directory per cutoff (cutoff-001, ...)

Nothing is overwritten: a folder that already holds one of these is refused.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from linearcast import jsonio
from linearcast.atomic import make_folder, write_text
from linearcast.errors import ConfigError
from linearcast.serve.outputs import atomic_output, check_output_path, same_file

if TYPE_CHECKING:
    from linearcast.serve.backtest import Backtest

__all__ = ["FILES", "REFITS", "check_out_dir", "default_out_dir", "save_backtest"]

FRAME = "backtest.csv"
FILES = (FRAME, "backtest_metrics.csv", "backtest_metrics.json", "backtest.png")
REFITS = "refits"
FRAME_SUFFIXES = (".csv", ".parquet")


def default_out_dir(run_dir: str | Path, now: dt.datetime | None = None) -> Path:
    """A folder name in the run directory that is not taken: ``backtest-YYYYmmdd-HHMMSS[-k]``."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(run_dir) / f"backtest-{stamp}"
    path, k = base, 0
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def check_out_dir(
    out_dir: str | Path, frame_path: str | Path | None = None, *, refit: bool = False
) -> tuple[Path, Path]:
    """``(out_dir, frame file)`` if the backtest's files can be written there, none of them
    existing yet (checked before the model runs).

    Raises:
        ConfigError: a file in place of the folder, a file that exists, another ``--out``
            suffix or a missing folder for it, ``.parquet`` without pyarrow.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(
            f"{out_dir}: --out-dir expected a folder for the backtest's files, found a file; "
            f"choose another --out-dir."
        )
    frame = Path(frame_path) if frame_path is not None else out_dir / FRAME
    if frame_path is not None:
        check_output_path(frame, FRAME_SUFFIXES, flag="")  # never onto a run's own files
    if frame.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(
            f"{frame}: writing .parquet needs the pyarrow package, which is not installed "
            f"(pip install pyarrow); or write --out FILE.csv."
        )
    names = FILES[1:] + ((REFITS,) if refit else ())
    own = [out_dir / n for n in names]
    if frame_path is not None and any(same_file(frame, p) for p in own):
        raise ConfigError(
            f"{frame}: expected a file of your own for --out, found the name of a file the "
            f"backtest writes into --out-dir ({', '.join(names)}); choose another --out name."
        )
    taken = [p for p in (frame, *own) if p.exists()]
    if taken:
        fix = (
            "choose another --out (frame_path= in Python)"
            if frame_path is not None and taken[0] == frame
            else "choose another --out-dir (out_dir= in Python), or leave it out for a new folder"
        )
        raise ConfigError(
            f"{taken[0]}: already exists and is kept (a backtest never overwrites files); {fix}."
        )
    return out_dir, frame


def save_backtest(
    bt: Backtest, out_dir: str | Path, frame_path: str | Path | None = None
) -> dict[str, Path]:
    """Write the frame, the metrics (CSV and JSON) and the plot.

    Args:
        bt: the backtest.
        out_dir: the folder (created when missing).
        frame_path: the long frame's file (``.csv``/``.parquet``; default
            ``out_dir/backtest.csv``).

    Returns:
        ``{"frame", "metrics_csv", "metrics_json", "plot"}`` paths.

    Raises:
        ConfigError: as :func:`check_out_dir`; a write that fails (nothing half-written stays).
    """
    from linearcast.serve.backtest_plot import backtest_figure

    out_dir, frame = check_out_dir(out_dir, frame_path)
    make_folder(out_dir, what="the backtest's files", fix="--out-dir")
    paths = {
        "frame": frame,
        "metrics_csv": out_dir / FILES[1],
        "metrics_json": out_dir / FILES[2],
        "plot": out_dir / FILES[3],
    }
    with atomic_output(frame) as tmp:
        if frame.suffix.lower() == ".parquet":
            bt.frame.to_parquet(tmp, index=False)
        else:
            bt.frame.to_csv(tmp, index=False)
    with atomic_output(paths["metrics_csv"], "--out-dir") as tmp:
        bt.metrics.to_csv(tmp, index=False)
    report = {
        "info": bt.info,
        "overall": bt.overall,
        "per_cutoff": bt.metrics.to_dict(orient="records"),
        "notes": bt.notes,
    }
    text = jsonio.dumps(report, fallback=str) + "\n"  # timestamps as text
    write_text(paths["metrics_json"], text, what="the backtest metrics", fix="--out-dir")
    fig = backtest_figure(bt)
    with atomic_output(paths["plot"], "--out-dir") as tmp:
        fig.savefig(tmp)
    return paths
