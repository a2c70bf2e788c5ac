"""Every bad input raises one DataError naming the file, the expected and the found."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import (
    get_protocol,
    load,
    read_array,
    read_basicts,
    read_ltsf_csv,
    read_matrix_csv,
    read_metr_h5,
    read_pems_npz,
    synthetic_traffic,
)
from linearcast.errors import DataError, LinearcastError


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_data_error_is_a_linearcast_error() -> None:
    assert issubclass(DataError, LinearcastError) and issubclass(DataError, ValueError)


# ----------------------------------------------------------------------------- missing file
@pytest.mark.parametrize(
    ("reader", "fname", "expected"),
    [
        (read_pems_npz, "PEMS08.npz", "a PEMS .npz file"),
        (read_ltsf_csv, "ETTh1.csv", "an LTSF CSV"),
        (read_metr_h5, "metr-la.h5", "a pandas HDF5 file"),
        (read_array, "x.npy", "a .npy or .npz array"),
        (load, "nothing.npz", "a dataset file"),
    ],
)
def test_missing_file(tmp_path: Path, reader: object, fname: str, expected: str) -> None:
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / fname}: file not found")) as err:
        reader(tmp_path / fname)  # type: ignore[operator]
    assert expected in str(err.value)


def test_missing_basicts_desc(tmp_path: Path) -> None:
    (tmp_path / "data.dat").write_bytes(b"\0" * 16)
    with pytest.raises(DataError, match=r"desc\.json: file not found \(expected a BasicTS desc"):
        read_basicts(tmp_path)


# ----------------------------------------------------------------------------- wrong key / rank
def test_wrong_npz_key(tmp_path: Path) -> None:
    np.savez(tmp_path / "PEMS08.npz", flow=np.zeros((10, 3, 1)))
    with pytest.raises(DataError, match=r"PEMS08\.npz: expected key 'data', found keys \['flow'\]"):
        read_pems_npz(tmp_path / "PEMS08.npz", graph=None)


def test_wrong_hdf5_key(tmp_path: Path) -> None:
    df = pd.DataFrame(np.ones((5, 2)), index=pd.date_range("2020-01-01", periods=5, freq="5min"))
    df.to_hdf(tmp_path / "m.h5", key="df")
    with pytest.raises(DataError, match=r"m\.h5: expected key 'speed', found keys \['df'\]"):
        read_metr_h5(tmp_path / "m.h5", key="speed", adjacency=None)


def test_wrong_rank_pems(tmp_path: Path) -> None:
    np.savez(tmp_path / "PEMS04.npz", data=np.zeros((10, 4)))
    with pytest.raises(
        DataError,
        match=r"PEMS04\.npz: expected key 'data' of rank 3 \[T, N, F\], found shape \(10, 4\)",
    ):
        read_pems_npz(tmp_path / "PEMS04.npz", graph=None)


def test_wrong_rank_generic(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4, 5), dtype=np.float32))
    with pytest.raises(
        DataError,
        match=r"x\.npy: expected values of rank 2 .* found rank 4 with shape \(2, 3, 4, 5\)",
    ):
        read_array(tmp_path / "x.npy")


def test_basicts_size_mismatch(tmp_path: Path) -> None:
    (tmp_path / "desc.json").write_text(json.dumps({"shape": [10, 3, 1]}))
    (tmp_path / "data.dat").write_bytes(np.zeros(29, dtype=np.float32).tobytes())
    with pytest.raises(
        DataError, match=r"data\.dat: expected 120 bytes .*\[10, 3, 1\].* found 116 bytes"
    ):
        read_basicts(tmp_path)


# ----------------------------------------------------------------------------- N mismatch
def test_n_mismatch_pems_graph(tmp_path: Path, shared_data: Path) -> None:
    np.savez(tmp_path / "PEMS08.npz", data=np.ones((30, 100, 3)))
    with pytest.raises(
        DataError,
        match=r"PEMS08\.csv: the edges refer to node indices 0\.\.169 but the data has N=100",
    ):
        read_pems_npz(tmp_path / "PEMS08.npz", graph=shared_data / "PEMS_graphs" / "PEMS08.csv")


def test_n_mismatch_adjacency_csv(tmp_path: Path) -> None:
    _csv(tmp_path / "sz_speed.csv", "1,2,3\n4,5,6\n7,8,9\n")
    _csv(tmp_path / "sz_adj.csv", "1,0\n0,1\n")
    # given explicitly: a sentence naming both sizes
    with pytest.raises(
        DataError,
        match=r"sz_adj\.csv: the graph has 2 nodes but the data has N=3 series .*\(3, 3\)",
    ):
        read_matrix_csv(tmp_path / "sz_speed.csv", adjacency=tmp_path / "sz_adj.csv")
    # only found beside the data: not used, with a warning naming the fixes (models without a
    # graph still run; a graph model stops with the engine's "needs a graph" sentence)
    with pytest.warns(UserWarning, match=r"sz_adj\.csv: found beside the data .*not used.*"):
        ds = read_matrix_csv(tmp_path / "sz_speed.csv")
    assert ds.adjacency is None


def test_n_mismatch_basicts_pickle(tmp_path: Path) -> None:
    (tmp_path / "desc.json").write_text(
        json.dumps({"shape": [10, 3, 1], "feature_description": ["x"]})
    )
    np.zeros((10, 3, 1), dtype=np.float32).tofile(tmp_path / "data.dat")
    with open(tmp_path / "adj_mx.pkl", "wb") as fh:
        pickle.dump(np.eye(4, dtype=np.float32), fh)
    with pytest.raises(DataError, match=r"adj_mx\.pkl: the graph has 4 nodes but the data has N=3"):
        read_basicts(tmp_path)


# ----------------------------------------------------------------------------- non-numeric
def test_non_numeric_column(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "bad.csv",
        "date,A,B\n2020-01-01 00:00,1,2\n2020-01-01 01:00,3,abc\n2020-01-01 02:00,5,6\n",
    )
    with pytest.raises(
        DataError,
        match=r"bad\.csv: expected numeric values in column 'B', found 1 non-numeric entries "
        r"\(first 'abc' at data row 1\)",
    ):
        read_ltsf_csv(path)


def test_missing_date_column(tmp_path: Path) -> None:
    path = _csv(tmp_path / "nodate.csv", "when,A\n1,2\n")
    with pytest.raises(
        DataError,
        match=r"nodate\.csv: expected a time column \(named date, ds, datetime, time or "
        r"timestamp, any case, or an unnamed first column of dates\), found columns "
        r"\['when', 'A'\]; name it with --set data_options\.date_column=NAME\.",
    ):
        read_ltsf_csv(path)
    with pytest.raises(
        DataError, match=r"nodate\.csv: expected a 'date' column, found columns \['when', 'A'\]"
    ):
        read_ltsf_csv(path, date_column="date")


# ----------------------------------------------------------------------------- NaN / inf
def _nan_csv(tmp_path: Path) -> Path:
    return _csv(
        tmp_path / "gaps.csv",
        "date,A,B\n2020-01-01 00:00,1,\n2020-01-01 01:00,inf,2\n"
        "2020-01-01 02:00,nan,6\n2020-01-01 03:00,4,5\n",
    )


def test_nan_and_inf_are_reported_with_counts(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"gaps\.csv: expected finite values, found 2 NaN and 1 infinite values out of 8",
    ):
        read_ltsf_csv(_nan_csv(tmp_path))


def test_nan_policy_null_replaces_and_warns(tmp_path: Path) -> None:
    with pytest.warns(
        UserWarning, match=r"gaps\.csv: 2 NaN and 1 infinite values .* null value nan"
    ):
        ds = read_ltsf_csv(_nan_csv(tmp_path), non_finite="null")
    v = ds.values[:, :, 0]
    assert np.isnan(v[0, 1]) and np.isnan(v[1, 0]) and np.isnan(v[2, 0])
    assert np.isfinite(v).sum() == 5
    with pytest.warns(UserWarning, match="null value 0.0"):
        ds0 = read_ltsf_csv(_nan_csv(tmp_path), non_finite="null", null_value=0.0)
    assert (ds0.values == 0).sum() == 3 and np.isfinite(ds0.values).all()


def test_nan_in_npy(tmp_path: Path) -> None:
    arr = np.ones((6, 2), dtype=np.float32)
    arr[2, 1] = np.nan
    np.save(tmp_path / "n.npy", arr)
    with pytest.raises(
        DataError, match=r"n\.npy: expected finite values, found 1 NaN and 0 infinite"
    ):
        read_array(tmp_path / "n.npy")


# ----------------------------------------------------------------------------- timestamps
def test_unsorted_timestamps(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "unsorted.csv",
        "date,A\n2020-01-01 00:00,1\n2020-01-01 02:00,2\n2020-01-01 01:00,3\n2020-01-01 03:00,4\n",
    )
    with pytest.raises(
        DataError,
        match=r"unsorted\.csv: expected timestamps sorted in increasing order, found "
        r"2020-01-01 01:00:00 after 2020-01-01 02:00:00 \(rows 1 and 2\)",
    ):
        read_ltsf_csv(path)


def test_duplicated_timestamps(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "dup.csv",
        "date,A\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n2020-01-01 01:00,3\n2020-01-01 02:00,4\n",
    )
    with pytest.raises(
        DataError,
        match=r"dup\.csv: expected unique timestamps, found 1 duplicated "
        r"\(first: 2020-01-01 01:00:00 at row 2\)",
    ):
        read_ltsf_csv(path)


def test_duplicated_timestamps_hdf5(tmp_path: Path) -> None:
    idx = pd.DatetimeIndex(["2020-01-01 00:00", "2020-01-01 00:05", "2020-01-01 00:05"])
    pd.DataFrame(np.ones((3, 2)), index=idx).to_hdf(tmp_path / "d.h5", key="df")
    with pytest.raises(DataError, match=r"d\.h5: expected unique timestamps, found 1 duplicated"):
        read_metr_h5(tmp_path / "d.h5", adjacency=None)


# ----------------------------------------------------------------------------- too short
def test_series_shorter_than_one_window(tmp_path: Path) -> None:
    np.save(tmp_path / "short.npy", np.ones((50, 3), dtype=np.float32))
    ds = read_array(tmp_path / "short.npy", steps_per_day=288)
    with pytest.raises(
        DataError,
        match=r"short\.npy: expected a series long enough for one 12\+12-step window in each of "
        r"train/val/test under protocol pems\[basicts,12->12\], found T=50 steps \(train 30 rows, "
        r"val 10 rows, test 10 rows",
    ):
        get_protocol("pems").prepare(ds)
    np.save(tmp_path / "shorter.npy", np.ones((20, 3), dtype=np.float32))
    ds20 = read_array(tmp_path / "shorter.npy", steps_per_day=288)
    with pytest.raises(DataError, match=r"shorter\.npy: .*found T=20 steps \(split by windows"):
        get_protocol("pems-staeformer").prepare(ds20)


def test_time_features_need_a_clock(tmp_path: Path) -> None:
    np.save(tmp_path / "noclock.npy", np.ones((500, 3), dtype=np.float32))
    ds = read_array(tmp_path / "noclock.npy")
    with pytest.raises(DataError, match=r"noclock\.npy: time-of-day features need timestamps"):
        get_protocol("pems").prepare(ds)
    prep = get_protocol("pems", add_time_of_day=False, add_day_of_week=False).prepare(ds)
    assert prep.input_channels == 1


def test_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"")
    with pytest.raises(
        DataError, match=r"x\.parquet: could not tell the format from suffix '\.parquet'"
    ):
        load(tmp_path / "x.parquet")


def test_all_null_training_part_cannot_fit_scaler() -> None:
    ds = synthetic_traffic(num_nodes=4, days=2, seed=1)
    ds.values = np.zeros_like(ds.values)
    with pytest.raises(DataError, match=r"synthetic.*allow_mostly_missing=true"):
        get_protocol("pems").prepare(ds)  # all masked: asked first
    with pytest.raises(
        DataError, match=r"synthetic.*expected valid \(non-null, non-NaN\) training values"
    ):
        get_protocol("pems", allow_mostly_missing=True).prepare(ds)


def test_an_edge_list_is_not_taken_for_a_dataset(tmp_path: Path) -> None:
    edges = tmp_path / "PEMS08.csv"
    edges.write_text("from,to,cost\n0,1,10.5\n1,2,3.0\n")
    with pytest.raises(DataError, match=r"PEMS08\.csv: this is an edge list.*PEMS08\.npz"):
        load(edges)


# ----------------------------------------------------------------------------- graph values
def test_an_adjacency_csv_with_empty_or_nan_cells_says_so(tmp_path: Path) -> None:
    _csv(tmp_path / "x.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    _csv(tmp_path / "g.csv", "0,1,0\n1,nan,1\n0,1,\n")
    with pytest.raises(
        DataError,
        match=r"g\.csv: expected a weight in every cell .* found 2 empty or NaN cells "
        r"\(first at row 1, column 1\).*data_options\.adjacency=none",
    ):
        read_matrix_csv(tmp_path / "x.csv", adjacency=tmp_path / "g.csv")


@pytest.mark.parametrize("weight", ["inf", "-inf", "1e39"])
def test_an_adjacency_with_infinite_weights_names_the_graph_file(
    tmp_path: Path, weight: str
) -> None:
    _csv(tmp_path / "x.csv", "a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    _csv(tmp_path / "g.csv", f"0,1,0\n1,0,{weight}\n0,1,0\n")
    np.save(tmp_path / "g.npy", np.array([[0, np.inf], [1, 0]]))
    with pytest.raises(DataError, match=r"g\.csv: expected finite edge weights .* found 1 "):
        read_matrix_csv(tmp_path / "x.csv", adjacency=tmp_path / "g.csv")
    with pytest.raises(DataError, match=r"g\.npy: expected finite edge weights"):
        read_matrix_csv(tmp_path / "x.csv", adjacency=tmp_path / "g.npy")


# ------------------------------------------------------------ paths and formats named wrong
def test_symbolic_links_that_lead_nowhere_say_so(tmp_path: Path) -> None:
    """A dangling link or a loop is not "file not found": the message says which."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "gone.csv").symlink_to(tmp_path / "nothere.csv")
    with pytest.raises(DataError, match=r"a: a symbolic link that loops back on itself"):
        load(tmp_path / "a")
    with pytest.raises(DataError, match=r"gone\.csv: a symbolic link to '.*nothere\.csv', which"):
        load(tmp_path / "gone.csv")


@pytest.mark.parametrize("fmt", ["uctb", "mat", "metr", "pgt", "array"])
def test_a_format_named_wrong_says_what_the_file_looks_like(tmp_path: Path, fmt: str) -> None:
    """``--format uctb`` on a CSV failed in the unpickler's words (``pop from empty list``);
    every reader's refusal now ends naming the format the file looks like."""
    path = _csv(tmp_path / "plain.csv", "date,a\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    with pytest.raises(DataError) as err:
        load(path, format=fmt)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert text.endswith("the file looks like 'ltsf' data: leave --format out (or --format ltsf).")
