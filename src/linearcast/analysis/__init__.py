"""Analysis tools: the exact VAR form of SAMoVAR, lag norms and plots."""

from linearcast.analysis.var import (
    MAX_TIME_LAG_ELEMENTS,
    VarCoefficients,
    block_diagonal,
    frozen_forecast,
    lag_norms,
    plot_var_coefficients,
    reconstruct,
    var_coefficients,
)

__all__ = [
    "MAX_TIME_LAG_ELEMENTS",
    "VarCoefficients",
    "block_diagonal",
    "frozen_forecast",
    "lag_norms",
    "plot_var_coefficients",
    "reconstruct",
    "var_coefficients",
]
