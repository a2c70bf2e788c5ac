"""Hostile and damaged files: native-parser crashes, memory blow-ups, hangs and long echoes all
end as one sentence naming the file (a :class:`DataError`), never a dead or stuck process."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import isolate, load
from linearcast.data.readers import _files
from linearcast.errors import ConfigError, DataError


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body blocks, e.g. opening a FIFO."""

    def _expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _h5(path: Path) -> Path:
    """A small pandas HDF5 frame with fixed contents (the same bytes on every run)."""
    idx = pd.date_range("2020-01-01", periods=50, freq="5min")
    values = np.arange(200, dtype=np.float32).reshape(50, 4)
    pd.DataFrame(values, index=idx, columns=list("abcd")).to_hdf(path, key="df")
    return path


def _one_line(err: pytest.ExceptionInfo[BaseException], path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and len(msg) < 600, msg
    return msg


# ----------------------------------------------------------------------------- native parsers
def test_h5_with_a_flipped_byte_that_crashes_pytables_is_a_sentence(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = _h5(tmp_path / "metr.h5")
    data = bytearray(path.read_bytes())
    data[893] ^= 16  # a B-tree/heap address: PyTables 3.x dies with SIGSEGV reading it
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load(path)
    msg = _one_line(err, path)
    assert "HDF5" in msg and "re-export" in msg
    assert capfd.readouterr().err == ""  # the child's stderr is not echoed


def test_truncated_h5_prints_no_hdf5_trace(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = _h5(tmp_path / "metr.h5")
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError) as err:
        load(path)
    _one_line(err, path)
    assert capfd.readouterr().err == ""


def test_sound_h5_still_reads_through_the_child(tmp_path: Path) -> None:
    path = _h5(tmp_path / "metr.h5")
    ds = load(path)
    assert ds.shape == (50, 4, 1) and ds.freq_minutes == 5
    np.testing.assert_array_equal(ds.values[:, :, 0], np.arange(200).reshape(50, 4))
    assert ds.node_names == list("abcd") and ds.timestamps is not None
    assert ds.timestamps[0] == pd.Timestamp("2020-01-01")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "crashed (signal 11"),
        ("import sys; sys.stderr.write('x' * 100000 + chr(10) * 30); sys.exit(3)", "exit status 3"),
        ("raise MemoryError", "ran out of the"),
    ],
)  # fmt: skip
def test_a_child_that_dies_becomes_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, expected: str
) -> None:
    path = _h5(tmp_path / "metr.h5")
    monkeypatch.setattr(isolate, "_child_command", lambda job: [sys.executable, "-c", code])
    with pytest.raises(DataError) as err:
        load(path)
    msg = _one_line(err, path)
    assert expected in msg
    assert "xxxxxxxxxx" * 10 not in msg


def test_a_child_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _h5(tmp_path / "metr.h5")
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    monkeypatch.setattr(isolate, "_child_command", lambda job: cmd)
    monkeypatch.setattr(isolate, "_BASE_TIMEOUT", 1.0)
    with pytest.raises(DataError, match="did not finish within 1 s"):
        load(path)


def test_the_child_runs_under_a_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metr.h5"
    idx = pd.date_range("2020-01-01", periods=20_000, freq="5min")
    pd.DataFrame(np.ones((20_000, 100), np.float32), index=idx).to_hdf(path, key="df")
    monkeypatch.setattr(isolate, "_room", lambda size: 1 << 20)  # 1 MiB past the imports
    with pytest.raises(DataError) as err:
        load(path)
    msg = _one_line(err, path)
    assert "memory" in msg or "crashed" in msg


