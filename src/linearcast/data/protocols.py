"""Named evaluation protocols: split, windows, scaler, time features, null value.

A number is only comparable with a paper's when the protocol matches, so each preset is a
frozen :class:`Protocol` and every result should print :attr:`Protocol.label`.

Three ways to split, all with windows of ``in_steps`` inputs followed by ``out_steps`` targets
and a start every ``stride`` rows:

``"basicts"`` (BasicTS ``TimeSeriesForecastingDataset``, ``overlap=False``)
    Split the *time axis*: ``val = int(T·r_val)``, ``test = int(T·r_test)`` rows, train the
    rest; windows lie entirely inside their part (no lookback borrowed across splits).
    PEMS08 (T = 17856, 6:2:2, 12→12): rows 10714 / 3571 / 3571, windows
    **10691 / 3548 / 3548**.
``"staeformer"`` (STAEformer ``index.npz``, from the DCRNN/GWNet recipe)
    Make every window of the series, ``S = T - in - out + 1`` (17833 for PEMS08), then split
    the *list of windows* in order: ``train = round(S·r_train)``, ``val = round(S·r_val)``,
    test the rest. PEMS08: **10700 / 3567 / 3566** (checked against the published index files
    of PEMS03/04/07/08, METR-LA and PEMS-BAY). Val/test inputs overlap the previous part's
    targets (that is how the published numbers were made).
``"ltsf"`` (Informer/Autoformer ``Dataset_ETT_*`` / ``Dataset_Custom``)
    Split the time axis (``12/4/4`` months of 30 days for ETT, else ``int(T·0.7)`` train,
    ``int(T·0.2)`` test, val the rest); val/test windows *borrow* ``in_steps`` rows of lookback
    from the previous part. ETTh1 (96→96): **8449 / 2785 / 2785**.

The scaler is fit on the training rows only: ``[0, train_end)`` for ``basicts``/``ltsf``, the
rows covered by the training inputs for ``staeformer`` (see :mod:`linearcast.data.scaler`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.prepared import SPLITS, PreparedData, prepare
from linearcast.data.scaler import INPUT_FILLS, InputFill, ScalerMode
from linearcast.errors import ConfigError, DataError

SplitMode = Literal["basicts", "staeformer", "ltsf"]


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol (see the module docstring for the split modes).

    Attributes:
        name: preset name (``pems``, ``metr``, ``ett``, ``ltsf``, ...).
        in_steps: input window length.
        out_steps: forecast horizon length.
        stride: rows between consecutive window starts.
        split_ratios: train/val/test fractions (ignored when ``split_months`` is set).
        split_months: train/val/test lengths in 30-day months (ETT: ``(12, 4, 4)``).
        split_mode: ``"basicts"``, ``"staeformer"`` or ``"ltsf"``.
        scaler: ``"global"`` (one mean/std of the target) or ``"per_channel"`` (one per series).
        scaler_mask_null: fit the scaler ignoring null readings (NaN/±inf are always ignored).
        add_time_of_day: add the time-of-day fraction as input channel.
        add_day_of_week: add the day of week (0..6) as input channel.
        null_value: value that marks a missing reading besides NaN/±inf (``None``: the
            dataset's own); missing readings are left out of the scaler fit, the loss and the
            metrics, and filled in the model's input (see ``input_fill``).
        input_fill: what a missing input reading becomes: ``"last"`` the last observation
            before it in the window (the training mean when there is none), ``"mean"`` the
            training mean, ``"keep"`` a null-valued reading is scaled as a value (STAEformer's
            and BasicTS's inputs; NaN/±inf are filled as by ``"last"``), ``"auto"`` (default)
            ``"keep"`` when the null value is 0 (the traffic convention: published numbers
            were trained on zeros fed as readings) and ``"last"`` otherwise (NaN gaps, a
            sentinel such as -200 that must never reach a model as a value).
        allow_mostly_missing: train even when the null value marks more than half of the
            training targets (or of the whole series); by default that stops with a
            :class:`DataError`, since a default that hides most targets (real zeros of a count
            series) changes what the metrics mean.
        metrics_space: ``"raw"`` (targets and metrics in data units) or ``"scaled"``.
        loss: name of the training loss the reference code uses (a hint for the engine).
        horizons: 1-indexed steps reported separately by the evaluator.
        mape_floor: MAPE leaves out targets with ``|y|`` at or below this (data units); ``None``:
            ``max(5e-5, 1e-3 · mean |y|)`` over the training targets, so that readings near zero
            (a speed of 1e-17, a count of 0.001) cannot dominate it. At 5e-5 it is BasicTS's
            rule; on PEMS/METR-LA data the automatic floor leaves out no real reading.
        target_channel: the channel of ``values`` that is forecast.
        description: one line for listings.
    """

    name: str
    in_steps: int = 12
    out_steps: int = 12
    stride: int = 1
    split_ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    split_months: tuple[int, int, int] | None = None
    split_mode: SplitMode = "basicts"
    scaler: ScalerMode = "global"
    scaler_mask_null: bool = True
    add_time_of_day: bool = True
    add_day_of_week: bool = True
    null_value: float | None = 0.0
    input_fill: InputFill | Literal["auto"] = "auto"
    allow_mostly_missing: bool = False
    metrics_space: Literal["raw", "scaled"] = "raw"
    loss: str = "masked_mae"
    horizons: tuple[int, ...] = (3, 6, 12)
    mape_floor: float | None = None
    target_channel: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.in_steps < 1 or self.out_steps < 1 or self.stride < 1:
            raise ConfigError(
                f"protocol {self.name!r}: in_steps, out_steps and stride must be >= 1, found "
                f"{self.in_steps}, {self.out_steps}, {self.stride}."
            )
        if self.split_mode not in ("basicts", "staeformer", "ltsf"):
            raise ConfigError(
                f"protocol {self.name!r}: split_mode must be basicts, staeformer or ltsf, "
                f"found {self.split_mode!r}."
            )
        r = self.split_ratios
        if len(r) != 3 or min(r) < 0 or not math.isclose(sum(r), 1.0, abs_tol=1e-6):
            raise ConfigError(
                f"protocol {self.name!r}: split_ratios must be 3 non-negative numbers summing "
                f"to 1, found {r}."
            )
        if self.split_months is not None and self.split_mode == "staeformer":
            raise ConfigError(
                f"protocol {self.name!r}: split_months needs a time split (basicts or ltsf), "
                f"not split_mode='staeformer'."
            )
        if self.scaler not in ("global", "per_channel"):
            raise ConfigError(
                f"protocol {self.name!r}: scaler must be global or per_channel, "
                f"found {self.scaler!r}."
            )
        if self.input_fill not in (*INPUT_FILLS, "auto"):
            raise ConfigError(
                f"protocol {self.name!r}: input_fill must be one of auto, "
                f"{', '.join(INPUT_FILLS)}, "
                f"found {self.input_fill!r} (--set protocol_overrides.input_fill=last)."
            )
        if not isinstance(self.allow_mostly_missing, bool):
            raise ConfigError(
                f"protocol {self.name!r}: allow_mostly_missing must be true or false, found "
                f"{self.allow_mostly_missing!r} (--set protocol_overrides.allow_mostly_missing="
                f"true)."
            )
        if self.metrics_space not in ("raw", "scaled"):
            raise ConfigError(
                f"protocol {self.name!r}: metrics_space must be raw or scaled, "
                f"found {self.metrics_space!r}."
            )

    @property
    def label(self) -> str:
        """Name, split mode and window lengths, e.g. ``pems[basicts,12->12]``."""
        return f"{self.name}[{self.split_mode},{self.in_steps}->{self.out_steps}]"

    def replace(self, **overrides: Any) -> Protocol:
        """A copy with some fields changed (unknown names raise :class:`ConfigError`)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"protocol {self.name!r}: unknown option(s) {unknown}; expected some of "
                f"{sorted(known)}."
            )
        return dataclasses.replace(self, **overrides)

    # ------------------------------------------------------------------ split arithmetic
    def _time_borders(self, num_steps: int, steps_per_day: int | None) -> tuple[int, int, int]:
        """End rows of train, val and test parts (time splits)."""
        t = num_steps
        if self.split_months is not None:
            if not steps_per_day:
                raise DataError(
                    f"protocol {self.name!r}: a month-based split needs steps per day, which the "
                    f"dataset does not have (its step is unknown or does not divide a day); use "
                    f"a ratio split (--protocol ltsf), or give the step of a file without "
                    f"timestamps (--set data_options.freq_minutes=60)."
                )
            month = 30 * steps_per_day
            a, b, c = self.split_months
            ends = (a * month, (a + b) * month, (a + b + c) * month)
            if ends[2] > t:
                raise DataError(
                    f"protocol {self.name!r}: expected at least {ends[2]} steps for a "
                    f"{a}/{b}/{c}-month split at {steps_per_day} steps per day, found T={t} "
                    f"(use a ratio split: --protocol ltsf)."
                )
            return ends
        r_train, r_val, r_test = self.split_ratios
        if self.split_mode == "ltsf":
            train_end = int(t * r_train)
            test_len = int(t * r_test)
            return train_end, t - test_len, t
        val_len = int(t * r_val)
        test_len = int(t * r_test)
        train_end = t - val_len - test_len
        return train_end, train_end + val_len, t

    def split_rows(
        self, num_steps: int, steps_per_day: int | None = None
    ) -> dict[str, tuple[int, int]]:
        """Row range ``[start, end)`` each part owns (its targets; excludes borrowed lookback).

        Args:
            num_steps: T.
            steps_per_day: needed for month-based splits.

        Returns:
            ``{"train": (a, b), "val": (b, c), "test": (c, d)}``.
        """
        if self.split_mode == "staeformer":
            st = self.window_starts(num_steps, steps_per_day)
            w = self.in_steps + self.out_steps
            out: dict[str, tuple[int, int]] = {}
            for k in SPLITS:
                s = st[k]
                out[k] = (int(s[0]), int(s[-1]) + w) if len(s) else (0, 0)
            return out
        e1, e2, e3 = self._time_borders(num_steps, steps_per_day)
        return {"train": (0, e1), "val": (e1, e2), "test": (e2, e3)}

    def window_starts(
        self, num_steps: int, steps_per_day: int | None = None
    ) -> dict[str, np.ndarray]:
        """First input row of every window of each part.

        Args:
            num_steps: T.
            steps_per_day: needed for month-based splits.

        Returns:
            ``{"train": [S_train] int64, "val": ..., "test": ...}`` (possibly empty arrays).
        """
        w = self.in_steps + self.out_steps
        if self.split_mode == "staeformer":
            allst = np.arange(0, max(0, num_steps - w + 1), self.stride, dtype=np.int64)
            s = len(allst)
            n_train = round(s * self.split_ratios[0])
            n_val = round(s * self.split_ratios[1])
            return {
                "train": allst[:n_train],
                "val": allst[n_train : n_train + n_val],
                "test": allst[n_train + n_val :],
            }
        e1, e2, e3 = self._time_borders(num_steps, steps_per_day)
        if self.split_mode == "basicts":
            parts = {"train": (0, e1), "val": (e1, e2), "test": (e2, e3)}
        else:  # ltsf: val/test borrow in_steps rows of lookback
            lb = self.in_steps
            parts = {"train": (0, e1), "val": (e1 - lb, e2), "test": (e2 - lb, e3)}
        return {
            k: np.arange(max(a, 0), max(a, 0, b - w + 1), self.stride, dtype=np.int64)
            for k, (a, b) in parts.items()
        }

    def counts(self, num_steps: int, steps_per_day: int | None = None) -> dict[str, int]:
        """Number of windows per part for a series of ``num_steps`` rows.

        Args:
            num_steps: T.
            steps_per_day: needed for month-based splits.

        Returns:
            ``{"train": int, "val": int, "test": int}``.
        """
        return {k: len(v) for k, v in self.window_starts(num_steps, steps_per_day).items()}

    def scaler_rows(self, num_steps: int, steps_per_day: int | None = None) -> tuple[int, int]:
        """Rows ``[0, end)`` the scaler is fit on: the training part only."""
        if self.split_mode == "staeformer":
            st = self.window_starts(num_steps, steps_per_day)["train"]
            return (0, int(st[-1]) + self.in_steps) if len(st) else (0, 0)
        return 0, self._time_borders(num_steps, steps_per_day)[0]

    # ------------------------------------------------------------------ preparation

    # ------------------------------------------------------------------ preparation
    def fill_for(self, null_value: float) -> InputFill:
        """The input fill for data whose null value is ``null_value`` (``"auto"`` resolved:
        ``"keep"`` for the traffic convention's 0, ``"last"`` otherwise)."""
        if self.input_fill != "auto":
            return self.input_fill
        return "keep" if null_value == 0 else "last"

    def prepare(self, dataset: TimeSeriesDataset) -> PreparedData:
        """Split, fit the scaler on the training rows and build the window datasets.

        Args:
            dataset: any :class:`TimeSeriesDataset` (``values`` may be memory-mapped).

        Returns:
            A :class:`PreparedData` with ``counts``, the fitted ``scaler`` and ``train`` /
            ``val`` / ``test`` :class:`WindowDataset` objects.

        Raises:
            DataError: when a part has no complete window (series too short), the dataset
                lacks what the protocol asks for (time features, target channel), or the null
                value marks more than half of the targets (unless ``allow_mostly_missing``).
        """
        return prepare(self, dataset)


#: settings the traffic (PEMS, METR-LA) presets share are the field defaults; the long-horizon
#: (LTSF) presets share these
_LTSF = Protocol(
    name="ltsf",
    in_steps=96,
    out_steps=96,
    split_ratios=(0.7, 0.1, 0.2),
    split_mode="ltsf",
    scaler="per_channel",
    add_time_of_day=False,
    add_day_of_week=False,
    null_value=float("nan"),
    metrics_space="scaled",
    loss="mse",
    horizons=(),
    description="other LTSF CSVs: 96->{96..720}, 0.7/0.1/0.2, per-series z-score",
)
_PEMS = Protocol(
    name="pems",
    split_ratios=(0.6, 0.2, 0.2),
    loss="huber",
    description="PEMS03/04/07/08: 12->12, 6:2:2 by time, global scaler, null 0",
)
_METR = Protocol(
    name="metr",
    split_ratios=(0.7, 0.1, 0.2),
    loss="masked_mae",
    description="METR-LA/PEMS-BAY: 12->12, 7:1:2 by time, global scaler, null 0",
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        _PEMS,
        _PEMS.replace(
            name="pems-staeformer",
            split_mode="staeformer",
            description="PEMS0x as STAEformer's index.npz: windows split 6:2:2",
        ),
        _METR,
        _METR.replace(
            name="metr-staeformer",
            split_mode="staeformer",
            description="METR-LA/PEMS-BAY as STAEformer's index.npz: windows split 7:1:2",
        ),
        _LTSF.replace(
            name="ett",
            split_ratios=(0.6, 0.2, 0.2),  # the field default; split_months decides
            split_months=(12, 4, 4),
            description="ETTh*/ETTm*: 96->{96..720}, 12/4/4 months, per-series z-score",
        ),
        _LTSF,
        _LTSF.replace(
            name="ili",
            in_steps=36,
            out_steps=24,
            description="national_illness: 36->{24,36,48,60}, 0.7/0.1/0.2, per-series z-score",
        ),
    )
}


def get_protocol(name: str | Protocol, **overrides: Any) -> Protocol:
    """Return a named preset, optionally with some fields overridden.

    Args:
        name: ``pems``, ``pems-staeformer``, ``metr``, ``metr-staeformer``, ``ett``, ``ltsf``,
            ``ili`` (or a :class:`Protocol`, returned with the overrides applied).
        **overrides: fields of :class:`Protocol` (e.g. ``split_mode="staeformer"``,
            ``out_steps=336``).

    Returns:
        The protocol.
    """
    if isinstance(name, Protocol):
        base = name
    else:
        key = name.lower()
        if key not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {name!r}; expected one of {sorted(PROTOCOLS)}.")
        base = PROTOCOLS[key]
    return base.replace(**overrides) if overrides else base


__all__ = ["PROTOCOLS", "SPLITS", "PreparedData", "Protocol", "SplitMode", "get_protocol"]
