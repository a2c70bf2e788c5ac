"""Property-based: whatever bytes, shapes or dicts come in, the only exceptions that escape
``linearcast.data.load`` are :class:`DataError`, and configs raise only :class:`ConfigError`.

Hypothesis generates random and truncated files in every format the readers know, random
arrays, random CSV text and random config dicts; a reader bug that lets a numpy/pandas
exception escape shows up here as a failing example (hypothesis prints it).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis is in the dev extra: pip install -e '.[dev]'"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from linearcast.data import load  # noqa: E402
from linearcast.errors import ConfigError, DataError  # noqa: E402

# 40 examples per property in `make test` (fixed seed: the suite stays deterministic); a deeper
# search: LINEARCAST_HYPOTHESIS_EXAMPLES=2000 pytest tests/data/test_data_properties.py (`make
# fuzz`). Formats parsed in a child process (.h5, .mat) cost a process each: 10 by default.
_GIVEN = os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES")
_EXAMPLES = int(_GIVEN or "40")
FAST = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=_GIVEN is None,
)
ISOLATED = settings(FAST, max_examples=int(_GIVEN or "10"))
SUFFIXES = [".csv", ".txt", ".npy", ".npz", ".json", ".pkl", ".zip", ".h5", ".mat"]
# seconds one load may take before the property calls it a hang
_HANG_SECONDS = 120


@contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _expired(signum: int, frame: object) -> None:
    raise TimeoutError(f"load() blocked for more than {_HANG_SECONDS} s")


def _load_only_data_errors(path: Path) -> None:
    """The property: load() returns or raises DataError/ConfigError; it never hangs (nor
    crashes: a crash would take the test process down)."""
    old = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(_HANG_SECONDS)
    try:
        load(path)
    except (DataError, ConfigError):
        pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _valid_files() -> dict[str, bytes]:
    """One small valid file per format, as bytes (truncated by the tests)."""
    out: dict[str, bytes] = {}
    arr = np.arange(60, dtype=np.float32).reshape(20, 3)
    buf = io.BytesIO()
    np.save(buf, arr)
    out[".npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, data=arr[:, :, None])
    out[".npz"] = buf.getvalue()
    dates = pd.date_range("2020-01-01", periods=20, freq="h").astype(str)
    out[".csv"] = pd.DataFrame({"date": dates, "a": arr[:, 0]}).to_csv(index=False).encode()
    out[".txt"] = pd.DataFrame(arr).to_csv(index=False).encode()
    out[".json"] = json.dumps({"FX": arr.tolist(), "edges": [[0, 1], [1, 2]]}).encode()
    buf = io.BytesIO()
    np.savez_compressed(buf, data=arr)
    out[".z.npz"] = buf.getvalue()
    nodes = [{"id": f"n{i}", "y": arr[:, i].tolist()} for i in range(3)]
    links = [{"source": "n0", "target": "n1", "weight": 2.0}]
    out[".nl.json"] = json.dumps({"nodes": nodes, "links": links, "directed": False}).encode()
    long = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 20), "ds": np.tile(dates, 2)})
    out[".long.csv"] = long.assign(y=arr[:, :2].T.ravel()).to_csv(index=False).encode()
    ts = pd.date_range("2020-01-01", periods=20, freq="h")
    parts = {"No": np.arange(1, 21), "year": ts.year, "month": ts.month, "day": ts.day}
    parts |= {"hour": ts.hour, "pm": arr[:, 0], "station": "X"}
    out[".ymd.csv"] = pd.DataFrame(parts).to_csv(index=False).encode()
    stations = [[i, "2020-01-01", 40.0 + i / 100, 116.0, f"s{i}"] for i in range(3)]
    uctb = {
        "TimeRange": ["2020-01-01", "2020-01-01 20:00"],
        "TimeFitness": 60,
        "Node": {"TrafficNode": arr, "StationInfo": stations},
    }
    out[".pkl"] = pickle.dumps(uctb, protocol=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.pkl", out[".pkl"])
    out[".zip"] = buf.getvalue()
    return out


def _isolated_files() -> dict[str, bytes]:
    """One small valid ``.h5`` and ``.mat`` (their native parsers run in a child process)."""
    out: dict[str, bytes] = {}
    with _folder() as d:
        idx = pd.date_range("2020-01-01", periods=20, freq="5min")
        values = np.arange(60, dtype=np.float32).reshape(20, 3)
        pd.DataFrame(values, index=idx, columns=list("abc")).to_hdf(d / "x.h5", key="df")
        out[".h5"] = (d / "x.h5").read_bytes()
        scipy_io = pytest.importorskip("scipy.io")
        scipy_io.savemat(d / "x.mat", {"x": values.astype(np.float64)})
        out[".mat"] = (d / "x.mat").read_bytes()
    return out


VALID = _valid_files()
ISOLATED_VALID = _isolated_files()


@st.composite
def _damage(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with random damage: bit flips, random bytes written over it, a cut, a splice."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        if not out:
            break
        kind = draw(st.sampled_from(["flip", "byte", "cut", "splice"]))
        at = draw(st.integers(0, len(out) - 1))
        if kind == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            out[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del out[at:]
        else:
            out[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(out)


def _write(d: Path, suffix: str, data: bytes) -> Path:
    path = d / f"x.{suffix.rsplit('.', 1)[1]}"  # ".z.npz" (a variant of .npz) -> x.npz
    path.write_bytes(data)
    return path


@pytest.mark.fuzz
@FAST
@given(suffix=st.sampled_from(SUFFIXES[:-2]), data=st.binary(min_size=0, max_size=300))
def test_random_bytes_in_any_format(suffix: str, data: bytes) -> None:
    with _folder() as d:
        path = d / f"x{suffix}"
        path.write_bytes(data)
        _load_only_data_errors(path)


@pytest.mark.fuzz
@FAST
@given(suffix=st.sampled_from(sorted(VALID)), cut=st.floats(0.0, 1.0), flip=st.integers(0, 255))
def test_truncated_or_damaged_valid_files(suffix: str, cut: float, flip: int) -> None:
    data = bytearray(VALID[suffix][: int(len(VALID[suffix]) * cut)])
    if data and flip:
        data[flip % len(data)] ^= flip  # one damaged byte as well
    with _folder() as d:
        _load_only_data_errors(_write(d, suffix, bytes(data)))


@pytest.mark.fuzz
@FAST
@given(st.data())
def test_valid_files_with_random_damage(data: st.DataObject) -> None:
    suffix = data.draw(st.sampled_from(sorted(VALID)))
    damaged = data.draw(_damage(VALID[suffix]))
    with _folder() as d:
        _load_only_data_errors(_write(d, suffix, damaged))


@pytest.mark.fuzz
@ISOLATED
@given(st.data())
def test_isolated_formats_with_random_damage(data: st.DataObject) -> None:
    """.h5 and .mat: one flipped byte can crash PyTables or SciPy; the child takes the crash."""
    suffix = data.draw(st.sampled_from(sorted(ISOLATED_VALID)))
    damaged = data.draw(
        st.one_of(_damage(ISOLATED_VALID[suffix]), st.binary(min_size=1, max_size=300))
    )
    with _folder() as d:
        _load_only_data_errors(_write(d, suffix, damaged))


@pytest.mark.fuzz
@FAST
@given(st.data())
def test_damaged_graph_beside_valid_data(data: st.DataObject) -> None:
    """The graph files the readers find by name (adjacency CSV, PEMS edge list) damaged."""
    arr = np.ones((20, 3, 1), dtype=np.float32)
    layout = data.draw(st.sampled_from(["pems", "adj_csv", "adj_npy"]))
    with _folder() as d:
        if layout == "pems":
            np.savez(d / "PEMS08.npz", data=arr)
            graph, good = d / "PEMS08.csv", b"from,to,cost\n0,1,1.5\n1,2,2.0\n"
            target = d / "PEMS08.npz"
        else:
            np.save(d / "x.npy", arr[:, :, 0])
            target = d / "x.npy"
            if layout == "adj_csv":
                graph, good = d / "x_adj.csv", b"0,1,0\n1,0,1\n0,1,0\n"
            else:
                buf = io.BytesIO()
                np.save(buf, np.eye(3, dtype=np.float32))
                graph, good = d / "x_adj.npy", buf.getvalue()
        graph.write_bytes(data.draw(_damage(good)))
        _load_only_data_errors(target)


_DTYPES = st.sampled_from(
    ["float32", "float64", "float16", "int8", "uint16", "int64", "bool", "complex64", "U3", "M8[s]"]
)


@pytest.mark.fuzz
@FAST
@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=5),
    dtype=_DTYPES,
    kind=st.sampled_from([".npy", ".npz"]),
    special=st.sampled_from([None, np.nan, np.inf]),
)
def test_random_arrays(shape: list[int], dtype: str, kind: str, special: float | None) -> None:
    arr = np.zeros(shape, dtype=dtype)
    if special is not None and arr.size and np.issubdtype(arr.dtype, np.floating):
        arr.flat[0] = special
    with _folder() as d:
        path = d / f"x{kind}"
        if kind == ".npy":
            np.save(path, arr)
        else:
            np.savez(path, data=arr)
        _load_only_data_errors(path)


_CSV_TEXT = st.text(alphabet='0123456789.,-e:\n "date,NaNinfT-', max_size=200)


@pytest.mark.fuzz
@FAST
@given(body=_CSV_TEXT, header=st.sampled_from(["", "date,a,b\n", "a,b,c\n", "from,to,cost\n"]))
def test_random_csv_text(body: str, header: str) -> None:
    with _folder() as d:
        path = d / "x.csv"
        path.write_text(header + body)
        _load_only_data_errors(path)


@pytest.mark.fuzz
@FAST
@given(desc=st.dictionaries(st.sampled_from(["shape", "name", "frequency (minutes)",
                                             "feature_description", "regular_settings"]),
                            st.one_of(st.integers(-3, 50), st.text(max_size=5),
                                      st.lists(st.integers(-1, 6), max_size=4), st.none())),
       size=st.integers(0, 200))  # fmt: skip
def test_random_basicts_folders(desc: dict[str, Any], size: int) -> None:
    with _folder() as d:
        (d / "desc.json").write_text(json.dumps(desc))
        (d / "data.dat").write_bytes(b"\0" * size)
        _load_only_data_errors(d)


# ----------------------------------------------------------------------------- configs
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
              st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip


def _config_keys() -> list[str]:
    import dataclasses

    from linearcast.engine.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig)] + ["preset", "bogus"]


@FAST
@given(values=st.dictionaries(st.sampled_from(_config_keys()), _VALUES, max_size=4))
def test_configs_from_random_dicts_raise_only_config_errors(values: dict[str, Any]) -> None:
    from linearcast.engine.config import TrainConfig

    for build in (lambda: TrainConfig.from_dict(values), lambda: TrainConfig(**values)):
        try:
            build()
        except ConfigError:
            pass
        except TypeError as err:  # only for TrainConfig(**values) with an unknown keyword
            assert "unexpected keyword argument" in str(err)


@FAST
@given(sets=st.lists(st.text(alphabet="abcdelrst_.=[]{}0123456789\"'-x ", max_size=20), max_size=3))
def test_random_set_strings_raise_only_config_errors(sets: list[str]) -> None:
    from linearcast.engine.config import TrainConfig

    try:
        TrainConfig().with_sets(sets)
    except ConfigError:
        pass
