"""``data.csv.gz`` is read as the CSV it holds (as pandas reads it), by every CSV reader."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linearcast.data import load
from linearcast.errors import DataError


def _wide(tmp_path: Path) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=120, freq="h", name="date")
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(50, 5, (120, 3)), index=idx, columns=["a", "b", "c"])


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_a_gzipped_csv_named_csv_gz_reads_as_the_csv(tmp_path: Path, layout: str) -> None:
    frame = _wide(tmp_path)
    if layout == "long":
        frame = frame.reset_index().melt(id_vars="date", var_name="unique_id", value_name="y")
        frame = frame.rename(columns={"date": "ds"})
    plain = tmp_path / "d.csv"
    frame.to_csv(plain, index=layout == "wide")
    packed = tmp_path / "d.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = load(plain), load(packed)
    assert np.array_equal(a.values, b.values) and a.node_names == b.node_names
    assert a.freq_minutes == b.freq_minutes == 60


def test_other_gzipped_files_are_still_told_the_known_suffixes(tmp_path: Path) -> None:
    path = tmp_path / "d.json.gz"
    path.write_bytes(gzip.compress(b"{}"))
    with pytest.raises(DataError, match=r"could not tell the format from suffix '\.gz'"):
        load(path)
