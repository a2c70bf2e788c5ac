"""Crafted checkpoints are one sentence: never a crash, an allocation bigger than the file, or
a traceback from the code that uses them later (evaluate, forecast, export, resume)."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from checkpoint_cases import valid_checkpoint

from linearcast.cli import main
from linearcast.engine.checkpoint import BEST, atomic_save, load_checkpoint
from linearcast.errors import ConfigError

FIXTURE_V1 = Path(__file__).parent.parent / "fixtures" / "run_v1"

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=_EXAMPLES <= 40,
)


def torch_zip(data_pkl: bytes, members: dict[str, bytes] | None = None) -> bytes:
    """A ``torch.save``-shaped archive around a hand-written ``data.pkl``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", b"little")
        zf.writestr("archive/version", b"3\n")
        for name, raw in (members or {}).items():
            zf.writestr(f"archive/data/{name}", raw)
    return buf.getvalue()


def _dtype_setstate_payload() -> bytes:
    """The audit's crasher: ``np.dtype('u4', False, True).__setstate__((3, '<', None, -1, -1,
    0))`` inside a dict that looks like a version-1 checkpoint."""
    return (
        b"\x80\x02}q\x00(X\x06\x00\x00\x00formatq\x01X\x15\x00\x00\x00linearcast-checkpoint"
        b"q\x02X\x07\x00\x00\x00versionq\x03K\x01X\x05\x00\x00\x00modelq\x04}q\x05X\x03\x00\x00"
        b"\x00rngq\x06cnumpy\ndtype\nq\x07X\x02\x00\x00\x00u4q\x08\x89\x88\x87q\tRq\n(K\x03X"
        b"\x01\x00\x00\x00<q\x0bNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tq\x0cbu."
    )


def _huge_array_payload() -> bytes:
    """``numpy.ndarray((65536, 65536))`` (16 GiB) and a reconstructed array claiming as much."""
    return (
        b"\x80\x02}q\x00(X\x05\x00\x00\x00modelq\x01cnumpy\nndarray\nq\x02J\x00\x00\x01\x00J"
        b"\x00\x00\x01\x00\x86q\x03\x85q\x04Rq\x05u."
    )


def _reconstruct_huge() -> bytes:
    small = pickle.dumps(np.zeros(2, np.float32), protocol=2)
    # the shape (2,) is stored as BININT1 2 inside TUPLE1: declare 2**30 elements instead
    return small.replace(b"K\x01K\x02\x85", b"K\x01J\x00\x00\x00@\x85", 1)


CRASHERS = {
    "dtype_setstate": _dtype_setstate_payload(),
    "ndarray_alloc": _huge_array_payload(),
    "reconstruct_huge": _reconstruct_huge(),
}


