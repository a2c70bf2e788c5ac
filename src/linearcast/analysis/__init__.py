"""Analysis tools: attention profiles, the exact VAR form of SAMoVAR, lag norms and plots."""

from linearcast.analysis.attention import LayerProfile, attention_profile, format_profile
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
    "LayerProfile",
    "VarCoefficients",
    "attention_profile",
    "block_diagonal",
    "format_profile",
    "frozen_forecast",
    "lag_norms",
    "plot_var_coefficients",
    "reconstruct",
    "var_coefficients",
]