def test_damaged_mat_files_are_sentences(tmp_path: Path) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    path = tmp_path / "speed.mat"
    scipy_io.savemat(path, {"x": np.arange(120.0).reshape(30, 4)})
    good = path.read_bytes()
    assert load(path).shape == (30, 4, 1)
    for cut in (0.3, 0.9):
        path.write_bytes(good[: int(len(good) * cut)])
        with pytest.raises(DataError) as err:
            load(path)
        _one_line(err, path)
    crasher = bytearray(good)
    crasher[177] = 224  # the data element's type tag: scipy 1.17's loadmat dies with SIGBUS
    path.write_bytes(bytes(crasher))
    with pytest.raises(DataError) as err:
        load(path)
    assert "MATLAB" in _one_line(err, path)


# ----------------------------------------------------------------------------- hangs
@pytest.mark.parametrize("name", ["data.csv", "x.npz", "metr.h5", "desc.json", "speed.mat"])
def test_a_fifo_named_like_a_data_file_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    os.mkfifo(path)
    with _deadline(10), pytest.raises(DataError) as err:
        load(path)
    assert "FIFO" in _one_line(err, path)


@pytest.mark.parametrize(
    ("data", "graph"),
    [("metr.h5", "adj_mx.pkl"), ("x.npy", "x_adj.csv"), ("los_speed.csv", "los_adj.csv")],
)
def test_a_fifo_named_like_a_graph_beside_the_data_is_refused(
    tmp_path: Path, data: str, graph: str
) -> None:
    path = tmp_path / data
    if data.endswith(".h5"):
        _h5(path)
    elif data.endswith(".npy"):
        np.save(path, np.ones((20, 3), dtype=np.float32))
    else:
        path.write_text("1,2,3\n4,5,6\n7,8,9\n")
    os.mkfifo(tmp_path / graph)
    with _deadline(20), pytest.raises(DataError) as err:
        load(path)
    assert "FIFO" in str(err.value) and graph in str(err.value)


def test_a_csv_linked_to_dev_zero_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.symlink_to("/dev/zero")
    with _deadline(10), pytest.raises(DataError) as err:
        load(path)
    assert "device" in _one_line(err, path)