def test_crafted_numpy_state_is_a_sentence_in_a_process_that_survives(tmp_path: Path) -> None:
    # in a child, so that a regression (a segfault in NumPy) fails this test, not the session
    paths = []
    for name, pkl in CRASHERS.items():
        path = tmp_path / f"{name}.ckpt"
        path.write_bytes(torch_zip(pkl))
        paths.append(str(path))
    code = (
        "import sys, resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from linearcast.engine.checkpoint import load_checkpoint\n"
        "from linearcast.errors import ConfigError\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        load_checkpoint(p)\n"
        "    except ConfigError as e:\n"
        "        print(str(e).replace('\\n', ' '))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(paths)
    for path, line in zip(paths, lines):
        assert line.startswith(f"{path}: refused to load"), line
    assert "NumPy dtype state" in lines[0]
    assert "refused to load" in lines[1] and "ndarray" in lines[1]
    assert "bytes (it needs" in lines[2] or "elements" in lines[2]


def test_the_same_payloads_in_an_adjacency_pickle_are_a_data_error(tmp_path: Path) -> None:
    from linearcast.data.safe_pickle import load_pickle_file
    from linearcast.errors import DataError

    for name, pkl in CRASHERS.items():
        path = tmp_path / f"{name}_adj_mx.pkl"
        path.write_bytes(pkl)
        with pytest.raises(DataError, match=r"refused to unpickle.*nothing from the file was run"):
            load_pickle_file(path, "a pickled adjacency")


def _storage_pid(key: str, numel: int, kind: bytes = b"FloatStorage") -> bytes:
    return (
        b"(X\x07\x00\x00\x00storagectorch\n"
        + kind
        + b"\nX"
        + len(key).to_bytes(4, "little")
        + key.encode()
        + b"X\x03\x00\x00\x00cpuJ"
        + numel.to_bytes(4, "little", signed=True)
        + b"tQ"
    )


def _tensor_pkl(size: tuple[int, ...], stride: tuple[int, ...], offset: int, numel: int) -> bytes:
    def tup(values: tuple[int, ...]) -> bytes:
        return b"(" + b"".join(b"J" + v.to_bytes(4, "little", signed=True) for v in values) + b"t"

    return (
        b"\x80\x02}X\x01\x00\x00\x00tctorch._utils\n_rebuild_tensor_v2\n("
        + _storage_pid("0", numel)
        + b"J"
        + offset.to_bytes(4, "little", signed=True)
        + tup(size)
        + tup(stride)
        + b"\x89ccollections\nOrderedDict\n)RtRs."
    )


@pytest.mark.parametrize(
    ("size", "stride", "offset", "numel", "raw", "expected"),
    [
        ((4, 4), (4, 1), 0, 4, 16, "reaching element 15 of a storage of 4"),
        ((2,), (1,), 3, 4, 16, "reaching element 4 of a storage of 4"),
        ((2,), (1,), -1, 4, 16, "storage offset"),
        ((-2,), (1,), 0, 4, 16, "non-negative integers"),
        ((2,), (1,), 0, 1 << 30, 16, "in a member of 16"),
        ((2,), (1,), 0, 4, 12, "in a member of 12"),
    ],
)
def test_tensors_must_fit_inside_the_bytes_the_file_holds(
    tmp_path: Path, size: Any, stride: Any, offset: int, numel: int, raw: int, expected: str
) -> None:
    path = tmp_path / "t.ckpt"
    path.write_bytes(torch_zip(_tensor_pkl(size, stride, offset, numel), {"0": b"\0" * raw}))
    with pytest.raises(ConfigError, match="refused to load") as err:
        load_checkpoint(path)
    assert expected in str(err.value)


def test_the_hand_written_tensor_pickle_is_what_torch_reads() -> None:
    # the crafted files above differ from an honest one only in the values they declare
    pkl = _tensor_pkl((2, 2), (2, 1), 0, 4)
    raw = np.arange(4, dtype=np.float32).tobytes()
    buf = io.BytesIO(torch_zip(pkl, {"0": raw}))
    assert torch.equal(torch.load(buf, weights_only=True)["t"], torch.arange(4.0).view(2, 2))


def _sparse() -> torch.Tensor:
    return torch.eye(3).to_sparse()


SCHEMA_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no scaler", {"scaler": None}, "'scaler' is NoneType None (expected a dict)"),
    ("meta a list", {"meta": [1, 2]}, "'meta' is list [1, 2] (expected a dict)"),
    ("string weights", {"model": {"w": "abc"}}, "weight 'w' is str 'abc'"),
    ("sparse weights", {"model": {"w": _sparse()}}, "refused to load"),
    ("nan weights", {"model": {"w": torch.tensor([1.0, float("nan")])}}, "NaN or infinite"),
    ("inf weights", {"model": {"w": torch.tensor([float("inf")])}}, "first in 'w'"),
    ("scaler std 0", {"scaler": {"mode": "global", "mean": 0.0, "std": 0.0}}, "positive"),
    ("scaler nan", {"scaler": {"mode": "global", "mean": float("nan"), "std": 1.0}}, "finite"),
    ("epoch -1", {"epoch": -1}, "'epoch' is -1 (expected 0 to"),
    ("history a dict", {"history": {"a": 1}}, "'history' is dict"),
    ("rng torch short", {"rng": {"torch": torch.zeros(3, dtype=torch.uint8)}}, "rng.python"),
    ("optimizer list", {"optimizer": [1]}, "'optimizer' is list"),
    ("config a string", {"config": "x"}, "'config' is str 'x' (expected a dict)"),
    ("graph wrong shape", {"graph": torch.ones(5, 6)}, "'graph' has shape [5, 6] (expected [6, 6]"),
    ("graph float64", {"graph": torch.ones(6, 6, dtype=torch.float64)}, "expected torch.float32"),
    ("graph nan", {"graph": torch.full((6, 6), float("nan"))}, "'graph' holds NaN or infinite"),
    ("graph a list", {"graph": [[1.0]]}, "'graph' is list"),
]
META_CASES: list[tuple[str, Any, str]] = [
    ("in_steps", 10**12, "meta.in_steps is 1000000000000 (expected 1 to 1000000)"),
    ("in_steps", -12, "meta.in_steps is -12 (expected 1 to"),
    ("num_nodes", 0, "meta.num_nodes is 0"),
    ("num_nodes", 2.5, "meta.num_nodes is float 2.5 (expected an integer)"),
    ("input_channels", True, "meta.input_channels is bool True (expected an integer)"),
    ("model", None, "meta.model is NoneType None (expected a model name)"),
    ("steps_per_day", -1, "meta.steps_per_day is -1"),
    ("dataset", ["x"], "meta.dataset is list"),
]


