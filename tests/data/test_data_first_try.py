"""Real files open on the first try: each layout users brought, written here in that layout."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.data import load, sniff_format
from linearcast.errors import ConfigError, DataError


def _ring(n: int) -> np.ndarray:
    adj = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        adj[i, (i + 1) % n] = adj[(i + 1) % n, i] = 1.0
    return adj


def _series(t: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (50 + 10 * rng.standard_normal((t, n))).astype(np.float32)


# ----------------------------------------------------------------------------- adjacency layouts
@pytest.mark.parametrize("layout", ["bare", "header", "header+index", "index-header"])
def test_a_square_adjacency_csv_beside_an_npz_is_the_graph(tmp_path: Path, layout: str) -> None:
    n = 5
    np.savez(tmp_path / "speeds.npz", data=_series(300, n))
    adj = pd.DataFrame(_ring(n))
    target = tmp_path / "speeds_adj.csv"
    if layout == "bare":
        adj.to_csv(target, header=False, index=False)
    elif layout == "header":  # a header row of column indices (NYC taxi's W_adj_matrix.csv)
        adj.to_csv(target, index=False)
    elif layout == "header+index":  # header and index column (HZMetro's graph.csv)
        adj.to_csv(target)
    else:  # named nodes in both
        adj.index = adj.columns = [f"s{i}" for i in range(n)]
        adj.to_csv(target)
    assert sniff_format(tmp_path / "speeds.npz") == "array"  # not a PEMS edge list
    ds = load(tmp_path / "speeds.npz")
    np.testing.assert_array_equal(ds.adjacency, _ring(n))


def test_a_same_stem_square_csv_is_the_graph_too(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", data=_series(100, 4))
    pd.DataFrame(_ring(4)).to_csv(tmp_path / "x.csv", header=False, index=False)
    np.testing.assert_array_equal(load(tmp_path / "x.npz").adjacency, _ring(4))


def test_an_ambiguous_file_names_the_formats_that_would_read_it(tmp_path: Path) -> None:
    path = tmp_path / "road_adj.csv"  # named like a graph: not data by default
    pd.DataFrame(_ring(4)).to_csv(path, header=False, index=False)
    with pytest.raises(DataError, match="--format matrix_csv"):
        sniff_format(path)


# ----------------------------------------------------------------------------- node-link JSON
def test_networkx_node_link_json(tmp_path: Path) -> None:
    values = _series(30, 3)
    doc = {
        "directed": False,
        "multigraph": False,
        "graph": {},
        "nodes": [{"id": f"z{i}", "y": values[:, i].tolist()} for i in range(3)],
        "links": [
            {"source": "z0", "target": "z1", "weight": 0.5},
            {"source": "z1", "target": "z2"},
        ],
    }
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(doc))
    ds = load(path)
    assert ds.shape == (30, 3, 1) and ds.node_names == ["z0", "z1", "z2"]
    np.testing.assert_allclose(ds.values[..., 0], values)
    assert ds.adjacency[0, 1] == ds.adjacency[1, 0] == 0.5 and ds.adjacency[1, 2] == 1.0
    doc["nodes"] = [{**node, "x": node["y"]} for node in doc["nodes"]]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"data_options\.series_key"):
        load(path)
    assert load(path, series_key="x").shape == (30, 3, 1)


# ----------------------------------------------------------------------------- flow pairs / MATLAB
def test_inflow_outflow_npz_pair_is_one_dataset(tmp_path: Path) -> None:
    inflow, outflow = _series(96, 4, 1), _series(96, 4, 2)
    np.savez(tmp_path / "city-30min-inflow.npz", arr_0=inflow.astype(np.float64))
    np.savez(tmp_path / "city-30min-outflow.npz", arr_0=outflow.astype(np.float64))
    pd.DataFrame(
        {"zone_id": [7, 3, 9, 1], "graph_id": [2, 0, 3, 1], "zone_name": ["c", "a", "d", "b"]}
    ).to_csv(tmp_path / "zones.csv", index=False)
    for name in ("city-30min-inflow.npz", "city-30min-outflow.npz"):
        ds = load(tmp_path / name)
        assert sniff_format(tmp_path / name) == "flow_pair"
        assert ds.shape == (96, 4, 2) and ds.channel_names == ["inflow", "outflow"]
        np.testing.assert_allclose(ds.values[..., 0], inflow)
        assert ds.freq_minutes == 30 and ds.node_names == ["a", "b", "c", "d"]


def test_matlab_day_step_tensors_and_a_graph_with_one_node_more(tmp_path: Path) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    n, days, steps = 6, 3, 24
    tensor = np.arange(n * days * steps, dtype=np.uint16).reshape(n, days, steps)
    scipy_io.savemat(tmp_path / "inflow_tensor.mat", {"inflow_tensor": tensor})
    scipy_io.savemat(tmp_path / "outflow_tensor.mat", {"outflow_tensor": tensor + 1})
    pd.DataFrame(_ring(n + 1)).to_csv(tmp_path / "graph.csv")  # one station more
    # the graph found beside the data does not fit: not used, and the warning says how to
    # use it (models without a graph run as they are)
    with pytest.warns(UserWarning, match=r"graph_drop=\[INDEX\].*adjacency=none"):
        assert load(tmp_path / "inflow_tensor.mat").adjacency is None
    ds = load(tmp_path / "inflow_tensor.mat", graph_drop=[n])
    assert ds.shape == (days * steps, n, 2) and ds.steps_per_day == steps
    assert ds.values[steps, 2, 0] == tensor[2, 1, 0]  # day 1, step 0 of station 2
    assert ds.adjacency.shape == (n, n)
    assert load(tmp_path / "inflow_tensor.mat", adjacency="none").adjacency is None


# ---------------------------------------------------------------------- duplicates, sentinels
def _weather(tmp_path: Path) -> Path:
    dates = list(pd.date_range("2020-01-01", periods=200, freq="10min"))
    dates.insert(50, dates[50])  # one repeated timestamp, as in the LTSF Weather CSV
    del dates[120:130]  # and a 100-minute gap
    values = _series(len(dates), 2)
    values[[10, 90, 150], 1] = -9999.0  # the sentinel
    path = tmp_path / "weather.csv"
    pd.DataFrame({"date": dates, "p": values[:, 0], "wv": values[:, 1]}).to_csv(path, index=False)
    return path


def test_a_duplicated_timestamp_names_the_dedupe_option(tmp_path: Path) -> None:
    path = _weather(tmp_path)
    with pytest.raises(DataError, match=r"data_options.dedupe=first"):
        load(path)
    with pytest.warns(UserWarning, match="gaps or irregular"):
        ds = load(path, dedupe="first")
    assert ds.num_steps == 190
    with pytest.warns(UserWarning):
        assert load(path, dedupe="mean").num_steps == 190


def test_describe_flags_sentinel_values_and_suggests_the_null_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _weather(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["data", "describe", str(path), "--set", "dedupe=first"]) == 0
    out = capsys.readouterr().out
    assert "-9999 (3x)" in out and "in wv" in out
    assert "--null -9999" in out and "--set data_options.null_value=-9999" in out
    assert "p 2" in out or "per series" in out  # per-series ranges are printed


def test_describe_with_the_null_value_counts_it_and_leaves_it_out_of_the_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Told ``--null -9999``, describe counts the sentinels as missing, leaves them out of
    min/max/mean, and no longer advises masking them."""
    path = _weather(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (
            main(["data", "describe", str(path), "--set", "dedupe=first", "--null", "-9999"]) == 0
        )
    out = capsys.readouterr().out
    assert "null 3  missing" in out
    assert "-9999" not in out.split("null value")[1].split("\n", 1)[1]  # only the null line
    assert "mask it" not in out


# ---------------------------------------------------------------------- describe/convert flags
def _headerless(tmp_path: Path) -> Path:
    path = tmp_path / "speeds.csv"
    pd.DataFrame(_series(600, 4)).to_csv(path, header=False, index=False)
    pd.DataFrame(_ring(4)).to_csv(tmp_path / "ring.csv", header=False, index=False)
    return path


def test_describe_and_convert_take_freq_start_adj_null(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _headerless(tmp_path)
    args = ["--freq", "5", "--start", "2020-03-02", "--adj", str(tmp_path / "ring.csv")]
    assert main(["data", "describe", str(path), *args, "--null", "nan"]) == 0
    out = capsys.readouterr().out
    assert "5 min, steps/day 288" in out and "2020-03-02" in out and "4 nodes" in out
    assert "null value    NaN" in out
    assert main(["data", "convert", str(path), str(tmp_path / "bts"), *args]) == 0
    desc = json.loads((tmp_path / "bts" / "desc.json").read_text())
    assert desc["shape"] == [600, 4, 3]  # the data channel + time of day + day of week
    back = load(tmp_path / "bts")
    assert back.day_of_week()[0] == 0  # 2020-03-02 was a Monday


@pytest.mark.parametrize("protocol", ["pems", "ltsf"])
def test_convert_carries_the_declared_null_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    """``--null -200`` is the data's marker: the BasicTS copy says NULL_VAL -200 (not the
    preset's 0, or NaN), so the sentinels read back as missing and real zeros as readings."""
    values = _series(600, 4)
    values[::7, 1] = -200.0
    values[3, 2] = 0.0
    path = tmp_path / "aq.csv"
    pd.DataFrame(values).to_csv(path, header=False, index=False)
    out = tmp_path / f"bts_{protocol}"
    args = ["--freq", "60", "--null", "-200", "--protocol", protocol]
    assert main(["data", "convert", str(path), str(out), *args]) == 0
    assert json.loads((out / "desc.json").read_text())["regular_settings"]["NULL_VAL"] == -200
    back = load(out)
    assert back.null_value == -200.0
    missing = back.values[:, :, 0] == back.null_value
    assert missing.sum() == (values == -200.0).sum() and not missing[3, 2]


def test_convert_without_a_frequency_says_which_flag_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _headerless(tmp_path)
    assert main(["data", "convert", str(path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "--freq MINUTES" in err and "--no-time-features" in err
    assert not (tmp_path / "out" / "data.dat").exists()


def test_the_missing_frequency_error_gives_the_exact_set(tmp_path: Path) -> None:
    from linearcast.data import get_protocol

    with pytest.raises(DataError, match=r"--set data_options.freq_minutes=MINUTES"):
        get_protocol("pems").prepare(load(_headerless(tmp_path)))


def test_unknown_reader_options_are_errors_listing_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no option\(s\) \['freq'\].*freq_minutes"):
        load(_headerless(tmp_path), freq=5)
