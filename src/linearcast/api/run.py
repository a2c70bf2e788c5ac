"""A finished run and what can be done with it: :class:`Run` (evaluate, predict, forecast,
cross-validation, export) and :func:`load_run`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linearcast.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from linearcast.data import TimeSeriesDataset
    from linearcast.engine.config import TrainConfig
    from linearcast.serve.inference import Prediction

from linearcast.api.options import frame_dataset, run_frame_options


class Run:
    """A run directory and what can be done with it (the CLI's evaluate/predict/forecast/export).

    Args:
        run_dir: a directory written by ``train`` / :func:`fit`.
        dataset: the in-memory data the run was trained on, when it was given as an object.
        metrics: ``metrics.json``'s content (read from the directory when not given).
        history: the rows of ``history.csv`` (from the checkpoint when not given).

    Attributes:
        run_dir: the directory.
        config: the run's :class:`~linearcast.engine.TrainConfig`.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        dataset: TimeSeriesDataset | None = None,
        metrics: dict[str, Any] | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        from linearcast.engine.config import TrainConfig

        self.run_dir = Path(run_dir)
        if not (self.run_dir / "config.json").is_file():
            raise ConfigError(
                f"{self.run_dir}: not a run directory (no config.json); expected a folder "
                f"written by `linearcast train` or linearcast.fit()."
            )
        self.config: TrainConfig = TrainConfig.load(self.run_dir / "config.json")
        self._dataset = dataset
        self._metrics = metrics
        self._history = history

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}, model={self.config.model!r}, data={self.config.data!r})"

    # ------------------------------------------------------------------ results
    @property
    def metrics(self) -> dict[str, Any]:
        """``metrics.json`` (test and validation metrics, baseline, timing, ...)."""
        if self._metrics is None:
            path = self.run_dir / "metrics.json"
            if not path.is_file():
                raise ConfigError(f"{path}: no metrics yet (the run has not finished).")
            self._metrics = json.loads(path.read_text())
        return self._metrics

    @property
    def history(self) -> list[dict[str, Any]]:
        """One dict per epoch (the rows of ``history.csv``)."""
        if self._history is None:
            import csv

            path = self.run_dir / "history.csv"
            if not path.is_file():
                return []
            with path.open(newline="") as fh:
                self._history = [
                    {k: float(v) if v not in ("", None) else None for k, v in row.items()}
                    for row in csv.DictReader(fh)
                ]
        return self._history

    def _data(self, data: Any, options: dict[str, Any], method: str) -> Any:
        """A path stays a path (with reader options refused: use the run's); an object becomes a
        dataset; ``None`` is the data the run was trained on."""
        from linearcast.data.frames import is_in_memory

        if data is None:
            if options:
                raise ConfigError(
                    f"Run.{method}(): options {', '.join(map(repr, options))} need data: pass "
                    f"data= too (data options apply to a frame or array)."
                )
            return self._dataset
        if is_in_memory(data):
            return frame_dataset(data, run_frame_options(self.config, options), f"Run.{method}")
        if options:
            raise ConfigError(
                f"Run.{method}(): options {', '.join(map(repr, options))} for a file: set reader "
                f"options in the run (data_options) or use Run.forecast, which takes them."
            )
        return str(data)

    # ------------------------------------------------------------------ commands
    def evaluate(
        self,
        data: Any = None,
        *,
        split: str = "test",
        accelerator: str | None = None,
        batch_size: int = 0,
        level: Sequence[float] | float | None = None,
        **data_options: Any,
    ) -> dict[str, Any]:
        """Recompute the metrics with the best weights (``linearcast evaluate``).

        Args:
            data: other data (a path, a frame, an array), else the run's own.
            split: ``"test"``, ``"val"`` or ``"train"``.
            accelerator: where to run (``None``: the run's).
            batch_size: evaluation batch size (0: the run's).
            level: interval levels in percent (``[80, 90]``): coverage and width under
                ``"intervals"``.
            **data_options: options of :func:`linearcast.data.as_dataset` for a frame/array.

        Returns:
            ``{"metrics": {"overall": {"MAE", "RMSE", "MAPE", "MSE"}, "horizon_3": ...},
            "baseline", "windows", "table", "intervals", ...}``.
        """
        from linearcast.serve.inference import evaluate_run
        from linearcast.serve.intervals import asked_levels

        return evaluate_run(
            self.run_dir,
            data=self._data(data, data_options, "evaluate"),
            split=split,
            accelerator=accelerator,
            batch_size=batch_size,
            level=asked_levels(self.run_dir, level, self._dataset, accelerator),
        )

    def predict(
        self,
        data: Any = None,
        *,
        split: str = "test",
        out: str | Path | None = None,
        overwrite: bool = False,
        accelerator: str | None = None,
        units: str = "data",
        level: Sequence[float] | float | None = None,
        **data_options: Any,
    ) -> Prediction:
        """Forecasts of every window of a split (``linearcast predict``).

        Args:
            data: other data (a path, a frame, an array), else the run's own.
            split: ``"test"``, ``"val"`` or ``"train"``.
            out: also write it (``.npy``/``.npz``).
            overwrite: replace an existing ``out`` (never the data read or a file the run
                keeps, such as ``history.csv``).
            accelerator: where to run (``None``: the run's).
            units: ``"data"`` (default, the units of the data and of :meth:`forecast`, under
                every protocol) or ``"scaled"`` (standardised by the run's scaler: the space
                ett/ltsf metrics are reported in).
            level: interval levels in percent: ``.intervals`` of the result holds ``lo_90``,
                ``hi_90``, ... shaped like it (data units).
            **data_options: options of :func:`linearcast.data.as_dataset` for a frame/array.

        Returns:
            ``[S, T_out, N, C]`` float32 in ``units`` (its ``.units`` attribute names them:
            ``"data units"`` or ``"standardised units"``).
        """
        from linearcast.serve.inference import Prediction, predict_run
        from linearcast.serve.intervals import asked_levels

        res = predict_run(
            self.run_dir,
            out,
            data=self._data(data, data_options, "predict"),
            split=split,
            accelerator=accelerator,
            units=units,
            level=asked_levels(self.run_dir, level, self._dataset, accelerator),
            overwrite=overwrite,
        )
        return Prediction(res["prediction"], res["units"], res["intervals"])

    def forecast(
        self,
        data: Any,
        *,
        h: int | None = None,
        out: str | Path | None = None,
        overwrite: bool = False,
        accelerator: str | None = None,
        level: Sequence[float] | float | None = None,
        **data_options: Any,
    ) -> pd.DataFrame:
        """The ``out_steps`` steps after the end of ``data`` (``linearcast forecast``).

        Series are matched to the run's by name (a frame's columns or ``unique_id`` in any
        order); data whose series are not the run's is refused.

        Args:
            data: the recent history, at least ``in_steps`` steps: a frame, an array or a path
                (new data is always passed explicitly).
            h: forecast only the first ``h`` steps (neuralforecast's name; ``horizon=`` too);
                ``None``: the model's ``out_steps``, which is also the most it can give.
            out: also write it (``.csv``, ``.parquet``, ``.npz``).
            overwrite: replace an existing ``out`` (never the data read or a file the run
                keeps, such as ``history.csv``).
            accelerator: where to run (``None``: the run's).
            level: interval levels in percent (``[80, 90]``): columns ``y_hat_lo_90``,
                ``y_hat_hi_90`` per level (see ``linearcast forecast --help``).
            **data_options: ``freq_minutes=``, ``start=``, ... for a frame/array; reader
                options for a path. The run's own data options (``non_finite``,
                ``null_value``, ...) apply unless given here, as in ``linearcast forecast``.

        Returns:
            The long frame ``unique_id, ds, y_hat`` in data units, one row per (series, time);
            ``frame.attrs["units"]`` is ``"data units"``.
        """
        from linearcast.serve.forecast import check_writable, forecast_run
        from linearcast.serve.intervals import asked_levels

        if data is None:
            raise ConfigError("Run.forecast() needs the recent data: Run.forecast(data).")
        if "horizon" in data_options:
            if h is not None:
                raise ConfigError("Run.forecast(): give h= or horizon=, not both.")
            h = data_options.pop("horizon")
        if out is not None:
            check_writable(out, overwrite=overwrite, run_dir=self.run_dir)  # before the model
        fc = forecast_run(
            self.run_dir,
            data,
            data_options=data_options or None,
            accelerator=accelerator,
            horizon=h,
            level=asked_levels(self.run_dir, level, self._dataset, accelerator),
        )
        if out is not None:
            fc.save(out, overwrite=overwrite)
        return fc.to_frame()

    def cross_validation(
        self,
        data: Any = None,
        *,
        n_windows: int = 1,
        step_size: int = 1,
        refit: bool = False,
        level: Sequence[float] | float | None = None,
        out_dir: str | Path | None = None,
        accelerator: str | None = None,
        **data_options: Any,
    ) -> pd.DataFrame:
        """Rolling-origin evaluation (``linearcast backtest``; neuralforecast's name and
        defaults): ``n_windows`` cutoffs ``step_size`` steps apart, the last window's horizon
        ending at the data's end.

        Args:
            data: a path, a frame or an array; ``None``: the run's own data.
            n_windows: K, the number of cutoffs.
            step_size: steps between consecutive cutoffs.
            refit: train a model with the run's config on the rows up to each cutoff (one
                training per window) instead of using the run's weights.
            level: interval levels in percent (``[80, 90]``): columns ``y_hat_lo_90``,
                ``y_hat_hi_90`` and coverage per cutoff (each refit calibrated on its own).
            out_dir: also write ``linearcast backtest``'s files there (refit runs go to
                ``out_dir/refits``, by default to a new ``RUN_DIR/backtest-...``).
            accelerator: where to run (``None``: the run's).
            **data_options: options of :func:`linearcast.data.as_dataset` for a frame/array,
                reader options for a path (the run's own apply unless given).

        Returns:
            The long frame ``unique_id, ds, cutoff, y, y_hat`` (data units), one row per series
            x cutoff x horizon step; ``attrs["metrics"]``: the metrics per cutoff as records
            (``pd.DataFrame(cv.attrs["metrics"])``), ``attrs["overall"]``: over all windows.
        """
        from linearcast.serve.backtest import backtest_run
        from linearcast.serve.backtest_files import REFITS, check_out_dir, default_out_dir
        from linearcast.serve.intervals import asked_levels

        folder = out_dir
        if folder is None and refit is True:
            folder = default_out_dir(self.run_dir)
        if folder is not None:
            check_out_dir(folder, refit=refit is True)  # before any work
        bt = backtest_run(
            self.run_dir,
            self._dataset if data is None else data,
            n_windows=n_windows,
            step_size=step_size,
            refit=refit,
            refit_dir=Path(folder) / REFITS if folder is not None else None,
            data_options=data_options or None,
            accelerator=accelerator,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            level=asked_levels(self.run_dir, level, self._dataset, accelerator),
            calibration_data=self._dataset,
        )
        if out_dir is not None:
            bt.save(out_dir)
        frame = bt.frame
        frame.attrs |= {"metrics": bt.metrics.to_dict("records"), "overall": bt.overall}
        return frame

    def export_onnx(self, path: str | Path, *, check: bool = True) -> dict[str, Any]:
        """Export the best weights to ONNX, scaler folded in (``linearcast export --onnx``)."""
        from linearcast.serve.export import export_onnx

        return export_onnx(self.run_dir, path, check=check)


def load_run(path: str | Path) -> Run:
    """A finished run directory as a :class:`Run` (its data is not loaded until needed)."""
    return Run(path)


__all__ = ["Run", "load_run"]