@pytest.mark.parametrize(
    ("label", "changes", "expected"), SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES]
)
def test_contents_the_engine_cannot_use_are_refused_where_loaded(
    tmp_path: Path, label: str, changes: dict[str, Any], expected: str
) -> None:
    path = atomic_save(valid_checkpoint(**changes), tmp_path / "best.ckpt")
    with pytest.raises(ConfigError) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text
    assert expected in text


@pytest.mark.parametrize(("key", "value", "expected"), META_CASES)
def test_meta_values_are_checked_against_their_range(
    tmp_path: Path, key: str, value: Any, expected: str
) -> None:
    ckpt = valid_checkpoint()
    ckpt["meta"] = {**ckpt["meta"], key: value}
    path = atomic_save(ckpt, tmp_path / "best.ckpt")
    with pytest.raises(ConfigError, match="damaged or altered checkpoint") as err:
        load_checkpoint(path)
    assert expected in str(err.value)


def test_the_valid_checkpoint_and_the_version_1_fixture_load() -> None:
    # the checks accept what training writes today and wrote before (the reference for both
    # is torch's own loader)
    ckpt = load_checkpoint(FIXTURE_V1 / BEST)
    ref = torch.load(FIXTURE_V1 / BEST, weights_only=False)
    assert ckpt["meta"] == ref["meta"] and ckpt["scaler"] == ref["scaler"]
    for key, value in ref["model"].items():
        assert torch.equal(ckpt["model"][key], value)
    np.testing.assert_array_equal(ckpt["rng"]["numpy"][1], ref["rng"]["numpy"][1])
    assert ckpt["rng"]["numpy"][1].dtype == np.uint32


@pytest.mark.parametrize("command", ["evaluate", "predict", "export", "resume"])
def test_an_altered_checkpoint_is_one_line_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_V1, run)
    ckpt = load_checkpoint(run / BEST)
    ckpt["meta"] = dict(ckpt["meta"], in_steps=10**12)
    atomic_save(ckpt, run / BEST)
    atomic_save(ckpt, run / "last.ckpt")
    argv = {
        "evaluate": ["evaluate", str(run), "--accelerator", "cpu"],
        "predict": ["predict", str(run), "--out", str(tmp_path / "p.npy")],
        "export": ["export", str(run), "--onnx", str(tmp_path / "m.onnx")],
        "resume": ["train", "--resume", str(run), "--quiet", "--accelerator", "cpu"],
    }[command]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.count("\n") == 0
    assert "meta.in_steps is 1000000000000" in err


# ----------------------------------------------------------------------------- fuzzing
def _valid_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(valid_checkpoint(), buf)
    return buf.getvalue()


VALID = _valid_bytes()
with zipfile.ZipFile(io.BytesIO(VALID)) as _zf:
    VALID_PKL = _zf.read(next(n for n in _zf.namelist() if n.endswith("data.pkl")))
    VALID_MEMBERS = {n.rsplit("/", 1)[1]: _zf.read(n) for n in _zf.namelist() if "/data/" in n}


def _load_or_sentence(path: Path) -> None:
    try:
        load_checkpoint(path)
    except ConfigError as err:
        assert "\n" not in str(err) and str(err).startswith(str(path))


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


@pytest.mark.fuzz
@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, 4000),
)
def test_fuzzed_pickles_inside_a_valid_archive_are_a_sentence(
    tmp_path: Path, edits: list[tuple[int, int]], cut: int | None
) -> None:
    # the pickle is damaged and the archive re-written around it (so the CRC passes and the
    # damage reaches the unpickler, not just the zip reader)
    path = tmp_path / "f.ckpt"
    path.write_bytes(torch_zip(_mutate(VALID_PKL, edits, cut), VALID_MEMBERS))
    _load_or_sentence(path)


@pytest.mark.fuzz
@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, len(VALID)),
)
def test_fuzzed_checkpoint_files_are_a_sentence(
    tmp_path: Path, edits: list[tuple[int, int]], cut: int | None
) -> None:
    path = tmp_path / "f.ckpt"
    path.write_bytes(_mutate(VALID, edits, cut))
    _load_or_sentence(path)
