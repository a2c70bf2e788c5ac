"""A ``.mat`` without one numeric 2-D/3-D array says what each variable is (complex, cell,
struct, text, sparse), so the user sees why it was refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linearcast.data import load
from linearcast.errors import DataError

scipy_io = pytest.importorskip("scipy.io")
sparse = pytest.importorskip("scipy.sparse")

X = np.arange(120, dtype=np.float64).reshape(40, 3) + 0.5


def _sentence(path: Path, **options: Any) -> str:
    with pytest.raises(DataError) as err:
        load(path, freq_minutes=5, **options)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    return text


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (X + 1j, "'data' complex128 [40, 3]"),
        (np.array([[X]], dtype=object), "'data' cell [1, 1, 40, 3]"),
        ({"a": X}, "'data' struct [1, 1]"),
        ("hello", "'data' text"),
        (sparse.csr_matrix(X), "'data' sparse float64 [40, 3]"),
    ],
    ids=["complex", "cell", "struct", "text", "sparse"],
)
def test_each_variable_is_named_with_what_it_is(tmp_path: Path, value: Any, found: str) -> None:
    path = tmp_path / "x.mat"
    scipy_io.savemat(path, {"data": value})
    text = _sentence(path)
    assert f"expected one numeric 2-D or 3-D array, found {found};" in text
    assert "re-save the data as a real, dense numeric matrix" in text
    if "sparse" not in found:  # asked for by name, the variable is described the same way
        assert f"expected variable 'data' to be a numeric array, found {found};" in _sentence(
            path, key="data"
        )


def test_two_numeric_variables_name_the_option_that_chooses(tmp_path: Path) -> None:
    path = tmp_path / "two.mat"
    scipy_io.savemat(path, {"speed": X, "flow": X[:, :2]})
    text = _sentence(path)
    assert "found 'flow' float64 [40, 2], 'speed' float64 [40, 3]" in text
    assert "choose one with --set data_options.key=NAME" in text
    assert load(path, freq_minutes=5, key="speed").shape == (40, 3, 1)


def test_a_missing_variable_lists_the_others(tmp_path: Path) -> None:
    path = tmp_path / "one.mat"
    scipy_io.savemat(path, {"speed": X, "note": "text"})
    text = _sentence(path, key="flow")
    assert "expected variable 'flow', found 'note' text, 'speed' float64 [40, 3]." in text
