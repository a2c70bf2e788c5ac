"""linearcast: efficient attention-based forecasting of multivariate and spatio-temporal series.

Quick start (see :mod:`linearcast.api`)::

    import linearcast

    run = linearcast.fit(model="elinformer", data=df, protocol="pems", epochs=5)
    run.evaluate()["metrics"]["overall"]
    run.forecast(df.tail(288))            # unique_id, ds, y_hat
    run = linearcast.load_run("runs/...")

Subpackages (dependencies point one way: ``ops <- nn <- models``):

- :mod:`linearcast.ops` -- pure attention kernels (softmax, EALA, Linformer, linear).
- :mod:`linearcast.nn` -- modules built on the kernels.
- :mod:`linearcast.models` -- one file per model and an explicit ``REGISTRY``.
- :mod:`linearcast.data` -- readers, protocols, synthetic data, frames and arrays.
- :mod:`linearcast.metrics` -- masked, streaming metrics.
- :mod:`linearcast.engine` -- training: the loop, checkpoints, evaluation, run directories.
- :mod:`linearcast.serve` -- using a finished run: evaluate, predict, forecast, export.

Nothing happens at import time: ``fit``, ``load_run`` and ``Run`` are imported on first use,
so ``import linearcast`` loads neither torch nor pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linearcast._lazy import lazy_exports

if TYPE_CHECKING:
    from linearcast.api import Run, fit, load_run

__version__ = "0.1.0"

_EXPORTS = {"Run": "api", "fit": "api", "load_run": "api"}

__all__ = ["Run", "__version__", "fit", "load_run"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
