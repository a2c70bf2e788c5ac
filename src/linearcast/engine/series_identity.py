"""Which series a run was trained on, and matching new data to them by name.

A model's node axis is positional: node ``i`` has its own scaler entry (per-series scalers),
embedding and graph row. A run therefore records the names of its series in order
(``series.json`` in the run directory, written when training finishes); forecasting reorders the
data's series to that order by name and refuses data whose names differ. Data without names
(arrays, headerless files) and runs written before names were recorded fall back to positions,
and say so.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from linearcast.data.checks import set_list
from linearcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from linearcast.data import TimeSeriesDataset

SERIES_FILE = "series.json"
_SHOWN = 5  # names quoted in a message


@dataclass(frozen=True)
class RunSeries:
    """The series a run was trained on.

    Attributes:
        names: the N names in the model's node order, or ``None`` when the data had none
            (the series are then identified by position).
        num_nodes: N.
    """

    names: list[str] | None
    num_nodes: int

    @property
    def labels(self) -> list[str]:
        """The N names, or the positions ``"0"``, ``"1"``, ... when there are none."""
        return self.names if self.names is not None else [str(i) for i in range(self.num_nodes)]


def series_record(ds: TimeSeriesDataset) -> dict[str, Any]:
    """What ``series.json`` holds for the dataset a run trains on."""
    names = [str(n) for n in ds.node_names] if ds.node_names is not None else None
    return {
        "identity": "names" if names is not None else "positions",
        "num_nodes": ds.num_nodes,
        "names": names,
    }


def write_series(run_dir: str | Path, ds: TimeSeriesDataset) -> Path:
    """Write ``RUN_DIR/series.json`` (atomically)."""
    from linearcast.engine.run_dir import write_json

    return write_json(Path(run_dir) / SERIES_FILE, series_record(ds))


def read_series(run_dir: str | Path, meta: dict[str, Any] | None = None) -> RunSeries | None:
    """The run's recorded series: ``series.json``, checked against the copy in its checkpoint's
    meta (``meta.series``), or that copy when the file is missing or damaged; ``None`` for a run
    written before either was recorded.

    Args:
        run_dir: the run directory.
        meta: the ``meta`` of the run's ``best.ckpt`` when the caller has loaded it already
            (``None``: read from the checkpoint when needed).

    Raises:
        ConfigError: ``series.json`` is damaged and the checkpoint keeps no copy, or it names
            other series (or another order) than the checkpoint's copy.
    """
    run_dir = Path(run_dir)
    path = run_dir / SERIES_FILE
    if not path.is_file():
        return _series_in_checkpoint(run_dir, meta)
    try:
        record = json.loads(path.read_text())
        n = int(record["num_nodes"])
        names = record.get("names")
        ok = n > 0 and (
            names is None
            or (isinstance(names, list) and len(names) == n and len(set(map(str, names))) == n)
        )
    except (ValueError, TypeError, KeyError, OSError, RecursionError) as err:
        kept = _series_in_checkpoint(run_dir, meta)
        if kept is not None:
            return kept
        raise ConfigError(
            f"{path}: expected the run's series as JSON {{num_nodes, names}}, found a damaged "
            f"file ({type(err).__name__}); restore it from a copy of the run, or retrain."
        ) from None
    if not ok:
        kept = _series_in_checkpoint(run_dir, meta)
        if kept is not None:
            return kept
        raise ConfigError(
            f"{path}: expected num_nodes > 0 and that many distinct names (or null), found "
            f"num_nodes={record.get('num_nodes')!r} with {len(names or [])} names; restore it "
            f"from a copy of the run, or retrain."
        )
    found = RunSeries(names=[str(v) for v in names] if names is not None else None, num_nodes=n)
    kept = _series_in_checkpoint(run_dir, meta)
    if kept is not None and kept != found:
        from linearcast.engine.checkpoint import BEST

        # the checkpoint's copy is what the weights were trained on: an edited file must not
        # relabel them
        raise ConfigError(
            f"{path}: expected the series that {run_dir / BEST} records in meta.series "
            f"({_described(kept)}), found {_described(found)} ({_difference(kept, found)}); "
            f"delete {SERIES_FILE} (the checkpoint's copy is then used) or restore it from a copy "
            f"of the run."
        )
    return found


def _series_in_checkpoint(run_dir: Path, meta: dict[str, Any] | None = None) -> RunSeries | None:
    """The series the run's ``best.ckpt`` keeps in ``meta["series"]`` (runs since it was
    recorded; the checkpoint is checked on loading), or ``None``; ``meta``: the checkpoint's
    meta when already loaded."""
    if meta is None:
        from linearcast.engine.checkpoint import BEST, load_checkpoint

        if not (run_dir / BEST).is_file():
            return None
        meta = load_checkpoint(run_dir / BEST)["meta"]
    if "series" not in meta:
        return None
    names = meta["series"]
    return RunSeries(names=list(names) if names is not None else None, num_nodes=meta["num_nodes"])


def _described(series: RunSeries) -> str:
    if series.names is None:
        return f"{series.num_nodes} unnamed series"
    return f"{series.num_nodes} series {_few(series.names)}"


def _difference(kept: RunSeries, found: RunSeries) -> str:
    """What differs between the checkpoint's series and ``series.json``'s, in a few words."""
    if kept.num_nodes != found.num_nodes:
        return f"N={found.num_nodes} where the checkpoint has N={kept.num_nodes}"
    if kept.names is None or found.names is None:
        return "names where the checkpoint has none" if kept.names is None else "no names"
    if set(kept.names) == set(found.names):
        moved = [n for n, k in zip(found.names, kept.names, strict=True) if n != k]
        return f"the same names in another order, {len(moved)} moved, first {moved[0]!r}"
    other = [n for n in found.names if n not in set(kept.names)]
    return f"names not in the checkpoint {_few(other)}"


def legacy_note(run_dir: str | Path, what: str) -> str:
    """The one warning of a run that records no series names."""
    return (
        f"{run_dir}: the run records no series names (no {SERIES_FILE}: trained before "
        f"linearcast stored them, or the file was removed), so {what} by position, in the order "
        f"of the training data; restore the file or retrain to have them matched by name"
    )


def _few(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    return f"[{shown}{', ...' if len(names) > _SHOWN else ''}]"


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def match_series(
    ds: TimeSeriesDataset,
    run: RunSeries | None,
    run_dir: str | Path,
    *,
    drop: Sequence[str] | None = None,
) -> tuple[TimeSeriesDataset, list[str], list[str]]:
    """The data with its series in the run's order, their labels, and notes for warnings.

    Names are compared in Unicode NFC form, so ``'café'`` typed with a combining accent (NFD,
    as macOS file systems and some exports write it) is the run's ``'café'``.

    Args:
        ds: the data to forecast from (``[T, N, F]``).
        run: the run's series (:func:`read_series`); ``None`` for a run that records none.
        run_dir: the run directory (for messages).
        drop: the ``drop`` list the file was read with (the run's own, or one given), which
            the suggested ``--set data_options.drop=[...]`` repeats so that pasting it keeps
            those left out; ``None``: none.

    Returns:
        ``(dataset, labels, notes)``: the data reordered to the run's node order (unchanged
        when matched by position), the N labels of that order (the run's names), what the user
        should know.

    Raises:
        DataError: repeated names, or names that are not the run's (missing, extra, renamed).
    """
    src = ds.source
    found = [str(n) for n in ds.node_names] if ds.node_names is not None else None
    expected = run.names if run is not None else None
    # a run whose own names collide under NFC (both forms trained) is matched exactly
    key: Callable[[str], str] = (
        _nfc if expected is None or len({_nfc(n) for n in expected}) == len(expected) else str
    )
    if found is not None and len({key(n) for n in found}) != len(found):
        keys = [key(n) for n in found]
        repeated = sorted({n for n in found if keys.count(key(n)) > 1})
        alike = "" if len(set(keys)) == len(set(found)) else " (equal in Unicode NFC form)"
        raise DataError(
            f"{src}: expected distinct series names, found {len(repeated)} repeated "
            f"{_few(repeated)}{alike}; give each series one column (or unique_id)."
        )
    own = found or [str(i) for i in range(ds.num_nodes)]
    if run is None:
        return ds, own, [legacy_note(run_dir, f"the {ds.num_nodes} series of {src} are taken")]
    if expected is None:
        return ds, own, []  # trained on unnamed series: positions are their identity
    if found is None:
        if ds.num_nodes != run.num_nodes:
            raise DataError(
                f"{src}: expected the run's {run.num_nodes} series {_few(expected)}, found "
                f"{ds.num_nodes} unnamed series; give the data the run's series (named, or in "
                f"the run's order)."
            )
        note = (
            f"{src}: the data has no series names, so its {ds.num_nodes} series are taken as "
            f"the run's {_few(expected)} by position"
        )
        return ds, list(expected), [note]
    found_keys = [key(n) for n in found]
    expected_keys = [key(n) for n in expected]
    if set(found_keys) != set(expected_keys):
        missing = [n for n, k in zip(expected, expected_keys, strict=True)
                   if k not in set(found_keys)]  # fmt: skip
        extra = [n for n, k in zip(found, found_keys, strict=True) if k not in set(expected_keys)]
        raise DataError(
            f"{src}: expected the {len(expected)} series the run {run_dir} was trained on "
            f"{_few(expected)}, found {len(found)} series {_few(found)} (missing {_few(missing)}, "
            f"not in the run {_few(extra)}); {_fix(ds, run_dir, missing, extra, drop)}."
        )
    return reorder(ds, [found_keys.index(k) for k in expected_keys]), list(expected), []


def _fix(
    ds: TimeSeriesDataset,
    run_dir: str | Path,
    missing: list[str],
    extra: list[str],
    drop: Sequence[str] | None,
) -> str:
    """How to give the run its series: leave the extra ones out, or rename."""
    if missing:
        return f"rename or select the series to match {Path(run_dir) / SERIES_FILE}"
    if ds.path is None:
        return f"leave the extra series out (drop {_few(extra)} from the frame)"
    kept = [n for n in drop or () if n not in set(extra)]
    said = " (the drop list the file was read with, plus the extra series)" if kept else ""
    return (
        f"leave the extra series out with --set "
        f"{set_list('data_options.drop', [*kept, *extra])}{said}"
    )


def reorder(ds: TimeSeriesDataset, order: list[int]) -> TimeSeriesDataset:
    """``ds`` with node ``order[i]`` as node ``i`` (values, names and graph)."""
    if order == list(range(ds.num_nodes)):
        return ds
    idx = np.asarray(order, dtype=np.intp)
    adjacency = ds.adjacency[np.ix_(idx, idx)] if ds.adjacency is not None else None
    names = [ds.node_names[i] for i in order] if ds.node_names is not None else None
    return dataclasses.replace(
        ds, values=np.ascontiguousarray(ds.values[:, idx]), node_names=names, adjacency=adjacency
    )
