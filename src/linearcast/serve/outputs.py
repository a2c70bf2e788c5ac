"""Files that using a run writes (forecasts, predictions, evaluation results, ONNX models):
checked before any work is done, and written whole or not at all (through
:mod:`linearcast.atomic`).

A failed write must not leave a truncated file that a later step (or a user) takes for a result,
and a write must not lose what is already there: an existing file is replaced only when the
user says so (``--overwrite``, ``overwrite=True``), and never the data the command reads or the
files a run (or a backtest) wrote into its directory, whatever the user says.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linearcast.atomic import atomic_path, check_destination
from linearcast.errors import ConfigError, LinearcastError

if TYPE_CHECKING:
    from linearcast.engine.config import TrainConfig

__all__ = [
    "RUN_FILES",
    "atomic_output",
    "check_kept",
    "check_output_path",
    "input_files",
    "run_inputs",
]

#: the files training, resuming and calibrating write into a run directory (name pattern ->
#: what the file is): never replaced by an output, not even with ``--overwrite``
RUN_FILES: dict[str, str] = {
    "config.json": "configuration",
    "metrics.json": "measured test metrics",
    "metrics.*.json": "earlier measured metrics",
    "history.csv": "training history",
    "history.*.csv": "earlier training history",
    "*.ckpt": "weights",
    "intervals.npz": "interval calibration",
    "series.json": "series names",
    "curves.png": "training curves",
    "forecast.png": "test-window plot",
    "errors.png": "error plot",
    "events.out.tfevents.*": "TensorBoard log",
}

#: the files of a backtest's folder (:mod:`linearcast.serve.backtest_files`): measured too
_BACKTEST_FILES: dict[str, str] = {
    "backtest.csv": "forecasts",
    "backtest_metrics.csv": "metrics per cutoff",
    "backtest_metrics.json": "metrics",
    "backtest.png": "error plot",
}


def check_output_path(
    path: str | Path,
    suffixes: Sequence[str],
    option: str = "--out",
    *,
    overwrite: bool = True,
    run_dir: str | Path | None = None,
    reads: Mapping[Path, str] | None = None,
    flag: str = "--overwrite",
) -> Path:
    """``path`` if a file with one of ``suffixes`` can be written there.

    Args:
        path: the file to write.
        suffixes: the suffixes allowed (lower case); empty: any.
        option: the option that names the file, for messages.
        overwrite: whether an existing file may be replaced (``False``: refused, naming
            ``--overwrite``).
        run_dir: the run directory the command uses (its own files are never replaced).
        reads: the files the command reads (path -> what it is, as :func:`input_files` gives),
            never replaced.
        flag: the command's option to replace files (``""``: it has none), for messages.

    Raises:
        ConfigError: another suffix, a directory, a folder that does not exist, a file the
            command reads or a run wrote (always), or an existing file without ``overwrite``.
    """
    path = Path(path)
    check_destination(path, what=f"the {option} file", fix=option)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{path}: {option} expected a file ending in {', '.join(suffixes)}; found "
            f"{path.suffix or 'no suffix'!r}."
        )
    check_kept(path, option, run_dir=run_dir, reads=reads, flag=flag)
    if not overwrite:
        check_destination(path, overwrite=False, what=f"the {option} file", fix=option)
    return path


def check_kept(
    path: str | Path,
    option: str = "--out",
    *,
    run_dir: str | Path | None = None,
    reads: Mapping[Path, str] | None = None,
    flag: str = "--overwrite",
    what: str = "",
) -> None:
    """Refuse, whatever ``--overwrite`` says, an output onto a file the command reads or onto a
    file a run (or a backtest) keeps in its directory (:data:`RUN_FILES`, also before the file
    exists: a later forecast would read an ``intervals.npz`` written over by a forecast).

    Args:
        path: the file to write.
        option: the option that names it, for the message.
        run_dir: the run directory the command uses.
        reads: the files the command reads (path -> what it is).
        flag: the command's option to replace files, named as not helping (``""``: none).
        what: what ``path`` is when ``option`` does not name it directly (``"the .json
            description beside --onnx"``).

    Raises:
        ConfigError: one sentence naming the file, what it is and the option to change.
    """
    path = Path(path)
    even = f", not even with {flag}" if flag else ""
    mine = what or f"a file of your own for {option}"
    for read, found in (reads or {}).items():
        if same_file(path, read):
            raise ConfigError(
                f"{path}: expected {mine}, found {found}; it is never overwritten{even}: "
                f"choose another {option} file."
            )
    kept = _kept_name(path, run_dir)
    if kept is not None:
        raise ConfigError(
            f"{path}: expected {mine}, found {path.name}, where {kept}; those files are never "
            f"overwritten{even}: choose another {option} name or folder."
        )


def same_file(path: Path, read: Path) -> bool:
    """Whether writing ``path`` would write over ``read`` (links followed), or into the
    dataset folder ``read`` a file it holds."""
    try:
        if read.is_dir():
            return path.exists() and path.resolve().parent == read.resolve()
        if path.exists() and read.exists():
            return path.samefile(read)
        return path.resolve() == read.resolve()
    except (OSError, RuntimeError):
        return False


def _kept_name(path: Path, run_dir: str | Path | None) -> str | None:
    """What keeps ``path``'s name in its folder (``"the run in runs/x keeps its weights"``), or
    None when the folder is no run or backtest directory, or the name none of their files."""
    folder = path.parent
    try:
        own = run_dir is not None and folder.resolve() == Path(run_dir).resolve()
        is_run = own or (
            (folder / "config.json").is_file()
            and any((folder / n).is_file() for n in ("best.ckpt", "last.ckpt", "metrics.json"))
        )
        is_backtest = (folder / "backtest_metrics.json").is_file()
    except OSError:
        return None
    if is_run:
        for pattern, what in RUN_FILES.items():
            if fnmatchcase(path.name, pattern):
                return f"the run in {folder} keeps its {what}"
    if is_backtest:
        for name, what in _BACKTEST_FILES.items():
            if path.name == name:
                return f"the backtest in {folder} keeps its {what}"
    return None


def input_files(config: TrainConfig | None, data: Any = None) -> dict[Path, str]:
    """The files a command that uses a run reads, as ``{path: what it is}`` for
    :func:`check_kept`: ``data`` when it is a path, the run's own data file and the graph file
    of its data options (objects in memory and the synthetic data are no files)."""
    found: dict[Path, str] = {}

    def add(name: Any, what: str) -> None:
        if not isinstance(name, str | Path) or str(name) in ("", "synthetic", "auto", "none"):
            return
        text = str(name)
        if text.startswith("<"):  # an in-memory object the run describes (e.g. "<DataFrame>")
            return
        names = [text] if Path(text).exists() or not glob.has_magic(text) else glob.glob(text)
        for one in names:
            found.setdefault(Path(one), what)

    add(data, "the data file this command reads")
    if config is not None:
        add(config.data, "the data file the run was trained on")
        add(config.data_options.get("adjacency"), "the graph file the run's data is read with")
    return found


def run_inputs(run_dir: str | Path, data: Any = None) -> dict[Path, str]:
    """:func:`input_files` of the run in ``run_dir`` (its ``config.json`` read; a run that
    cannot be read gives only ``data``: opening it says why, later)."""
    from linearcast.engine.config import TrainConfig

    try:
        config: TrainConfig | None = TrainConfig.load(Path(run_dir) / "config.json")
    except (LinearcastError, OSError, ValueError):
        config = None
    found = input_files(config, data)
    trained_on = _trained_file(Path(run_dir))
    if trained_on is not None and not any(same_file(trained_on, p) for p in found):
        found[trained_on] = "the data file the run was trained on"
    return found


def _trained_file(run_dir: Path) -> Path | None:
    """The run's data file as ``metrics.json`` records it (absolute: ``config.json`` keeps the
    path as typed, relative to wherever training ran); ``None`` when not recorded."""
    import json

    try:
        file = json.loads((run_dir / "metrics.json").read_text())["dataset"]["file"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return Path(file) if isinstance(file, str) and file else None


@contextmanager
def atomic_output(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """Yield a temp path beside ``path`` ending in its suffix (writers such as ``np.savez``
    choose the format from it); on success it replaces ``path``, on any error it is removed
    and ``path`` is left as it was (an ``OSError`` becomes a :class:`ConfigError` sentence)."""
    with atomic_path(path, keep_suffix=True, what=f"the {option} file", fix=option) as tmp:
        yield tmp
