"""A PEMS07-sized file stays memory-mapped; windows never materialise [S, T, N]."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from linearcast.data import get_protocol, load

PEMS07 = (28224, 883, 3)


def test_pems07_sized_basicts_is_memory_mapped(tmp_path: Path) -> None:
    folder = tmp_path / "PEMS07"
    folder.mkdir()
    # a sparse ~300 MB file: only the rows written here take disk space
    mm = np.memmap(folder / "data.dat", dtype=np.float32, mode="w+", shape=PEMS07)
    rng = np.random.default_rng(0)
    mm[:600] = rng.uniform(1, 500, size=(600, *PEMS07[1:]))
    mm.flush()
    del mm
    desc = {
        "name": "PEMS07",
        "shape": list(PEMS07),
        "feature_description": ["traffic flow", "occupancy", "speed"],
        "frequency (minutes)": 5,
        "regular_settings": {"NULL_VAL": 0.0},
    }
    (folder / "desc.json").write_text(json.dumps(desc))
    array_bytes = int(np.prod(PEMS07)) * 4

    tracemalloc.start()
    ds = load(folder)
    # the unwritten rows read as zeros: most targets are null, asked about unless allowed
    prep = get_protocol("pems", allow_mostly_missing=True).prepare(ds)
    x, y = next(iter(DataLoader(prep.train, batch_size=16, shuffle=True)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert isinstance(ds.values, np.memmap)
    assert prep.train.values is ds.values and isinstance(prep.train.values, np.memmap)
    assert prep.counts == {"train": 16913, "val": 5621, "test": 5621}
    assert x.shape == (16, 12, 883, 3) and y.shape == (16, 12, 883, 1)
    for part in (prep.train, prep.val, prep.test):
        arrays = {k: v for k, v in vars(part).items() if isinstance(v, np.ndarray)}
        # only the source array, the [S] start vector and [T] time-feature vectors
        assert all(v is ds.values or v.ndim == 1 for v in arrays.values())
    # reading, fitting the scaler and one batch allocate a small fraction of the array
    assert peak < array_bytes / 5
    # the scaler saw only the 600 written training rows (zeros are null readings)
    assert 240 < float(prep.scaler.mean) < 260
