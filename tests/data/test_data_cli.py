"""``linearcast data list|describe|convert|download`` and the download helper."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from linearcast.cli import main
from linearcast.data import CatalogEntry, download, read_basicts, synthetic_traffic, write_basicts
from linearcast.errors import DataError


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "PEMS08" in out and "17856 x 170 x 3" in out and "METR-LA" in out
    assert "pems-staeformer" in out and "synthetic" in out
    assert main(["data", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {d["name"]: d for d in data["datasets"]}
    assert names["ETTh1"]["shape"] == [17420, 7, 1] and names["ETTh1"]["protocol"] == "ett"
    assert {"pems", "metr", "ett", "ltsf"} <= set(data["protocols"])


def test_describe_real_file(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_data / "los_loop" / "los_speed.csv"
    assert main(["data", "describe", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [2016, 207, 1]
    assert info["channels"][0]["zeros"] == 0 and info["channels"][0]["nan"] == 0
    g = info["graph"]
    assert g["nodes"] == 207 and g["symmetric"] is True and g["self_loops"] == 207
    assert main(["data", "describe", str(path)]) == 0
    text = capsys.readouterr().out
    assert "T=2016 N=207 F=1" in text and "graph         207 nodes" in text


def test_describe_synthetic_with_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "describe", "synthetic", "--protocol", "pems", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [4032, 64, 3] and info["freq_minutes"] == 5
    zeros = info["channels"][0]["zeros"]
    assert zeros == int((synthetic_traffic().values[..., 0] == 0).sum())
    t = 4032
    assert info["protocol"]["counts"] == {
        "train": t - 2 * int(t * 0.2) - 23,
        "val": int(t * 0.2) - 23,
        "test": int(t * 0.2) - 23,
    }


def test_describe_missing_file_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "describe", str(tmp_path / "nope.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("linearcast: error: ") and "nope.npz: file not found" in err


def test_convert_round_trip(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a PEMS release (layout written here) -> BasicTS -> read back
    data = np.random.default_rng(0).uniform(0, 400, size=(700, 170, 3))
    np.savez_compressed(tmp_path / "PEMS08.npz", data=data)
    # the real graph beside it, as in the release folder (a symlink: nothing copied)
    (tmp_path / "PEMS08.csv").symlink_to(shared_data / "PEMS_graphs" / "PEMS08.csv")
    out = tmp_path / "datasets" / "PEMS08"
    assert main(["data", "convert", str(tmp_path / "PEMS08.npz"), str(out)]) == 0
    assert "adj_mx.pkl" in capsys.readouterr().out
    desc = json.loads((out / "desc.json").read_text())
    assert desc["shape"] == [700, 170, 5]
    assert desc["feature_description"][-2:] == ["time of day", "day of week"]
    assert desc["regular_settings"]["TRAIN_VAL_TEST_RATIO"] == [0.6, 0.2, 0.2]
    assert desc["frequency (minutes)"] == 5
    raw = np.fromfile(out / "data.dat", dtype=np.float32).reshape(700, 170, 5)
    np.testing.assert_allclose(
        raw[:, :, 3], np.tile((np.arange(700) % 288 / 288)[:, None], (1, 170)), atol=1e-6
    )
    np.testing.assert_allclose(
        raw[:, :, 4], np.tile(((np.arange(700) // 288) % 7 / 7)[:, None], (1, 170)), atol=1e-6
    )
    ds = read_basicts(out)
    assert ds.shape == (700, 170, 3)
    np.testing.assert_allclose(np.asarray(ds.values), data.astype(np.float32))
    assert ds.adjacency is not None and int(ds.adjacency.sum()) == 2 * 274
    np.testing.assert_array_equal(ds.day_of_week(), (np.arange(700) // 288) % 7)
    # refuses to overwrite silently
    assert main(["data", "convert", str(tmp_path / "PEMS08.npz"), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_write_basicts_keeps_timestamps(tmp_path: Path) -> None:
    ds = synthetic_traffic(num_nodes=5, days=2, seed=1, channels=1)
    write_basicts(ds, tmp_path / "syn")
    back = read_basicts(tmp_path / "syn")
    np.testing.assert_array_equal(np.asarray(back.values), ds.values)
    np.testing.assert_allclose(back.time_of_day(), ds.time_of_day(), atol=1e-6)
    np.testing.assert_array_equal(back.day_of_week(), ds.day_of_week())
    np.testing.assert_array_equal(back.adjacency, ds.adjacency)


# ----------------------------------------------------------------------------- download
@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving a folder the test fills."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _pedalme(n_t: int, n: int) -> str:
    x = np.random.default_rng(0).normal(size=(n_t, n)).round(4).tolist()
    edges = [[i, j] for i in range(n) for j in range(n)]
    return json.dumps({"edges": edges, "weights": [1.0] * len(edges), "X": x})


def test_download_from_local_server(
    http_root: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = http_root
    (root / "pedalme_london.json").write_text(_pedalme(35, 15))  # the catalogue's shape
    cache = tmp_path / "cache"
    rc = main(
        [
            "data",
            "download",
            "pedalme_london",
            "--base-url",
            base,
            "--cache-dir",
            str(cache),
            "--no-progress",
        ]
    )
    assert rc == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == cache / "pedalme_london" / "pedalme_london.json"
    assert path.read_text() == (root / "pedalme_london.json").read_text()
    assert not list(path.parent.glob("*.part"))  # temp file renamed away


def test_download_validates_shape_and_cleans_up(
    http_root: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = http_root
    (root / "toy.json").write_text(_pedalme(10, 3))
    catalog = {
        "toy": CatalogEntry(
            name="toy",
            format="pgt",
            protocol="ltsf",
            shape=(11, 3, 1),
            files={"toy.json": f"{base}/toy.json"},
            main_file="toy.json",
        )
    }
    with pytest.raises(
        DataError,
        match=r"toy\.json: expected toy of shape \[11, 3, 1\] \[T, N, F\], found \[10, 3, 1\]",
    ):
        download("toy", cache=tmp_path / "c", catalog=catalog, progress=True)
    assert not (tmp_path / "c" / "toy" / "toy.json").exists()
    # right shape: kept, and a second call reuses it (no server needed)
    (root / "toy.json").write_text(_pedalme(11, 3))
    p = download("toy", cache=tmp_path / "c", catalog=catalog, progress=False)
    assert p.exists()
    (root / "toy.json").unlink()
    assert download("toy", cache=tmp_path / "c", catalog=catalog, progress=False) == p


def test_download_errors(
    http_root: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = http_root
    monkeypatch.setenv("LINEARCAST_CACHE", str(tmp_path / "env-cache"))
    with pytest.raises(DataError, match=r"/chickenpox\.json: download failed with HTTP 404"):
        download("chickenpox", base_url=base, progress=False)
    assert not list((tmp_path / "env-cache" / "chickenpox").glob("*"))
    with pytest.raises(
        DataError, match=r"METR-LA: no direct public download; get \['adj_mx\.pkl', 'metr-la\.h5'\]"
    ):
        download("METR-LA", progress=False)
    with pytest.raises(DataError, match="unknown dataset 'PEMS09'"):
        download("PEMS09")
