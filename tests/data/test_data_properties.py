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
import tempfile
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
# search: LINEARCAST_HYPOTHESIS_EXAMPLES=2000 pytest tests/data/test_data_properties.py
_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "40"))
FAST = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=_EXAMPLES <= 40,
)
SUFFIXES = [".csv", ".txt", ".npy", ".npz", ".json", ".h5"]


@contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _load_only_data_errors(path: Path) -> None:
    try:
        load(path)
    except DataError:
        pass


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
    return out


VALID = _valid_files()


@FAST
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(min_size=0, max_size=300))
def test_random_bytes_in_any_format(suffix: str, data: bytes) -> None:
    with _folder() as d:
        path = d / f"x{suffix}"
        path.write_bytes(data)
        _load_only_data_errors(path)


@FAST
@given(suffix=st.sampled_from(sorted(VALID)), cut=st.floats(0.0, 1.0), flip=st.integers(0, 255))
def test_truncated_or_damaged_valid_files(suffix: str, cut: float, flip: int) -> None:
    data = bytearray(VALID[suffix][: int(len(VALID[suffix]) * cut)])
    if data and flip:
        data[flip % len(data)] ^= flip  # one damaged byte as well
    with _folder() as d:
        path = d / f"x{suffix}"
        path.write_bytes(bytes(data))
        _load_only_data_errors(path)


_DTYPES = st.sampled_from(
    ["float32", "float64", "float16", "int8", "uint16", "int64", "bool", "complex64", "U3", "M8[s]"]
)


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


@FAST
@given(body=_CSV_TEXT, header=st.sampled_from(["", "date,a,b\n", "a,b,c\n", "from,to,cost\n"]))
def test_random_csv_text(body: str, header: str) -> None:
    with _folder() as d:
        path = d / "x.csv"
        path.write_text(header + body)
        _load_only_data_errors(path)


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
