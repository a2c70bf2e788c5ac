"""A dataset split under a protocol: :class:`PreparedData` (the scaler fit on the training rows,
the train/val/test :class:`~linearcast.data.windows.WindowDataset` objects, loaders, the
evaluator) and :func:`prepare`, which :meth:`Protocol.prepare
<linearcast.data.protocols.Protocol.prepare>` calls. The split arithmetic is in
:mod:`linearcast.data.protocols`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from linearcast.data.dataset import TimeSeriesDataset, check_time_features
from linearcast.data.scaler import StandardScaler, valid_mask
from linearcast.data.windows import WindowDataset
from linearcast.errors import DataError
from linearcast.metrics import NULL_ATOL

if TYPE_CHECKING:
    from linearcast.data.protocols import Protocol
    from linearcast.metrics import StreamingEvaluator

SPLITS = ("train", "val", "test")


def prepare(protocol: Protocol, dataset: TimeSeriesDataset) -> PreparedData:
    """:meth:`Protocol.prepare <linearcast.data.protocols.Protocol.prepare>`: split, fit the
    scaler on the training rows (``protocol``'s split of ``dataset: [T, N, F]``) and build the
    window datasets; the arguments, the result and the errors are documented there."""
    t = dataset.shape[0]
    src = dataset.source
    starts = _window_starts(protocol, dataset)
    null_value = dataset.null_value if protocol.null_value is None else protocol.null_value
    a, b = protocol.scaler_rows(t, dataset.steps_per_day)
    target_rows = dataset.values[a:b, :, protocol.target_channel]  # memmap view, no copy
    _check_mostly_null(protocol, dataset, null_value, b)
    fill = protocol.fill_for(null_value)  # zeros of traffic data are fed as read, as published
    protocol = dataclasses.replace(protocol, input_fill=fill)
    scaler = StandardScaler(mode=protocol.scaler, fill=fill).fit(
        target_rows,
        null_value=null_value,
        mask_null=protocol.scaler_mask_null,
        source=f"{src} (training rows {a}..{b})",
        names=dataset.node_names,
    )
    mape_floor = protocol.mape_floor
    if mape_floor is None:
        mape_floor = max(NULL_ATOL, 1e-3 * _mean_abs(target_rows, null_value))
    tod = dataset.time_of_day() if protocol.add_time_of_day else None
    dow = dataset.day_of_week() if protocol.add_day_of_week else None
    check_time_features(src, tod, dow)
    parts = {
        k: WindowDataset(
            dataset.values,
            starts[k],
            protocol.in_steps,
            protocol.out_steps,
            scaler=scaler,
            target_channel=protocol.target_channel,
            time_of_day=tod,
            day_of_week=dow,
            scale_target=protocol.metrics_space == "scaled",
        )
        for k in SPLITS
    }
    return PreparedData(
        protocol=protocol,
        dataset=dataset,
        scaler=scaler,
        null_value=null_value,
        train=parts["train"],
        val=parts["val"],
        test=parts["test"],
        split_rows=protocol.split_rows(t, dataset.steps_per_day),
        mape_floor=float(mape_floor),
    )


def _window_starts(protocol: Protocol, dataset: TimeSeriesDataset) -> dict[str, np.ndarray]:
    """:meth:`Protocol.window_starts` for ``dataset``, checked: the target channel exists and
    every part has a window (else a :class:`DataError` naming the file)."""
    t, _, f = dataset.shape
    src, p = dataset.source, protocol
    if not 0 <= p.target_channel < f:
        raise DataError(
            f"{src}: protocol {p.name!r} forecasts channel {p.target_channel}, but the "
            f"data has F={f} channels (shape {dataset.shape})."
        )
    try:
        starts = p.window_starts(t, dataset.steps_per_day)
    except DataError as err:
        raise DataError(f"{src}: {err}") from None  # name the file
    counts = {k: len(v) for k, v in starts.items()}
    if min(counts.values()) < 1:
        rows = p.split_rows(t, dataset.steps_per_day) if p.split_mode != "staeformer" else {}
        detail = ", ".join(f"{k} {b - a} rows" for k, (a, b) in rows.items())
        raise DataError(
            f"{src}: expected a series long enough for one {p.in_steps}+{p.out_steps}"
            f"-step window in each of train/val/test under protocol {p.label}, found "
            f"T={t} steps ({detail or 'split by windows'}; windows {counts})."
        )
    return starts


#: above this share of null-valued targets a run stops and asks (real zeros of a count series)
MOSTLY_NULL = 0.5


def _check_mostly_null(
    protocol: Protocol, dataset: TimeSeriesDataset, null_value: float, train_end: int
) -> None:
    """Stop when a finite null value marks more than half of the training targets or of the
    whole target series, and warn when it marks more than half of one series: a rule that
    hides most targets (the real zeros of boarding counts, of rainfall) changes what the loss
    and the metrics mean, so it must be chosen, not defaulted into.

    Args:
        protocol: gives the target channel and ``allow_mostly_missing``.
        dataset: ``values [T, N, F]``.
        null_value: the resolved null value.
        train_end: the training rows are ``[0, train_end)`` (the scaler's).

    Raises:
        DataError: naming both choices (score the readings, or keep masking them).
    """
    if math.isnan(null_value) or protocol.allow_mostly_missing:
        return
    target = dataset.values[:, :, protocol.target_channel]  # memmap view, no copy
    train_hits, train_rows = _null_count(target[:train_end], null_value)
    rest_hits, _ = _null_count(target[train_end:], null_value)  # each row read once
    size = train_rows * target.shape[1]
    where, share = "the training targets", int(train_hits.sum()) / max(size, 1)
    if share <= MOSTLY_NULL:
        all_hits = int(train_hits.sum() + rest_hits.sum())
        where, share = "the target series", all_hits / max(target.size, 1)
    if share > MOSTLY_NULL:
        raise DataError(
            f"{dataset.source}: {100 * share:.1f}% of {where} equal the null value "
            f"{null_value:g}, which marks a missing reading, so the loss and the metrics would "
            f"leave them out; expected at most {100 * MOSTLY_NULL:.0f}%. If they are real "
            f"readings (counts of zero), score them with --set data_options.null_value=nan; to "
            f"keep them masked, --set protocol_overrides.allow_mostly_missing=true."
        )
    per_series = (train_hits + rest_hits) / max(target.shape[0], 1)
    _warn_mostly_null_series(dataset, null_value, per_series)


#: series named in the mostly-null warning (the rest are counted)
_NAMED_SERIES = 5


def _warn_mostly_null_series(
    dataset: TimeSeriesDataset, null_value: float, per_series: np.ndarray
) -> None:
    """Warn about the series whose readings are mostly the null value (``per_series [N]``:
    each series' share), naming the worst :data:`_NAMED_SERIES` of them."""
    mostly = np.flatnonzero(per_series > MOSTLY_NULL)
    if not len(mostly):
        return
    names = dataset.node_names or [f"series {i}" for i in range(len(per_series))]
    worst = mostly[np.argsort(-per_series[mostly], kind="stable")][:_NAMED_SERIES]
    listed = ", ".join(f"{names[i]} {100 * per_series[i]:.1f}%" for i in worst)
    more = f" and {len(mostly) - len(worst)} more" if len(mostly) > len(worst) else ""
    warnings.warn(
        f"{dataset.source}: {len(mostly)} of {len(per_series)} series are mostly the null value "
        f"{null_value:g} ({listed}{more}), which marks a missing reading, so the loss and the "
        f"metrics leave those readings out. If they are real readings (counts of zero), score "
        f"them with --set data_options.null_value=nan; to keep them masked and silence this, "
        f"--set protocol_overrides.allow_mostly_missing=true.",
        UserWarning,
        stacklevel=2,
    )


def _null_count(rows: np.ndarray, null_value: float) -> tuple[np.ndarray, int]:
    """``(entries within 5e-5 of the finite null value per series [N], rows)`` of
    ``rows: [T, N]``, chunked."""
    hits = np.zeros(rows.shape[1], dtype=np.int64)
    for c in _chunks(rows):
        hits += np.isclose(c, null_value, atol=NULL_ATOL, rtol=0.0).sum(axis=0)
    return hits, int(rows.shape[0])


# Entries read at once from a (memory-mapped) array by the chunked passes below.
_CHUNK_ENTRIES = 1 << 21


def _chunks(rows: np.ndarray) -> Iterator[np.ndarray]:
    """``rows: [T, ...]`` as float64 blocks of whole rows, about ``_CHUNK_ENTRIES`` each (a
    memory-mapped file is read a block at a time; float64 so that long sums keep their digits)."""
    step = max(1, _CHUNK_ENTRIES // max(1, int(np.prod(rows.shape[1:]))))
    for a in range(0, rows.shape[0], step):
        yield np.asarray(rows[a : a + step], dtype=np.float64)


def _mean_abs(rows: np.ndarray, null_value: float) -> float:
    """Mean of ``|y|`` over the finite entries of ``rows`` the metrics do not mask (0 if none)."""
    total, count = 0.0, 0
    for c in _chunks(rows):
        ok = np.isfinite(c) & valid_mask(c, null_value)
        total += float(np.abs(c[ok]).sum())
        count += int(ok.sum())
    return total / count if count else 0.0


@dataclass
class PreparedData:
    """A dataset split under a protocol, ready for training.

    Attributes:
        protocol: the protocol used.
        dataset: the source dataset.
        scaler: fit on the training rows only.
        null_value: value masked by the metrics.
        train: training windows (``x: [in, N, C_in]``, ``y: [out, N, 1]``).
        val: validation windows.
        test: test windows.
        split_rows: row range each part owns.
        mape_floor: MAPE leaves out targets with ``|y|`` at or below this (see
            :attr:`Protocol.mape_floor`).
    """

    protocol: Protocol
    dataset: TimeSeriesDataset
    scaler: StandardScaler
    null_value: float
    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    split_rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    mape_floor: float = 5e-5

    @property
    def counts(self) -> dict[str, int]:
        """Number of windows per part."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    @property
    def input_channels(self) -> int:
        """C_in of ``x``."""
        return self.train.input_channels

    @property
    def num_nodes(self) -> int:
        """N."""
        return self.dataset.num_nodes

    def to_target_space(self, pred: torch.Tensor) -> torch.Tensor:
        """Map model outputs (scaled units) to the units of ``y``.

        ``metrics_space="raw"`` (pems, metr): ``scaler.inverse_transform(pred)``, as STAEformer
        does before its loss and metrics; ``"scaled"`` (ett, ltsf): ``pred`` unchanged.

        Args:
            pred: ``[B, out_steps, N, 1]`` (or ``[B, out_steps, N]``).

        Returns:
            Same shape, comparable with ``y``.
        """
        if self.protocol.metrics_space == "raw":
            return self.scaler.inverse_transform(pred)
        return pred

    @property
    def target_null(self) -> float:
        """The null value as ``y`` holds it: :attr:`null_value` for raw-unit targets; NaN for
        scaled ones, whose missing readings the windows already turned into NaN (a scaled
        reading that happens to equal the null must not be masked)."""
        return self.null_value if self.protocol.metrics_space == "raw" else math.nan

    def evaluator(self) -> StreamingEvaluator:
        """A :class:`~linearcast.metrics.StreamingEvaluator` with this protocol's horizons/null."""
        from linearcast.metrics import StreamingEvaluator

        return StreamingEvaluator(horizons=self.protocol.horizons, null_value=self.target_null)

    def dataloaders(
        self,
        batch_size: int = 16,
        *,
        shuffle_train: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        drop_last: bool = False,
    ) -> dict[str, DataLoader[Any]]:
        """DataLoaders for the three parts (only the training one shuffled, seeded).

        Returns:
            ``{"train": ..., "val": ..., "test": ...}`` yielding ``(x [B, in, N, C_in],
            y [B, out, N, 1])``.
        """
        gen = torch.Generator().manual_seed(seed)
        return {
            k: DataLoader(
                getattr(self, k),
                batch_size=batch_size,
                shuffle=shuffle_train and k == "train",
                num_workers=num_workers,
                drop_last=drop_last and k == "train",
                generator=gen if k == "train" else None,
            )
            for k in SPLITS
        }

    def masked_fraction(self, part: str = "test") -> float:
        """Fraction of a part's target readings the loss and metrics mask (NaN, ±inf or the
        null value; the rows the part owns, each reading counted once, not once per window).

        Raises:
            KeyError: ``part`` is not one of ``train``, ``val``, ``test``.
        """
        return self.missing_shares(part)["masked"]

    def missing_shares(self, part: str = "test") -> dict[str, float]:
        """A part's missing target readings by kind (rows the part owns, each counted once).

        Returns:
            ``{"masked": all missing, "non_finite": NaN or ±inf, "null": equal to the null
            value}``, each a fraction of the part's targets (0.0 for an empty part).

        Raises:
            KeyError: ``part`` is not one of ``train``, ``val``, ``test``.
        """
        a, b = self.split_rows[part]
        rows = self.dataset.values[a:b, :, self.protocol.target_channel]
        bad = masked = 0
        for c in _chunks(rows):
            bad += int((~np.isfinite(c)).sum())
            masked += int((~valid_mask(c, self.null_value)).sum())
        size = max(int(rows.size), 1)
        return {"masked": masked / size, "non_finite": bad / size, "null": (masked - bad) / size}

    def summary(self) -> str:
        """One line: dataset, shape, protocol label and counts."""
        c = self.counts
        return (
            f"{self.dataset.name} {list(self.dataset.shape)} under {self.protocol.label}: "
            f"train {c['train']}, val {c['val']}, test {c['test']} windows; {self.scaler}"
        )


__all__ = ["SPLITS", "PreparedData", "prepare"]