# ----------------------------------------------------------------------------- memory
def _npz_bomb(path: Path, mib: int) -> None:
    """An ``.npz`` whose member ``data`` is ``mib`` MiB of float32 zeros, deflated (~1000x)."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0, np.float32))
    header["shape"] = (mib << 18,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    chunk = bytes(16 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("data.npy", "w") as fh:
            fh.write(buf.getvalue())
            for _ in range(mib // 16):
                fh.write(chunk)


def test_a_small_npz_declaring_a_huge_array_is_refused_before_decompressing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.npz"
    _npz_bomb(path, 512)
    assert path.stat().st_size < 4 << 20
    with pytest.raises(DataError) as err:
        load(path)
    msg = _one_line(err, path)
    assert "512.0 MiB" in msg and "memory_limit_gb" in msg


def test_a_claim_far_past_its_file_is_called_damaged_before_the_limit_is_named() -> None:
    """A 10 KiB file declaring 7 TiB is over both rules: it is called damaged or hostile (the
    likelier cause), not only told to raise the memory limit."""
    with pytest.raises(DataError) as err:
        _files.check_alloc("x.h5", "reading it", 7 << 40, compressed=10 << 10, stored_as="of file")
    msg = str(err.value)
    assert "claims 7.0 TiB from 10.0 KiB of file" in msg and "damaged or hostile" in msg
    assert msg.endswith("--set data_options.memory_limit_gb=7168.")


def test_npz_past_the_memory_limit_names_the_option(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez_compressed(path, data=np.random.default_rng(0).random((500, 600)))
    with pytest.raises(DataError) as err:
        load(path, memory_limit_gb=0.001)
    msg = _one_line(err, path)
    assert "float64 [500, 600]" in msg and "--set data_options.memory_limit_gb=1" in msg
    assert load(path, memory_limit_gb=1).shape == (500, 600, 1)


def test_npz_header_larger_than_its_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, data=np.ones((30, 4), dtype=np.float32))
    raw = bytearray(path.read_bytes())
    at = raw.index(b"(30, 4)")
    raw[at : at + 7] = b"(90, 4)"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="declares float32 \\[90, 4\\]"):
        load(path)


def test_memory_limit_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones((20, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="memory_limit_gb"):
        load(path, memory_limit_gb="lots")


@pytest.mark.parametrize(
    "doc",
    [
        {"FX": [[0.0] * 20_000] * 2, "edges": [[0, 1]]},
        {"FX": [[0.0] * 20_000] * 2, "edges": []},
        {"nodes": [{"id": i, "y": [1.0, 2.0]} for i in range(20_000)], "links": []},
    ],
)
def test_pgt_json_declaring_a_huge_graph_is_refused(tmp_path: Path, doc: dict[str, object]) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        load(path)
    msg = _one_line(err, path)
    assert "[20000, 20000]" in msg and "memory_limit_gb" in msg


def test_the_budget_follows_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "available_memory", lambda: 8 << 30)
    assert _files.memory_budget() == 4 << 30
    with _files.memory_limit(1):
        assert _files.memory_budget() == 1 << 30
    assert _files.memory_budget() == 4 << 30


# ----------------------------------------------------------------------------- messages
def test_a_huge_cell_is_not_echoed_whole(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    cell = "x" * (1 << 20)
    path.write_text(f"date,a\n2020-01-01,{cell}\n2020-01-02,1\n")
    with pytest.raises(DataError) as err:
        load(path)
    msg = _one_line(err, path)
    assert "xxxx'…" in msg


def test_huge_column_names_are_not_echoed_whole(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("date," + "b" * 100_000 + "\n2020-01-01,x\n2020-01-02,1\n")
    with pytest.raises(DataError) as err:
        load(path)
    _one_line(err, path)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("date,a,b\n2020-01-01 00:00,1,2\n2020-01-01 01:00,3,4\n2020-01-01 02:00,5,6\n", "ltsf"),
        ("0.5,1.5\n2.5,3.5\n4.5,5.5\n", "matrix_csv"),
    ],
)
def test_a_utf8_bom_is_accepted(tmp_path: Path, text: str, fmt: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    ds = load(path)
    assert ds.meta["format"] == fmt
    assert ds.shape == (3, 2, 1)
    if fmt == "ltsf":
        assert ds.node_names == ["a", "b"] and ds.freq_minutes == 60


def test_a_bom_edge_list_is_recognised_as_the_graph(tmp_path: Path) -> None:
    np.savez(tmp_path / "PEMS08.npz", data=np.ones((20, 3, 1), dtype=np.float32))
    (tmp_path / "PEMS08.csv").write_bytes(b"\xef\xbb\xbffrom,to,cost\n0,1,1.5\n1,2,2.0\n")
    ds = load(tmp_path / "PEMS08.npz")
    assert ds.adjacency is not None and ds.adjacency[0, 1] == 1.0


def test_reader_warnings_print_as_one_line_in_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from linearcast.cli import main

    path = tmp_path / "weather.csv"
    rows = ["2020-01-01 00:00,1", "2020-01-01 01:00,2", "2020-01-01 01:00,3", "2020-01-01 02:00,4"]
    path.write_text("date,a\n" + "\n".join(rows) + "\n")
    assert main(["data", "describe", str(path), "--set", "dedupe=first"]) == 0
    err = capsys.readouterr().err
    assert "linearcast: warning: " in err and "1 rows with a repeated timestamp removed" in err
    assert "UserWarning" not in err and ".py:" not in err


def test_a_npy_converted_to_float32_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones((1000, 600), dtype=np.int8))  # 0.6 MB on disk, 2.4 MB as float32
    with pytest.raises(DataError, match="int8 \\[1000, 600, 1\\] as float32"):
        load(path, memory_limit_gb=0.001)
    assert load(path).shape == (1000, 600, 1)
