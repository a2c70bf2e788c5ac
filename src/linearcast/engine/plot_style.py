"""What the run-directory figures share: colours, the masked-readings tag, and an Agg figure
(object API: no pyplot, no global backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MASKED_GID = "masked"  # gid of the spans that mark masked readings (tests look for it)
MODEL_COLOR = "tab:red"
BASELINE_COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:brown")


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    fig.savefig(path)
    return Path(path)


def null_text(null_value: float) -> str:
    return "NaN" if math.isnan(null_value) else f"null = {null_value:g}"
