"""An HDF5 file that is not a pandas frame (``tables.create_array``, ``h5py``) is read when it
holds one numeric 2-D/3-D array, and is otherwise a sentence listing what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linearcast.data import load
from linearcast.errors import DataError

tables = pytest.importorskip("tables")

X = np.arange(120, dtype=np.float64).reshape(40, 3) + 0.5


def _sentence(path: Path, **options: Any) -> str:
    with pytest.raises(DataError) as err:
        load(path, freq_minutes=5, **options)
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text
    assert "found keys []" not in text
    return text


def test_the_one_array_of_a_plain_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with tables.open_file(path, "w") as f:
        f.create_array("/", "data", X)
    ds = load(path, freq_minutes=5)
    assert ds.shape == (40, 3, 1) and ds.timestamps is None and ds.freq_minutes == 5
    np.testing.assert_array_equal(np.asarray(ds.values)[:, :, 0], X.astype(np.float32))
    assert ds.meta["key"] == "/data"


def test_a_3d_array_keeps_its_channels(tmp_path: Path) -> None:
    path = tmp_path / "cube.h5"
    cube = np.arange(40 * 3 * 2, dtype=np.float32).reshape(40, 3, 2)
    with tables.open_file(path, "w") as f:
        f.create_carray("/", "flows", obj=cube)
    np.testing.assert_array_equal(np.asarray(load(path, freq_minutes=5).values), cube)


def test_a_dataset_without_pytables_attributes_reads(tmp_path: Path) -> None:
    # h5py writes bare datasets: no CLASS/TITLE/VERSION attributes
    path = tmp_path / "h5py.h5"
    with tables.open_file(path, "w") as f:
        node = f.create_array("/", "speed", X.astype(np.int32))
        for name in list(node.attrs._v_attrnames):
            node.attrs.__delattr__(name)
    ds = load(path, freq_minutes=5)
    np.testing.assert_array_equal(np.asarray(ds.values)[:, :, 0], X.astype(np.int32))


def test_several_arrays_are_listed_with_the_option_that_chooses(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    with tables.open_file(path, "w") as f:
        f.create_array("/", "a", X)
        group = f.create_group("/", "g")
        f.create_array(group, "b", X.astype(np.float32)[:10])
    text = _sentence(path)
    assert "not a pandas HDFStore frame" in text
    assert "array /a [40, 3] float64, array /g/b [10, 3] float32" in text
    assert "--set data_options.key=NAME" in text
    ds = load(path, freq_minutes=5, key="g/b")
    assert ds.shape == (10, 3, 1) and ds.meta["key"] == "/g/b"
    assert load(path, freq_minutes=5, key="/a").shape == (40, 3, 1)


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (X + 1j, "array /data [40, 3] complex128"),
        (X[:, 0], "array /data [40] float64"),
        (np.array([b"ab", b"cd"]), "array /data [2] text (S2)"),
        (X > 1, "array /data [40, 3] bool"),
    ],
    ids=["complex", "1-d", "text", "bool"],
)
def test_an_unreadable_array_is_named_with_its_kind_and_shape(
    tmp_path: Path, value: np.ndarray, found: str
) -> None:
    path = tmp_path / "odd.h5"
    with tables.open_file(path, "w") as f:
        f.create_array("/", "data", value)
    assert f"found {found}." in _sentence(path)
    assert f"under key 'data', found {found};" in _sentence(path, key="data")


def test_a_missing_key_lists_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with tables.open_file(path, "w") as f:
        f.create_array("/", "data", X)
        f.create_table("/", "log", {"a": tables.Float64Col()})
    text = _sentence(path, key="speed")
    assert "expected key 'speed', found array /data [40, 3] float64, table /log (0 rows)" in text


def test_links_are_listed_and_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target.h5"
    with tables.open_file(target, "w") as f:
        f.create_array("/", "data", X)
    path = tmp_path / "links.h5"
    with tables.open_file(path, "w") as f:
        f.create_external_link("/", "ext", f"{target}:/data")
        f.create_soft_link("/", "soft", "/nowhere")
    text = _sentence(path)
    assert "link /ext -> " in text and "link /soft -> '/nowhere' (not followed)" in text


def test_an_empty_file_says_it_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    with tables.open_file(path, "w") as f:
        f.create_group("/", "g")
    assert "found no datasets at all" in _sentence(path)


def test_a_declared_size_the_file_does_not_hold_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.h5"
    with tables.open_file(path, "w") as f:
        f.create_carray("/", "big", tables.Float64Atom(), shape=(10**9, 1000), chunkshape=(8, 8))
    text = _sentence(path)
    assert "array /big [1000000000, 1000] float64" in text and "7.3 TiB" in text
