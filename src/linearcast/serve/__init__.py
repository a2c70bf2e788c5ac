"""The use side: what is done with a finished run (training it is :mod:`linearcast.engine`).

How forecasts are made, in one place:

- ``run.py`` -- open a finished run: its config and best checkpoint, checked to belong together
  (``read_run``), its data and model with the best weights (``load_run``, ``best_model``).
- ``inference.py`` -- recompute a run's metrics on a split (``evaluate_run``) or write the
  forecasts of a split's windows (``predict_run``, a :class:`Prediction`).
- ``forecast.py`` (+ ``forecast_inputs.py``: what a forecast reads and refuses;
  ``missing_inputs.py``: its missing readings under the run's rule, a null value given with it,
  series with no input reading) -- forecast the steps after the end of new data, with
  timestamps (``forecast_run``, a :class:`Forecast`).
- ``export.py`` (+ ``export_description.py``: the JSON file and ONNX metadata beside it) -- the
  best weights as an ONNX file in data units (``export_onnx``).
- ``backtest.py`` (+ ``backtest_inputs.py``, ``backtest_windows.py``, ``backtest_metrics.py``,
  ``backtest_refit.py``, ``backtest_files.py``, ``backtest_plot.py``) -- rolling-origin
  evaluation: K windows ending at the data's end, the errors per cutoff over time
  (``backtest_run``, a :class:`Backtest`).
- ``outputs.py`` -- the files these write, checked first and written whole or not at all.

Prediction intervals belong here too. This layer sits above ``engine`` and below
``cli`` / ``api``: it imports the engine (config, checkpoints, data and model setup, evaluation),
and nothing in ``engine`` imports it (an import-linter contract).

Typical use::

    from linearcast.serve import evaluate_run, forecast_run

    evaluate_run("runs/elinformer-PEMS08-...")["metrics"]["overall"]["MAE"]
    forecast_run("runs/elinformer-PEMS08-...", data="last-day.npz").to_frame()

Names are imported on first use (``import linearcast.serve`` loads neither torch nor Fabric).
``load_run`` here is the low-level one (checkpoint, config, prepared data); the Python API's
:func:`linearcast.load_run` wraps a run directory in a :class:`linearcast.Run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linearcast._lazy import lazy_exports

if TYPE_CHECKING:
    from linearcast.serve.backtest import Backtest, backtest_run
    from linearcast.serve.export import export_onnx, missing_onnx_packages
    from linearcast.serve.forecast import Forecast, check_writable, forecast_run
    from linearcast.serve.inference import Prediction, evaluate_run, predict_run
    from linearcast.serve.run import load_run, read_run

_EXPORTS: dict[str, str] = {
    "Backtest": "backtest",
    "backtest_run": "backtest",
    "export_onnx": "export",
    "missing_onnx_packages": "export",
    "Forecast": "forecast",
    "check_writable": "forecast",
    "forecast_run": "forecast",
    "Prediction": "inference",
    "evaluate_run": "inference",
    "predict_run": "inference",
    "load_run": "run",
    "read_run": "run",
}

__all__ = [
    "Backtest",
    "Forecast",
    "Prediction",
    "backtest_run",
    "check_writable",
    "evaluate_run",
    "export_onnx",
    "forecast_run",
    "load_run",
    "missing_onnx_packages",
    "predict_run",
    "read_run",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
