"""Open a PEMS07-sized dataset memory-mapped and time the first batch.

Run ``python benchmarks/data_open.py``; it writes ``benchmarks/results/data_open.json`` (machine
header + timings). A 28224 x 883 x 3 float32 array (~300 MB, PEMS07's shape) is written to a
temporary folder as ``.npy`` and as a BasicTS ``data.dat`` + ``desc.json``; for each, the script
times: opening (memory map + NaN/inf scan), ``get_protocol("pems").prepare`` (split, scaler fit
on the training rows, time features) and the first shuffled batch of 16 from a DataLoader. It
also reports the peak of Python-side allocations (``tracemalloc``, which numpy reports to),
showing that no ``[S, T, N]`` array of windows is ever built. The files were just written, so
the timings are with a warm page cache (and after a warm-up on a tiny file, so one-time imports
are not counted); the goal is < 1 s from opening to the first batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (28224, 883, 3)


def _write(folder: Path, shape: tuple[int, ...]) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    npy = folder / "PEMS07.npy"
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=shape)
    step = 2048
    for a in range(0, shape[0], step):
        block = rng.uniform(0, 500, size=(min(step, shape[0] - a), *shape[1:])).astype(np.float32)
        block[rng.random(block.shape) < 0.02] = 0.0
        arr[a : a + step] = block
    arr.flush()
    bts = folder / "PEMS07"
    bts.mkdir()
    dat = np.memmap(bts / "data.dat", dtype=np.float32, mode="w+", shape=shape)
    for a in range(0, shape[0], step):
        dat[a : a + step] = arr[a : a + step]
    dat.flush()
    del arr, dat
    desc = {
        "name": "PEMS07",
        "shape": list(shape),
        "num_nodes": shape[1],
        "feature_description": ["traffic flow", "occupancy", "speed"],
        "frequency (minutes)": 5,
        "regular_settings": {"NULL_VAL": 0.0, "TRAIN_VAL_TEST_RATIO": [0.6, 0.2, 0.2]},
    }
    (bts / "desc.json").write_text(json.dumps(desc))
    return npy, bts


def _measure(kind: str, path: Path) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from linearcast.data import get_protocol, read_array, read_basicts

    tracemalloc.start()
    t0 = time.perf_counter()
    ds = read_array(path, steps_per_day=288) if kind == "npy" else read_basicts(path)
    t1 = time.perf_counter()
    prep = get_protocol("pems").prepare(ds)
    t2 = time.perf_counter()
    loader = DataLoader(prep.train, batch_size=16, shuffle=True)
    x, y = next(iter(loader))
    t3 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "format": kind,
        "memmap": isinstance(ds.values, np.memmap),
        "shape": list(ds.shape),
        "counts": prep.counts,
        "batch_x": list(x.shape),
        "batch_y": list(y.shape),
        "open_s": round(t1 - t0, 4),
        "prepare_s": round(t2 - t1, 4),
        "first_batch_s": round(t3 - t2, 4),
        "total_s": round(t3 - t0, 4),
        "python_alloc_peak_mb": round(peak / 2**20, 1),
        "array_mb": round(float(np.prod(SHAPE)) * 4 / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "data_open.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import machine_header

    with tempfile.TemporaryDirectory(prefix="linearcast-data-open-") as tmp:
        # warm-up on a tiny file: one-time imports and code paths are not what we measure
        small = Path(tmp) / "small"
        small.mkdir()
        _measure("npy", _write(small, (600, 8, 3))[0])
        npy, bts = _write(Path(tmp), SHAPE)
        rows = [_measure("npy", npy), _measure("basicts", bts)]
    result = {
        "machine": machine_header(),
        "benchmark": "data_open",
        "goal": "PEMS07-sized array opens and yields its first batch in under a second",
        "page_cache": "warm (files written just before)",
        "results": rows,
    }
    from linearcast import jsonio

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(jsonio.dumps(result, indent=2) + "\n")
    for r in rows:
        print(
            f"{r['format']:>8}: open {r['open_s']:.3f}s  prepare {r['prepare_s']:.3f}s  "
            f"first batch {r['first_batch_s']:.3f}s  total {r['total_s']:.3f}s  "
            f"(python alloc peak {r['python_alloc_peak_mb']} MB of a {r['array_mb']} MB array)"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
