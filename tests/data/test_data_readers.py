"""Readers: files written here in the published layouts, and the real files in ../shared/data."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import (
    load,
    read_array,
    read_basicts,
    read_ltsf_csv,
    read_matrix_csv,
    read_metr_h5,
    read_pems_graph,
    read_pems_npz,
    read_pgt_json,
    sniff_format,
)
from linearcast.errors import DataError


def _edges(path: Path) -> list[tuple[int, int, float]]:
    with open(path) as fh:
        rows = list(csv.reader(fh))[1:]
    return [(int(r[0]), int(r[1]), float(r[2])) for r in rows if r]


def _pems_array(t: int, n: int, f: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 500, size=(t, n, f))  # float64, as in the public release


# ----------------------------------------------------------------------------- PEMS
def test_pems08_npz_with_real_edge_file(tmp_path: Path, shared_data: Path) -> None:
    data = _pems_array(300, 170, 3)
    npz = tmp_path / "PEMS08.npz"
    np.savez_compressed(npz, data=data)  # published layout: key "data", [T, N, F]
    graph = shared_data / "PEMS_graphs" / "PEMS08.csv"
    ds = read_pems_npz(npz, graph=graph)
    assert ds.shape == (300, 170, 3)
    assert ds.values.dtype == np.float32
    np.testing.assert_allclose(ds.values, data.astype(np.float32))
    assert ds.channel_names == ["flow", "occupancy", "speed"]
    assert ds.steps_per_day == 288 and ds.freq_minutes == 5 and ds.null_value == 0.0
    edges = _edges(graph)
    pairs = {frozenset((a, b)) for a, b, _ in edges if a != b}
    adj = ds.adjacency
    assert adj is not None
    np.testing.assert_array_equal(adj, adj.T)
    assert len(edges) == 295  # README; some are the same road in both directions
    assert int((np.triu(adj, 1) != 0).sum()) == len(pairs)
    a, b, _ = edges[0]
    assert adj[a, b] == 1.0 and adj[b, a] == 1.0
    assert np.diag(adj).sum() == 0  # BasicTS adj_mx: no self loops


def test_pems_graph_distance_and_gaussian_weights(shared_data: Path) -> None:
    graph = shared_data / "PEMS_graphs" / "PEMS04.csv"
    edges = _edges(graph)
    dist = read_pems_graph(graph, 307, weights="distance")
    a, b, cost = edges[0]
    assert dist[a, b] == pytest.approx(cost) and dist[b, a] == pytest.approx(cost)
    gauss = read_pems_graph(graph, 307, weights="gaussian")
    sigma = np.std([c for _, _, c in edges])
    assert gauss[a, b] == pytest.approx(np.exp(-((cost / sigma) ** 2)), rel=1e-5)
    assert gauss.max() <= 1.0 and gauss.min() >= 0.0


def test_pems03_uses_id_file(tmp_path: Path, shared_data: Path) -> None:
    g = shared_data / "PEMS_graphs"
    ids = [s.strip() for s in (g / "PEMS03.txt").read_text().splitlines() if s.strip()]
    assert len(ids) == 358
    npz = tmp_path / "PEMS03.npz"
    np.savez_compressed(npz, data=_pems_array(100, 358, 1))
    ds = read_pems_npz(npz, graph=g / "PEMS03.csv", id_file=g / "PEMS03.txt")
    assert ds.shape == (100, 358, 1) and ds.channel_names == ["flow"]
    edges = _edges(g / "PEMS03.csv")
    src, dst, _ = edges[0]
    i, j = ids.index(str(src)), ids.index(str(dst))
    assert ds.adjacency is not None and ds.adjacency[i, j] == 1.0 == ds.adjacency[j, i]
    assert int((np.triu(ds.adjacency, 1) != 0).sum()) == len(
        {frozenset((a, b)) for a, b, _ in edges if a != b}
    )


def test_pems03_without_id_file_is_an_error(tmp_path: Path, shared_data: Path) -> None:
    npz = tmp_path / "PEMS03.npz"
    np.savez_compressed(npz, data=_pems_array(50, 358, 1))
    with pytest.raises(DataError, match=r"PEMS03\.csv.*N=358.*id file"):
        read_pems_npz(npz, graph=shared_data / "PEMS_graphs" / "PEMS03.csv", id_file=None)


def test_pems_sibling_files_are_found(tmp_path: Path) -> None:
    npz = tmp_path / "PEMS04.npz"
    np.savez_compressed(npz, data=_pems_array(40, 4, 3))
    (tmp_path / "PEMS04.csv").write_text("from,to,cost\n0,1,10.5\n2,3,7.0\n")
    assert sniff_format(npz) == "pems"
    ds = load(npz)
    assert ds.meta["format"] == "pems"
    assert ds.adjacency is not None and ds.adjacency[0, 1] == 1 and ds.adjacency[3, 2] == 1
    assert ds.adjacency.sum() == 4


def test_uncompressed_float32_npz_is_memory_mapped(tmp_path: Path) -> None:
    data = _pems_array(64, 5, 3).astype(np.float32)
    np.savez(tmp_path / "PEMS08.npz", data=data)
    ds = read_pems_npz(tmp_path / "PEMS08.npz", graph=None)
    assert isinstance(ds.values, np.memmap)
    np.testing.assert_array_equal(np.asarray(ds.values), data)


# ----------------------------------------------------------------------------- BasicTS
def write_basicts_like(
    folder: Path, values: np.ndarray, adj: object | None, null: float = 0.0
) -> None:
    """Write data.dat / desc.json / adj_mx.pkl as BasicTS v0.4/0.5's PEMS08 script does."""
    folder.mkdir(parents=True, exist_ok=True)
    t, n, _ = values.shape
    tod = np.array([i % 288 / 288 for i in range(t)])
    dow = np.array([(i // 288) % 7 / 7 for i in range(t)])
    full = np.concatenate(
        [
            values,
            np.tile(tod, [1, n, 1]).transpose((2, 1, 0)),
            np.tile(dow, [1, n, 1]).transpose((2, 1, 0)),
        ],
        axis=-1,
    )
    fp = np.memmap(folder / "data.dat", dtype="float32", mode="w+", shape=full.shape)
    fp[:] = full[:]
    fp.flush()
    del fp
    desc = {
        "name": folder.name,
        "domain": "traffic flow",
        "shape": list(full.shape),
        "num_time_steps": t,
        "num_nodes": n,
        "num_features": full.shape[2],
        "feature_description": ["traffic flow", "time of day", "day of week"],
        "has_graph": adj is not None,
        "frequency (minutes)": 5,
        "regular_settings": {
            "INPUT_LEN": 12,
            "OUTPUT_LEN": 12,
            "TRAIN_VAL_TEST_RATIO": [0.6, 0.2, 0.2],
            "NORM_EACH_CHANNEL": False,
            "RESCALE": True,
            "METRICS": ["MAE", "RMSE", "MAPE"],
            "NULL_VAL": null,
        },
    }
    (folder / "desc.json").write_text(json.dumps(desc, indent=4))
    if adj is not None:
        with open(folder / "adj_mx.pkl", "wb") as fh:
            pickle.dump(adj, fh)


def test_basicts_folder(tmp_path: Path, shared_data: Path) -> None:
    t = 288 * 8 + 5
    values = _pems_array(t, 170, 1).astype(np.float32)
    adj = read_pems_graph(shared_data / "PEMS_graphs" / "PEMS08.csv", 170)
    folder = tmp_path / "datasets" / "PEMS08"
    write_basicts_like(folder, values, adj)
    ds = read_basicts(folder)
    assert isinstance(ds.values, np.memmap)
    assert ds.shape == (t, 170, 1)
    np.testing.assert_array_equal(np.asarray(ds.values), values)
    assert ds.freq_minutes == 5 and ds.steps_per_day == 288 and ds.null_value == 0.0
    assert ds.name == "PEMS08"
    np.testing.assert_allclose(ds.time_of_day(), np.arange(t) % 288 / 288, atol=1e-6)
    np.testing.assert_array_equal(ds.day_of_week(), (np.arange(t) // 288) % 7)
    assert ds.adjacency is not None
    np.testing.assert_array_equal(ds.adjacency, adj)
    # the same through load() on the folder and on data.dat
    assert load(folder).shape == load(folder / "data.dat").shape == (t, 170, 1)


def test_basicts_dcrnn_pickle_and_nan_null(tmp_path: Path) -> None:
    values = _pems_array(300, 4, 1).astype(np.float32)
    ids = ["a", "b", "c", "d"]
    adj = np.eye(4, dtype=np.float32)
    write_basicts_like(
        tmp_path / "M", values, [ids, {s: i for i, s in enumerate(ids)}, adj], null=float("nan")
    )
    ds = read_basicts(tmp_path / "M" / "desc.json")
    assert np.isnan(ds.null_value)
    assert ds.node_names == ids
    np.testing.assert_array_equal(ds.adjacency, adj)


# ----------------------------------------------------------------------------- METR-LA HDF5
def _write_metr(
    folder: Path, t: int, ids: list[str], adj_order: list[str], key: str = "df"
) -> pd.DataFrame:
    idx = pd.date_range("2012-03-01", periods=t, freq="5min")
    rng = np.random.default_rng(1)
    vals = rng.uniform(0, 70, size=(t, len(ids)))
    vals[::7, 0] = 0.0  # missing readings are zeros
    df = pd.DataFrame(vals, index=idx, columns=ids)
    df.to_hdf(folder / "metr-la.h5", key=key)
    n = len(adj_order)
    adj = np.zeros((n, n), dtype=np.float32)
    for i, s in enumerate(adj_order):  # weight encodes the pair for the reorder check
        for j, u in enumerate(adj_order):
            adj[i, j] = float(int(s) * 100 + int(u)) / 10000
    with open(folder / "adj_mx.pkl", "wb") as fh:
        pickle.dump([adj_order, {s: i for i, s in enumerate(adj_order)}, adj], fh, protocol=2)
    return df


def test_metr_h5_and_dcrnn_pickle(tmp_path: Path) -> None:
    ids = ["11", "12", "13", "14", "15"]
    df = _write_metr(tmp_path, 600, ids, adj_order=["13", "11", "15", "12", "14"])
    ds = read_metr_h5(tmp_path / "metr-la.h5")
    assert ds.shape == (600, 5, 1)
    np.testing.assert_allclose(ds.values[:, :, 0], df.to_numpy(dtype=np.float32))
    assert ds.freq_minutes == 5 and ds.steps_per_day == 288
    assert ds.start == pd.Timestamp("2012-03-01")
    assert ds.day_of_week()[0] == 3  # 2012-03-01 was a Thursday
    assert ds.time_of_day()[1] == pytest.approx(5 / 1440)
    assert ds.node_names == ids
    adj = ds.adjacency
    assert adj is not None
    # reordered to the column order: adj[i, j] encodes (ids[i], ids[j])
    for i, s in enumerate(ids):
        for j, u in enumerate(ids):
            assert adj[i, j] == pytest.approx((int(s) * 100 + int(u)) / 10000)
    assert sniff_format(tmp_path / "metr-la.h5") == "metr"


# ----------------------------------------------------------------------------- real files
def test_ltsf_csv_etth1(shared_data: Path) -> None:
    ds = read_ltsf_csv(shared_data / "ETT" / "ETTh1.csv")
    assert ds.shape == (17420, 7, 1)
    assert ds.node_names == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert ds.freq_minutes == 60 and ds.steps_per_day == 24
    assert ds.start == pd.Timestamp("2016-07-01 00:00:00")
    assert ds.values[0, 0, 0] == pytest.approx(5.827000141143799)
    assert ds.values[1, 6, 0] == pytest.approx(27.78700065612793)
    assert np.isnan(ds.null_value)
    assert sniff_format(shared_data / "ETT" / "ETTh1.csv") == "ltsf"


def test_ltsf_csv_other_frequencies(shared_data: Path) -> None:
    ex = load(shared_data / "exchange_rate" / "exchange_rate.csv")
    assert ex.shape == (7588, 8, 1) and ex.freq_minutes == 1440 and ex.node_names[-1] == "OT"
    ili = load(shared_data / "illness" / "national_illness.csv")
    assert ili.shape == (966, 7, 1) and ili.freq_minutes == 7 * 1440 and ili.steps_per_day is None
    m2 = load(shared_data / "ETT" / "ETTm2.csv", columns=["OT"])
    assert m2.shape == (69680, 1, 1) and m2.freq_minutes == 15


def test_los_loop_matrix_csv(shared_data: Path) -> None:
    path = shared_data / "los_loop" / "los_speed.csv"
    assert sniff_format(path) == "matrix_csv"
    ds = read_matrix_csv(path, freq_minutes=5)
    assert ds.shape == (2016, 207, 1)
    assert ds.node_names is not None and ds.node_names[0] == "773869"
    assert ds.steps_per_day == 288
    adj = ds.adjacency
    assert adj is not None and adj.shape == (207, 207)
    np.testing.assert_allclose(adj, adj.T)
    np.testing.assert_array_equal(np.diag(adj), np.ones(207))
    assert adj[0, 13] == pytest.approx(0.260935932)
    assert (ds.values != 0).all()  # Los-loop has no zeros (README)


@pytest.mark.parametrize(
    ("fname", "shape", "freq"),
    [
        ("chickenpox.json", (521, 20, 1), 10080),
        ("pedalme_london.json", (35, 15, 1), 10080),
        ("england_covid.json", (61, 129, 1), 1440),
    ],
)
def test_pgt_json_layouts(
    shared_data: Path, fname: str, shape: tuple[int, int, int], freq: int
) -> None:
    path = shared_data / "pgt" / fname
    raw = json.loads(path.read_text())
    ds = read_pgt_json(path)
    assert ds.shape == shape and ds.freq_minutes == freq
    assert sniff_format(path) == "pgt"
    adj = ds.adjacency
    assert adj is not None and adj.shape == (shape[1], shape[1])
    if "FX" in raw:
        np.testing.assert_allclose(ds.values[:, :, 0], np.asarray(raw["FX"], dtype=np.float32))
        assert ds.node_names is not None and ds.node_names[0] == "BACS"
        i, j = raw["edges"][0]
        assert adj[i, j] == 1.0
    elif "X" in raw:
        i, j = raw["edges"][1]
        assert adj[i, j] == pytest.approx(raw["weights"][1])
    else:
        periods = raw["edge_mapping"]["edge_index"]
        total = np.zeros(shape[1:2] * 2)
        for t, edges in periods.items():
            for (i, j), w in zip(edges, raw["edge_mapping"]["edge_weight"][t]):
                total[i, j] += w
        np.testing.assert_allclose(adj, total / len(periods), rtol=1e-5)


# ----------------------------------------------------------------------------- generic arrays
def test_npy_is_memory_mapped_and_rank2_gets_a_channel(tmp_path: Path) -> None:
    arr = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "x.npy", arr)
    ds = read_array(tmp_path / "x.npy", steps_per_day=4)
    assert isinstance(ds.values, np.memmap) and ds.shape == (20, 3, 1)
    np.testing.assert_array_equal(ds.values[:, :, 0], arr)
    assert ds.freq_minutes == 360
    np.savez(tmp_path / "y.npz", other=arr.astype(np.float64))
    ds2 = read_array(tmp_path / "y.npz")  # single array: used whatever its key
    assert ds2.shape == (20, 3, 1) and ds2.values.dtype == np.float32
    assert sniff_format(tmp_path / "y.npz") == "array"


def test_repeated_series_names_are_told_apart_the_same_way_every_time() -> None:
    import warnings

    from linearcast.data.dataset import TimeSeriesDataset

    values = np.zeros((10, 4, 1), dtype=np.float32)
    names = ["Island", "A", "Island", "Island"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ds = TimeSeriesDataset(values=values, name="x", node_names=names)
    assert ds.node_names == ["Island", "A", "Island #2", "Island #3"]
    assert any("repeat" in str(w.message) for w in seen)
    again = TimeSeriesDataset(values=values, name="x", node_names=names)
    assert again.node_names == ds.node_names
    clash = TimeSeriesDataset(values=values, name="x", node_names=["X", "X", "X #2", "B"])
    assert clash.node_names is not None and len(set(clash.node_names)) == 4
