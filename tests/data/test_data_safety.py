"""Data files never run code, time features are checked where data enters, bad files are
one DataError sentence naming the file (also through the CLI)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.data import TimeSeriesDataset, get_protocol, load, read_adjacency_pickle
from linearcast.data.safe_pickle import restricted_loads
from linearcast.errors import DataError


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _basicts(folder: Path, t: int = 40, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.arange(t * n, dtype=np.float32).reshape(t, n, 1).tofile(folder / "data.dat")
    desc = {"name": "X", "shape": [t, n, 1], "frequency (minutes)": 5}
    (folder / "desc.json").write_text(json.dumps(desc))
    return folder


# ----------------------------------------------------------------------------- pickles
def test_a_payload_adj_mx_pkl_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    folder = _basicts(tmp_path / "ds")
    (folder / "adj_mx.pkl").write_bytes(pickle.dumps([["a"], {"a": 0}, _Payload(marker)]))
    # `data describe FOLDER` alone used to run it (the pickle is discovered automatically)
    assert main(["data", "describe", str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{folder / 'adj_mx.pkl'}: refused to unpickle" in err
    assert "posix.system" in err or "nt.system" in err
    with pytest.raises(DataError, match="nothing from the file was run"):
        read_adjacency_pickle(folder / "adj_mx.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"cos\nsystem\n(S'true'\ntR.",  # protocol 0, the classic
        pickle.dumps(eval),  # a builtin
        pickle.dumps(pd.DataFrame),  # allowed module prefix, not a date offset
    ],
)
def test_restricted_unpickler_refuses_anything_else(payload: bytes) -> None:
    with pytest.raises(pickle.UnpicklingError, match="refused to import"):
        restricted_loads(payload)


def _python2_dcrnn_pickle(ids: list[str], adj: np.ndarray) -> bytes:
    """Bytes as Python 2 writes DCRNN's adj_mx.pkl: byte strings (here latin1, non-ASCII),
    the old ``numpy.core.multiarray`` module name, protocol 2."""

    class Py2Pickler(pickle._Pickler):  # type: ignore[name-defined,misc]
        dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

        def save_str(self, obj: str) -> None:
            data = obj.encode("latin1")
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
            self.memoize(obj)

        dispatch[str] = save_str

    buf = __import__("io").BytesIO()
    Py2Pickler(buf, protocol=2).dump([ids, {s: i for i, s in enumerate(ids)}, adj])
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def test_the_real_dcrnn_layout_still_loads(tmp_path: Path) -> None:
    ids = ["773869", "7675é1", "767542"]  # a non-ASCII byte forces the latin1 path
    adj = np.array([[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]], dtype=np.float32)
    data = _python2_dcrnn_pickle(ids, adj)
    assert b"numpy.core.multiarray" in data and pickle.SHORT_BINSTRING in data
    (tmp_path / "adj_mx.pkl").write_bytes(data)
    got, got_ids = read_adjacency_pickle(tmp_path / "adj_mx.pkl")
    np.testing.assert_array_equal(got, adj)
    assert got_ids == ids


def test_a_payload_inside_an_hdf5_file_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = pytest.importorskip("tables")
    marker = tmp_path / "pwned"
    path = tmp_path / "metr-la.h5"
    idx = pd.date_range("2012-03-01", periods=60, freq="5min")
    pd.DataFrame(np.ones((60, 3), np.float32), index=idx, columns=["a", "b", "c"]).to_hdf(
        path, key="df"
    )
    # pandas reads the index's `freq` attribute, which PyTables unpickles
    with tables.open_file(path, "a") as h5:
        h5.root.df.axis1._v_attrs.freq = _Payload(marker)
    assert main(["data", "describe", str(path)]) == 1
    err = capsys.readouterr().err
    assert not marker.exists()
    assert f"{path}: refused to unpickle objects stored in this HDF5 file" in err


def test_an_honest_hdf5_file_with_a_frequency_still_loads(tmp_path: Path) -> None:
    pytest.importorskip("tables")
    path = tmp_path / "metr-la.h5"
    idx = pd.date_range("2012-03-01", periods=60, freq="5min")
    pd.DataFrame(np.ones((60, 3), np.float32), index=idx, columns=["a", "b", "c"]).to_hdf(
        path, key="df"
    )
    assert load(path).freq_minutes == 5


# ----------------------------------------------------------------------------- time features
def test_time_of_day_outside_zero_one_is_refused() -> None:
    values = np.ones((50, 2, 1), np.float32)
    steps = np.arange(50, dtype=np.float32)  # a step index passed as time of day
    with pytest.raises(DataError, match=r"X: expected time-of-day fractions in \[0, 1\), found 49"):
        TimeSeriesDataset(values, name="X", path=Path("X"), tod_values=steps)


def test_day_of_week_outside_0_to_6_is_refused() -> None:
    values = np.ones((50, 2, 1), np.float32)
    with pytest.raises(DataError, match=r"expected day-of-week integers 0\.\.6.*first 7"):
        TimeSeriesDataset(values, name="X", dow_values=np.full(50, 7))


def test_a_basicts_file_with_hours_as_time_of_day_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bts"
    folder.mkdir()
    t, n = 40, 2
    data = np.zeros((t, n, 2), np.float32)
    data[..., 1] = (np.arange(t) % 24)[:, None]  # hours, not a fraction of a day
    data.tofile(folder / "data.dat")
    desc = {"shape": [t, n, 2], "feature_description": ["value", "time of day"]}
    (folder / "desc.json").write_text(json.dumps(desc))
    with pytest.raises(DataError, match=r"bts.*expected time-of-day fractions in \[0, 1\)"):
        load(folder)


def test_the_protocol_checks_derived_time_features(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = TimeSeriesDataset(np.ones((400, 2, 1), np.float32), name="X", steps_per_day=24)
    monkeypatch.setattr(TimeSeriesDataset, "time_of_day", lambda self: np.full(400, 1.5))
    with pytest.raises(DataError, match="time-of-day fractions"):
        get_protocol("pems").prepare(ds)


# ----------------------------------------------------------------------------- bad files, CLI
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.csv", b""),
        ("x.npy", b""),
        ("x.npz", b""),
        ("x.json", b""),
        ("x.h5", b""),
        ("hdr.csv", b"date,a,b\n"),  # a header, no rows
        ("t.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "),
        ("z.npz", b"PK\x03\x04 truncated zip"),
        ("m.csv", b"a,b\n1,2\n3\n\xff\xfe"),
        ("obj.npy", None),  # an object array: pickled Python objects inside a .npy
    ],
)
def test_bad_files_are_one_sentence_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None
) -> None:
    path = tmp_path / name
    if content is None:
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(content)
    runs = str(tmp_path / "runs")
    for argv in (["data", "describe", str(path)], ["train", "--data", str(path), "--out", runs]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"linearcast: error: {path}"), err
        assert err.count("\n") == 0 and "Traceback" not in err
        assert "allow_pickle" not in err  # never advise loading pickles unsafely
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_ett_split_on_too_short_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    dates = pd.date_range("2020-01-01", periods=500, freq="h")
    pd.DataFrame({"date": dates, "a": np.arange(500.0)}).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"{path}: protocol 'ett': expected at least 14400 steps"):
        get_protocol("ett").prepare(load(path))
