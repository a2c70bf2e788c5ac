"""UCTB datasets (the urban-data benchmark): a pickled dict, published as a zip holding one .pkl,
read through the restricted unpickler; station names, timestamps and a distance graph."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from linearcast.cli import main
from linearcast.data import load
from linearcast.data.readers import sniff_format
from linearcast.errors import DataError

# three stations: two 1.1 km apart in Melbourne, one ~700 km away in Sydney
STATIONS = [
    [1, "2009-03-24", -37.8135, 144.9652, "Bou292_T"],
    [2, "2009-03-30", -37.8035, 144.9652, "Swa295_T"],
    [3, "2010-01-01", -33.8688, 151.2093, "Syd001"],
]


def _uctb(t: int = 48, fitness: int = 60, end: str = "2021-01-03") -> dict[str, Any]:
    """A dict in the published layout (the keys of uctb/Urban-Dataset's pickles)."""
    traffic = np.arange(t * 3, dtype=np.int16).reshape(t, 3)
    return {
        "TimeRange": ["2021-01-01", end],
        "TimeFitness": fitness,
        "Node": {
            "TrafficNode": traffic,
            "TrafficMonthlyInteraction": [],
            "StationInfo": STATIONS,
            "POI": [],
        },
        "Grid": {"TrafficGrid": [], "GridLatLng": [], "POI": []},
        "ExternalFeature": {"Weather": []},
    }


def _zip(path: Path, payload: bytes, member: str = "Pedestrian_Melbourne.pkl") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, payload)
    return path


@pytest.mark.parametrize("kind", ["zip", "pkl"])
def test_uctb_zip_and_pkl_are_read(tmp_path: Path, kind: str) -> None:
    """Before: refused (no format reads .zip or .pkl data)."""
    payload = pickle.dumps(_uctb(), protocol=3)  # protocol 3: as the published files
    path = tmp_path / f"Pedestrian_Melbourne.{kind}"
    if kind == "zip":
        _zip(path, payload)
    else:
        path.write_bytes(payload)
    assert sniff_format(path) == "uctb"
    ds = load(path)
    assert ds.shape == (48, 3, 1) and ds.node_names == ["Bou292_T", "Swa295_T", "Syd001"]
    np.testing.assert_array_equal(ds.values[..., 0], _uctb()["Node"]["TrafficNode"])
    assert ds.freq_minutes == 60 and ds.timestamps is not None
    assert ds.timestamps[0] == pd.Timestamp("2021-01-01") and ds.timestamps[-1] == pd.Timestamp(
        "2021-01-02 23:00"
    )
    assert ds.adjacency is None and ds.name == "Pedestrian_Melbourne"


def test_uctb_distance_graph_is_a_thresholded_gaussian_kernel(tmp_path: Path) -> None:
    path = _zip(tmp_path / "Bike_NYC.zip", pickle.dumps(_uctb()))
    adj = load(path, graph="distance").adjacency
    assert adj is not None and adj.shape == (3, 3)
    np.testing.assert_allclose(adj, adj.T)
    np.testing.assert_allclose(np.diag(adj), 1.0)
    # the near pair keeps a weight close to 1; Sydney is far beyond sigma: cut by the threshold
    assert adj[0, 1] > 0.99 and adj[0, 2] == 0 and adj[1, 2] == 0
    kept = adj[adj > 0]
    assert (kept >= 0.1).all() and (kept <= 1).all()
    lower = load(path, graph="distance", graph_threshold=0.0).adjacency
    assert lower is not None and 0 < lower[0, 2] < 0.1


def test_uctb_time_range_that_disagrees_warns(tmp_path: Path) -> None:
    path = _zip(tmp_path / "x.zip", pickle.dumps(_uctb(end="2021-01-05")))
    with pytest.warns(UserWarning, match=r"holds 96 steps of 60 min, the data 48"):
        load(path)


def test_uctb_pickle_that_imports_code_is_refused_naming_the_member(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("ran",))

    bad = _uctb()
    bad["Node"]["POI"] = Payload()
    path = _zip(tmp_path / "Bike_NYC.zip", pickle.dumps(bad), member="Bike_NYC.pkl")
    with pytest.raises(DataError) as err:
        load(path)
    text = str(err.value)
    assert text.startswith(f"{path} (member Bike_NYC.pkl): refused to unpickle")
    assert "builtins.print" in text and "linearcast-uctb" not in text


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.pop("Node"), r"without a Node\.TrafficNode"),
        (lambda d: d.update(TimeFitness=0), r"TimeFitness as minutes > 0"),
        (lambda d: d.update(TimeRange=["soon", "later"]), r"TimeRange as \[start, end\]"),
        (lambda d: d["Node"].update(StationInfo=STATIONS[:2]), r"StationInfo as 3 rows"),
    ],
)
def test_uctb_damaged_dicts_are_one_sentence(tmp_path: Path, mutate: Any, match: str) -> None:
    data = _uctb()
    mutate(data)
    path = _zip(tmp_path / "x.zip", pickle.dumps(data))
    with pytest.raises(DataError, match=match) as err:
        load(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_uctb_zip_without_one_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.pkl", pickle.dumps(_uctb()))
        zf.writestr("b.pkl", pickle.dumps(_uctb()))
    with pytest.raises(DataError, match=r"expected a zip holding one \.pkl"):
        load(path, format="uctb")


def test_describe_shows_the_uctb_graph_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _zip(tmp_path / "Bike_NYC.zip", pickle.dumps(_uctb()))
    assert main(["data", "describe", str(path)]) == 0
    assert "data_options.graph=distance" in capsys.readouterr().out
    assert main(["data", "describe", str(path), "--set", "graph=distance"]) == 0
    assert "graph         3 nodes, 1 edges" in capsys.readouterr().out
