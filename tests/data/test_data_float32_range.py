"""Finite values beyond float32's range (~3.4e38) are refused where data enters, naming the
file, the series and the fix -- never cast to ±inf and then reported as "infinite values" with
advice to mask them. Values that fit are read; float32 arrays are not scanned or copied."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import TimeSeriesDataset, as_dataset, load
from linearcast.data.checks import FLOAT32_MAX, to_float32
from linearcast.data.readers import read_ltsf_csv, read_matrix_csv, read_table_csv
from linearcast.errors import DataError

T = 40


def _wide(big: float, col: int = 1) -> pd.DataFrame:
    """``[T, 3]`` readings around 50 with column ``col`` multiplied by ``big``."""
    rng = np.random.default_rng(0)
    values = rng.uniform(10.0, 90.0, size=(T, 3))
    values[:, col] *= big
    index = pd.date_range("2024-01-01", periods=T, freq="h", name="date")
    return pd.DataFrame(values, index=index, columns=["a", "b", "c"])


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename_axis("ds").reset_index().melt("ds", var_name="unique_id", value_name="y")


def _one_sentence(err: pytest.ExceptionInfo[DataError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    assert "infinite" not in text and "non_finite" not in text and "mask" not in text
    assert "float32" in text
    return text


def _csv(tmp_path: Path, reader: str, frame: pd.DataFrame) -> Path:
    """The frame written as the given reader's CSV layout."""
    path = tmp_path / f"{reader}.csv"
    if reader == "ltsf":
        frame.to_csv(path, float_format="%.17g")
    elif reader == "table":  # wide, time column not first: the table reader's layout
        out = frame.reset_index()
        out["time"] = out.pop("date")
        out.to_csv(path, index=False, float_format="%.17g")
    elif reader == "table_long":
        _long(frame).to_csv(path, index=False, float_format="%.17g")
    else:  # matrix_csv: [T, N] with a header of names
        frame.to_csv(path, index=False, float_format="%.17g")
    return path


_READERS = {
    "ltsf": read_ltsf_csv,
    "table": read_table_csv,
    "table_long": read_table_csv,
    "matrix_csv": lambda p: read_matrix_csv(p, adjacency=None, freq_minutes=60),
}


@pytest.mark.parametrize("reader", list(_READERS))
def test_csv_column_beyond_float32_is_refused_naming_file_series_and_fix(
    tmp_path: Path, reader: str
) -> None:
    path = _csv(tmp_path, reader, _wide(1e300))
    with pytest.raises(DataError) as err:
        _READERS[reader](path)
    text = _one_sentence(err)
    assert text.startswith(f"{path}: ")
    assert f"found {T} finite values beyond it" in text
    assert "in series 'b' at row 0" in text
    assert "rescale that series" in text
    if reader in ("ltsf", "table"):  # the readers with a drop option name it
        assert "--set data_options.drop=[b]" in text
    else:
        assert "drop" not in text


@pytest.mark.parametrize("reader", list(_READERS))
def test_csv_format_sniffed_by_load_refuses_too(tmp_path: Path, reader: str) -> None:
    path = _csv(tmp_path, reader, _wide(1e300))
    fmt = "table" if reader == "table_long" else reader
    with pytest.raises(DataError, match=r"expected values float32 can hold"):
        load(path, format=fmt, **({"freq_minutes": 60} if fmt == "matrix_csv" else {}))


def test_one_value_of_1e308_is_named_with_its_row(tmp_path: Path) -> None:
    frame = _wide(1.0)
    frame.iloc[25, 2] = 1e308
    path = _csv(tmp_path, "ltsf", frame)
    with pytest.raises(DataError) as err:
        read_ltsf_csv(path)
    text = _one_sentence(err)
    assert "found 1 finite value beyond it (first 1e+308 in series 'c' at row 25)" in text


def test_several_series_beyond_float32_are_counted(tmp_path: Path) -> None:
    frame = _wide(1e300, col=0)
    frame["c"] *= -1e300
    with pytest.raises(DataError, match=rf"found {2 * T} finite values beyond it in 2 series"):
        read_ltsf_csv(_csv(tmp_path, "ltsf", frame))


@pytest.mark.parametrize("reader", list(_READERS))
def test_csv_values_near_float32_max_are_read(tmp_path: Path, reader: str) -> None:
    frame = _wide(1e36)  # up to 9e37: fits
    ds = _READERS[reader](_csv(tmp_path, reader, frame))
    assert ds.values.dtype == np.float32
    assert np.isfinite(ds.values).all()
    b = ds.values[:, ds.node_names.index("b"), 0] if ds.node_names else ds.values[:, 1, 0]
    np.testing.assert_allclose(b, frame["b"].to_numpy(), rtol=1e-6)


