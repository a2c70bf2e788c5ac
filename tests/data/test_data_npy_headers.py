"""A damaged ``.npy`` / ``.npz`` is described as what it is: random bytes are "not a .npy" (not
"pickled objects"), a truncated file names the declared and the present sizes, and only a real
object dtype (or a real pickle) is called pickled objects."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linearcast.data import load, read_adjacency
from linearcast.errors import DataError

X = np.arange(60, dtype=np.float32).reshape(20, 3)


def _sentence(path: Path, **options: Any) -> str:
    with pytest.raises(DataError) as err:
        load(path, freq_minutes=5, **options)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text and "allow_pickle" not in text
    return text


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ .npy
def test_random_bytes_are_not_a_npy_and_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "rand.npy"
    path.write_bytes(b"\x13\x37" + os.urandom(4094))
    text = _sentence(path)
    assert "not a .npy array" in text and "starts with b'\\x137" in text
    assert "pickle" not in text


def test_a_truncated_npy_names_the_declared_and_the_present_sizes(tmp_path: Path) -> None:
    path = tmp_path / "trunc.npy"
    data = _npy_bytes(X)
    path.write_bytes(data[: len(data) - 100])
    text = _sentence(path)
    assert "declares float32 [20, 3] (240 bytes) but 140 bytes of data follow it" in text
    assert "pickle" not in text


def test_a_truncated_header_is_a_damaged_header(tmp_path: Path) -> None:
    path = tmp_path / "hdr.npy"
    path.write_bytes(_npy_bytes(X)[:40])
    text = _sentence(path)
    assert "damaged header" in text and "pickle" not in text


def test_only_an_object_dtype_is_called_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[1, {"a": 1}]], dtype=object), allow_pickle=True)
    text = _sentence(path)
    assert "dtype object [1, 2]" in text and "pickled Python objects" in text


def test_a_real_pickle_is_named_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "pick.npy"
    path.write_bytes(pickle.dumps(X, protocol=4))
    text = _sentence(path)
    assert "a Python pickle" in text and "not a .npy array" in text


def test_a_zip_named_npy_is_named_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "zip.npy"
    with open(path, "wb") as fh:
        np.savez(fh, data=X)
    assert "a zip archive (an .npz)" in _sentence(path)


def test_an_adjacency_npy_of_random_bytes_says_so(tmp_path: Path) -> None:
    path = tmp_path / "adj.npy"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(
        DataError,
        match=r"adj\.npy: expected an \[N, N\] adjacency \(\.npy\), "
        r"found a file that is not a \.npy array",
    ) as err:
        read_adjacency(path)
    assert "pickle" not in str(err.value)


@pytest.mark.parametrize(
    "arr",
    [
        X,
        X.astype(">f8"),
        np.asfortranarray(X.astype(np.float64)),
        X.astype(np.float16),
        X.astype(np.int8),
        np.zeros((20, 3), dtype=("f4", (2,))),
        X.reshape(20, 3, 1),
    ],
    ids=["f4", "big-endian", "fortran", "f2", "i1", "subarray", "3d"],
)
def test_sound_files_of_every_layout_still_read(tmp_path: Path, arr: np.ndarray) -> None:
    path = tmp_path / "ok.npy"
    np.save(path, arr)
    ds = load(path, freq_minutes=5)
    assert ds.values.shape[:2] == (20, 3)
    np.testing.assert_array_equal(
        np.asarray(ds.values)[:, :, 0], np.asarray(arr, np.float32).reshape(20, 3, -1)[:, :, 0]
    )


# ------------------------------------------------------------------------------------ .npz
def test_random_bytes_are_not_a_zip_and_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "rand.npz"
    path.write_bytes(b"\x13\x37" + os.urandom(4094))
    text = _sentence(path)
    assert "not a zip archive" in text and "pickle" not in text


def test_a_truncated_archive_is_a_damaged_zip(tmp_path: Path) -> None:
    path = tmp_path / "trunc.npz"
    np.savez(path, data=X)
    path.write_bytes(path.read_bytes()[:200])
    text = _sentence(path)
    assert "a damaged zip archive" in text and "pickle" not in text


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_random_member_is_not_a_npy(tmp_path: Path, compression: int) -> None:
    path = tmp_path / "member.npz"
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("data.npy", b"\x13\x37" + os.urandom(510))
    text = _sentence(path)
    assert "as member 'data.npy' a file that is not a .npy array" in text
    assert "pickle" not in text


def test_an_object_member_is_called_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, data=np.array([[1, {"a": 1}]], dtype=object))
    text = _sentence(path)
    assert "member 'data.npy'" in text and "dtype object [1, 2]" in text
    assert "pickled Python objects" in text


def test_a_member_declaring_more_than_it_holds_names_both(tmp_path: Path) -> None:
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.npy", _npy_bytes(X)[:-40])
    assert "declares float32 [20, 3] (240 bytes) but 200 bytes" in _sentence(path)


def test_only_the_member_read_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "two.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.npy", _npy_bytes(X))
        zf.writestr("junk.npy", os.urandom(64))
    np.testing.assert_array_equal(np.asarray(load(path, freq_minutes=5).values)[:, :, 0], X)
    assert "member 'junk.npy'" in _sentence(path, key="junk")


@pytest.mark.parametrize("compressed", [False, True])
def test_sound_archives_still_read(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / "ok.npz"
    (np.savez_compressed if compressed else np.savez)(path, data=X)
    np.testing.assert_array_equal(np.asarray(load(path, freq_minutes=5).values)[:, :, 0], X)
