"""linearcast: efficient attention-based forecasting of multivariate and spatio-temporal series.

Subpackages (dependencies point one way: ``ops <- nn <- models``):

- :mod:`linearcast.ops` -- pure attention kernels (softmax, EALA, Linformer, linear).
- :mod:`linearcast.nn` -- modules built on the kernels.
- :mod:`linearcast.models` -- one file per model and an explicit ``REGISTRY``.
- :mod:`linearcast.data` -- readers, protocols, synthetic data.
- :mod:`linearcast.metrics` -- masked, streaming metrics.

Nothing happens at import time.
"""

__version__ = "0.1.0"