def test_true_infinity_keeps_its_message(tmp_path: Path) -> None:
    frame = _wide(1.0)
    frame.iloc[3, 0] = np.inf
    with pytest.raises(DataError, match=r"found 0 NaN and 1 infinite values .*non_finite=mask"):
        read_ltsf_csv(_csv(tmp_path, "ltsf", frame))


@pytest.mark.parametrize("layout", ["wide", "long", "array"])
def test_in_memory_data_beyond_float32_is_refused(layout: str) -> None:
    frame = _wide(1e300)
    data: object = {"wide": frame, "long": _long(frame), "array": frame.to_numpy()}[layout]
    with pytest.raises(DataError) as err:
        as_dataset(data, name="mine")
    text = _one_sentence(err)
    assert text.startswith("mine: ")
    where = "series 1 (from 0)" if layout == "array" else "series 'b'"
    assert f"found {T} finite values beyond it (first" in text
    assert f"in {where} at row 0" in text
    assert "rescale that series" in text


def test_in_memory_values_that_fit_are_read() -> None:
    frame = _wide(1e36)
    ds = as_dataset(frame)
    np.testing.assert_allclose(ds.values[:, 1, 0], frame["b"].to_numpy(), rtol=1e-6)
    assert np.isfinite(ds.values).all()


def test_dataset_built_from_float64_is_checked() -> None:
    values = np.ones((5, 2, 1))
    values[2, 1, 0] = -1e39
    with pytest.raises(DataError, match=r"first -1e\+39 in series 'y' at row 2"):
        TimeSeriesDataset(values=values, name="d", node_names=["x", "y"])


def test_float64_npy_beyond_float32_is_refused(tmp_path: Path) -> None:
    arr = np.ones((T, 4, 2))
    arr[7, 3, 1] = 2e300
    path = tmp_path / "big.npy"
    np.save(path, arr)
    with pytest.raises(DataError) as err:
        load(path, format="array", freq_minutes=5)
    text = _one_sentence(err)
    assert str(path) in text
    assert "first 2e+300 in series 3 (from 0), channel 1 at row 7" in text


def test_float32_npy_stays_memory_mapped_and_is_not_rescanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f32.npy"
    np.save(path, np.full((T, 4, 1), FLOAT32_MAX, dtype=np.float32))

    def scanned(*args: object) -> None:  # a float32 array cannot overflow: nothing to scan
        raise AssertionError("float32 values were scanned for overflow")

    arr = np.load(path, mmap_mode="r")
    with monkeypatch.context() as patch:
        patch.setattr("linearcast.data.checks._iter_row_chunks", scanned)
        assert to_float32(arr, str(path)) is arr
    ds = load(path, format="array", freq_minutes=5)
    assert isinstance(ds.values, np.memmap)
    assert ds.values.filename is not None and Path(ds.values.filename) == path


def test_float64_is_cast_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("linearcast.data.checks._CHUNK_ELEMENTS", 8)
    arr = np.arange(300.0).reshape(50, 3, 2)
    arr[41, 0, 1] = 1e40
    with pytest.raises(DataError, match=r"found 1 finite value beyond it .* at row 41"):
        to_float32(arr, "x")
    arr[41, 0, 1] = 1.0
    out = to_float32(arr, "x")
    assert out.dtype == np.float32 and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr.astype(np.float32))


@pytest.mark.parametrize(
    "arr",
    [
        np.array([[2**62, -(2**63)]], dtype=np.int64),  # precision lost, range kept
        np.array([[2**64 - 1, 0]], dtype=np.uint64),
        np.array([[65504.0, -65504.0]], dtype=np.float16),
    ],
)
def test_integers_and_half_floats_never_overflow(arr: np.ndarray) -> None:
    out = to_float32(arr, "x")
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, arr.astype(np.float64), rtol=1e-7)


def test_message_offers_name_placeholder_for_odd_names() -> None:
    arr = np.ones((3, 1))
    arr[0, 0] = 1e300
    with pytest.raises(DataError) as err:
        to_float32(arr, "f.csv", ["a,b"], "leave it out with --set data_options.drop=[{col}]")
    assert re.search(r"series 'a,b' .*data_options\.drop=\[NAME\]\.$", str(err.value))


def test_cast_keeps_the_memory_layout() -> None:
    # a frame's to_numpy() is column-major; float32 sums over time depend on the layout
    arr = np.asfortranarray(np.arange(60.0).reshape(20, 3))
    out = to_float32(arr, "x")
    assert out.flags.f_contiguous and type(out) is np.ndarray
    np.testing.assert_array_equal(out, arr)
