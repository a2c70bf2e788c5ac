"""The pure-Python unpickler: honest pickles read exactly as ``pickle.loads`` reads them, and
nothing a pickle declares reaches NumPy or pandas before it is checked."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data.safe_pickle import BadPickleData, RefusedGlobal, restricted_loads

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "40"))
FAST = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=_EXAMPLES <= 40,
)
DTYPES = st.sampled_from(
    ["<f4", ">f4", "<f8", "<f2", "<i8", ">i4", "<i2", "|i1", "|u1", "<u4", "|b1", "<c16", "|S5"]
)


@FAST
@given(
    arr=DTYPES.flatmap(lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0))),
    protocol=st.integers(0, 5),
    fortran=st.booleans(),
)
def test_arrays_read_exactly_as_pickle_reads_them(
    arr: np.ndarray, protocol: int, fortran: bool
) -> None:
    arr = np.asfortranarray(arr) if fortran else arr
    data = pickle.dumps({"a": [arr, arr], "n": 3}, protocol=protocol)
    ours, theirs = restricted_loads(data), pickle.loads(data)
    for got, want in zip(ours["a"], theirs["a"]):
        # NumPy may hand back another byte order (protocol 0); the values must be the same
        assert got.dtype.newbyteorder("=") == want.dtype.newbyteorder("=")
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert ours["a"][0] is ours["a"][1]  # shared references stay shared


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize(
    "value",
    [np.float64(1.5), np.int64(-3), np.dtype("<u4"), pd.offsets.Minute(5), pd.offsets.Hour(1)],
)
def test_scalars_dtypes_and_offsets_read_as_pickle_reads_them(value: object, protocol: int) -> None:
    data = pickle.dumps([value, {1, 2}, (b"x", "y")], protocol=protocol)
    assert restricted_loads(data) == pickle.loads(data)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # the audit's: dtype state that makes NumPy read past its buffers
        (
            b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00u4\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NJ"
            b"\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.",
            "NumPy dtype state",
        ),
        (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R.", "NumPy dtype 'O8'"),
        (b"\x80\x02cnumpy\ndtype\nX\x01\x00\x00\x00O\x89\x88\x87R.", "NumPy dtype 'O'"),
        (b"\x80\x02cnumpy\ndtype\n}\x85R.", "a NumPy dtype from {}"),
        (b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00@\x85\x85R.", "which allocates memory"),
        (b"\x80\x02cpandas._libs.tslibs.offsets\nMinute\nX\x01\x00\x00\x00a\x85R.", "offset"),
    ],
)
def test_values_no_honest_pickle_holds_are_refused(payload: bytes, expected: str) -> None:
    with pytest.raises(BadPickleData) as err:
        restricted_loads(payload)
    assert expected in str(err.value)


def test_an_array_must_hold_the_bytes_its_shape_declares() -> None:
    honest = pickle.dumps(np.zeros((3, 4), np.float32), protocol=2)
    # shape (3, 4) -> (3, 40000): 12 declared elements become 120000 with 48 bytes behind them
    crafted = honest.replace(b"K\x03K\x04\x86", b"K\x03M@\x9c\x86", 1)
    assert crafted != honest
    with pytest.raises(BadPickleData, match=r"in 48 bytes \(it needs 480000\)"):
        restricted_loads(crafted)


def test_names_outside_the_stand_ins_are_refused_by_name() -> None:
    for payload, name in [
        (pickle.dumps(np.load), "numpy.load"),
        (pickle.dumps(pd.DataFrame), f"{pd.DataFrame.__module__}.DataFrame"),
        (b"cos\nsystem\n(S'true'\ntR.", "os.system"),
        (pickle.dumps(np.fromfile), "numpy.fromfile"),
    ]:
        with pytest.raises(RefusedGlobal) as err:
            restricted_loads(payload)
        assert err.value.name == name


@pytest.mark.fuzz
@FAST
@given(
    base=st.sampled_from(
        [
            pickle.dumps([["a", "b"], {"a": 0, "b": 1}, np.eye(2, dtype=np.float32)], 2),
            pickle.dumps(np.arange(6.0).reshape(2, 3), 4),
            pickle.dumps(pd.offsets.Minute(5), 2),
        ]
    ),
    edits=st.lists(st.tuples(st.integers(0, 10**4), st.integers(0, 255)), max_size=5),
    cut=st.none() | st.integers(0, 400),
)
def test_damaged_pickles_raise_only_unpickling_errors(
    base: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    try:
        restricted_loads(bytes(data[:cut] if cut is not None else data))
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError):
        pass  # load_pickle_file turns each of these into one DataError
    except (AttributeError, UnicodeDecodeError, OverflowError, MemoryError):
        pass


def test_a_huge_declared_adjacency_allocates_nothing(tmp_path: Path) -> None:
    # 84 bytes claiming a 32768 x 32768 float32 array: refused before anything is allocated
    # (the child has 1 GiB of address space; the array would need 4 GiB)
    path = tmp_path / "adj_mx.pkl"
    path.write_bytes(
        pickle.dumps(np.zeros(2, np.float32), 2).replace(
            b"K\x01K\x02\x85", b"K\x01M\x00\x80M\x00\x80\x86", 1
        )
    )
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from linearcast.data.safe_pickle import load_pickle_file\n"
        "from linearcast.errors import DataError\n"
        "try:\n"
        "    load_pickle_file(sys.argv[1], 'a pickled adjacency')\n"
        "except DataError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-1000:]
    assert "refused to unpickle: it holds an array of shape (32768, 32768)" in done.stdout
