"""Native parsers of untrusted files (HDF5 through PyTables, MATLAB through SciPy) in a child.

One flipped byte in an ``.h5`` can make the HDF5 C library crash (SIGSEGV), and fuzzed ``.mat``
files crash ``scipy.io.loadmat``: a damaged file must become a sentence, not a dead process.
:func:`run_isolated` runs one parse in a fresh interpreter
(``python -m linearcast.data.isolate JOB``) under an address-space limit and a timeout, with its
stderr captured (the HDF5 library prints its error stack there). The child writes its arrays
with ``np.save(allow_pickle=False)`` and a JSON of metadata into a temporary folder; nothing
crosses as a pickle. The parent reads them with ``allow_pickle=False`` and the caller validates
shapes and dtypes. A child that dies by a signal, runs out of memory or time, or fails in any
way becomes one :class:`~linearcast.errors.DataError` naming the file.

A worker is ``fn(path: str, **args) -> (meta: dict, arrays: dict[str, np.ndarray])``; it may
raise ``DataError`` (its message reaches the user as it is). :data:`WORKERS` names them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from linearcast.data.readers._files import first_line, human_bytes, limit_given, memory_budget
from linearcast.errors import DataError

#: ``kind -> (module, function, libraries)`` of the workers the child may run: the libraries
#: are imported before the memory limit (the parse, not the imports, is what it bounds).
WORKERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "hdf5": ("linearcast.data.readers.metr", "hdf5_frame_worker", ("tables",)),
    "mat": ("linearcast.data.readers.flows", "mat_worker", ("scipy.io",)),
}
PARSERS = {"hdf5": "HDF5 (PyTables)", "mat": "MATLAB (SciPy loadmat)"}
ADVICE = {
    "hdf5": "the file is damaged or not a pandas HDF5 file; re-export it (DataFrame.to_hdf) "
    "or convert it to .npz",
    "mat": "the file is damaged or not a MATLAB v4/v5 file; re-save it (savemat) or convert "
    "it to .npy",
}
# Address space the child may use beyond what its imports take: room for the parse, at least
# _MIN_ROOM, about _ROOM_PER_BYTE times the file (compressed HDF5 expands), within the budget.
_MIN_ROOM = 1 << 30
_ROOM_PER_BYTE = 64
# Seconds: a sound parse takes about a second plus the time to read the file.
_BASE_TIMEOUT = 60.0
_BYTES_PER_SECOND = 2 << 20
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLOSC_NTHREADS")


def _room(size: int) -> int:
    """Bytes of address space the child may add to its imports for a file of ``size`` bytes."""
    budget = memory_budget()
    return budget if limit_given() else min(budget, max(_MIN_ROOM, _ROOM_PER_BYTE * size))


def _child_command(job: Path) -> list[str]:
    return [sys.executable, "-m", "linearcast.data.isolate", str(job)]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # the child must import this very package, also from a source checkout without install
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    for var in _THREAD_VARS:  # each thread reserves address space; the parse needs one
        env[var] = "1"
    return env


def run_isolated(
    kind: str, path: Path, **args: Any
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run worker ``kind`` on ``path`` in a child process and return its results.

    Args:
        kind: a key of :data:`WORKERS`.
        path: the (regular) file to parse.
        **args: JSON-serialisable keyword arguments of the worker.

    Returns:
        ``(meta, arrays)``: the worker's metadata and its arrays (read without pickle).

    Raises:
        DataError: the worker's own message, or one sentence saying how the child failed.
    """
    size = path.stat().st_size
    room = _room(size)
    timeout = _BASE_TIMEOUT + size / _BYTES_PER_SECOND
    with tempfile.TemporaryDirectory(prefix="linearcast-isolate-") as tmp:
        out = Path(tmp)
        job = out / "job.json"
        spec = {"kind": kind, "path": str(path), "args": args, "out": str(out), "room": room}
        job.write_text(json.dumps(spec))
        try:
            proc = subprocess.run(
                _child_command(job),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=_child_env(),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DataError(
                f"{path}: the {PARSERS[kind]} parser did not finish within {timeout:.0f} s on "
                f"this file ({human_bytes(size)}); {ADVICE[kind]}."
            ) from None
        result = _read_result(out / "result.json")
        if result is None or proc.returncode != 0:
            raise DataError(_failure(kind, path, proc.returncode, proc.stderr, room))
        if "error" in result:
            raise DataError(str(result["error"]))
        if "failed" in result:
            if result.get("memory"):
                raise DataError(_out_of_memory(kind, path, room))
            raise DataError(
                f"{path}: the {PARSERS[kind]} parser failed on this file "
                f"({str(result['failed'])[:200]}); {ADVICE[kind]}."
            )
        arrays = {name: _load_array(out, name, path) for name in result.get("arrays", [])}
        return dict(result.get("meta", {})), arrays


def _read_result(file: Path) -> dict[str, Any] | None:
    try:
        result = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _load_array(out: Path, name: str, path: Path) -> np.ndarray:
    file = out / f"{name}.npy"
    if not (isinstance(name, str) and name.isidentifier() and file.is_file()):
        raise DataError(f"{path}: the isolated parser returned a malformed result ({name!r}).")
    return np.load(file, allow_pickle=False)


def _out_of_memory(kind: str, path: Path, room: int) -> str:
    return (
        f"{path}: the {PARSERS[kind]} parser ran out of the {human_bytes(room)} of memory "
        f"allowed for this file; {ADVICE[kind]}, or if it is sound raise the limit with "
        f"--set data_options.memory_limit_gb={max(2, 2 * room >> 30)}."
    )


def _failure(kind: str, path: Path, code: int, stderr: bytes, room: int) -> str:
    """One sentence for a child that died or exited without a result."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return (
            f"{path}: the {PARSERS[kind]} parser crashed (signal {-code}, {name}) on this file; "
            f"{ADVICE[kind]}."
        )
    text = stderr.decode("utf-8", "replace")
    if "MemoryError" in text:
        return _out_of_memory(kind, path, room)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = f": {first_line(Exception(lines[-1]), 60)}" if lines else ""
    return (
        f"{path}: the {PARSERS[kind]} parser stopped on this file without a result (exit "
        f"status {code}{last}); {ADVICE[kind]}."
    )


# ----------------------------------------------------------------------------- the child
def _vm_size() -> int:
    """Bytes of address space this process has mapped (0 when /proc is absent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_memory(room: int) -> int | None:
    """Cap this process's address space at what it maps now plus ``room``; the cap, or None."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX: the timeout still applies
        return None
    used = _vm_size()
    if not used:
        return None
    limit = used + room
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def _near_limit(limit: int | None) -> bool:
    """Whether the address space came within 64 MiB of the cap: a failure then (a library's
    "cannot load", a failed allocation) is most likely the cap, not the file."""
    if limit is None:
        return False
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            peak = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmPeak:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return peak + (64 << 20) >= limit


def _child(job_file: str) -> int:
    """Run one job: load the worker, cap memory, parse, write arrays and ``result.json``."""
    import importlib

    spec = json.loads(Path(job_file).read_text())
    out = Path(spec["out"])
    module, function, libraries = WORKERS[spec["kind"]]
    worker: Callable[..., tuple[dict[str, Any], dict[str, np.ndarray]]] = getattr(
        importlib.import_module(module), function
    )
    for library in libraries:
        importlib.import_module(library)
    limit = _limit_memory(int(spec["room"]))
    result: dict[str, Any]
    try:
        meta, arrays = worker(spec["path"], **spec["args"])
        for name, arr in arrays.items():
            np.save(out / f"{name}.npy", np.asarray(arr), allow_pickle=False)
        result = {"meta": meta, "arrays": sorted(arrays)}
    except MemoryError:
        result = {"failed": "MemoryError", "memory": True}
    except Exception as err:  # a damaged file fails in many ways; the parent words it
        if _near_limit(limit):
            result = {"failed": "out of memory", "memory": True}
        elif isinstance(err, DataError):
            result = {"error": str(err)}
        else:
            result = {"failed": f"{type(err).__name__}: {first_line(err)}"}
    (out / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
