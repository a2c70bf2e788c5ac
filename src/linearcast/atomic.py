"""Atomic output files: a crash, a full disk or a bad path never leaves half a file behind.

Every user-visible output (``metrics.json``, ``history.csv``, ``config.json``, plots, converted
datasets) is written to a temporary file in the destination's folder, flushed and ``fsync``-ed,
then ``os.replace``-d over the destination (atomic on POSIX and Windows); the folder entry is
synced too. Until the rename the previous file is untouched, and on any failure the temporary
file is removed.

Temporary names are ``.<name>.<random>.tmp`` (as :func:`linearcast.engine.checkpoint.atomic_save`
writes them) or ``.<name>.<random>.tmp<suffix>`` when a writer picks the format from the
suffix (matplotlib). :func:`remove_stale_temps` removes those a killed process left behind.

An ``OSError`` becomes one sentence naming the path, what was wrong and what to do
(:func:`os_error_message`), raised as a :class:`~linearcast.errors.LinearcastError` subclass.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from linearcast import jsonio
from linearcast.errors import ConfigError, LinearcastError

__all__ = [
    "TEMP_RE",
    "atomic_path",
    "check_destination",
    "fsync_dir",
    "make_folder",
    "os_error_message",
    "remove_stale_temps",
    "write_bytes",
    "write_json",
    "write_text",
]

# ".<name>.<mkstemp's 8 random characters>.tmp[<suffix>]": only files of our own making match
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT} if hasattr(errno, "EDQUOT") else {errno.ENOSPC}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def os_error_message(
    path: str | Path, err: OSError, *, what: str = "the output", fix: str = ""
) -> str:
    """One sentence saying why ``path`` could not be written and what to do.

    Args:
        path: the destination.
        err: the error the write raised.
        what: what the file is (``"metrics.json"``, ``"the converted data"``).
        fix: the option that picks another destination (``"--out DIR"``), named in the advice.
    """
    path = Path(path)
    other = f" or choose another destination ({fix})" if fix else " or choose another destination"
    code = err.errno
    if code in _NO_SPACE:
        return (
            f"{path}: could not write {what}: no space left on the device holding {path.parent} "
            f"(any previous file is unchanged); free some space{other}."
        )
    if code in _DENIED:
        # the entry the system refused (a new run directory, the temp file) lives in its parent
        folder = Path(err.filename).parent if isinstance(err.filename, str) else path.parent
        return (
            f"{path}: could not write {what}: permission denied ({err.strerror}); make "
            f"{folder} writable{other}."
        )
    if code == errno.ENOENT and not path.parent.is_dir():
        return (
            f"{path}: could not write {what}: expected an existing folder {path.parent}, found "
            f"none; create it (mkdir -p {path.parent}){other}."
        )
    if code == errno.EISDIR or path.is_dir():
        return (
            f"{path}: could not write {what}: expected a file path, found a directory; remove "
            f"it{other}."
        )
    if code == errno.ENOTDIR:
        return (
            f"{path}: could not write {what}: a part of the path is a file, not a folder; "
            f"rename it{other}."
        )
    return f"{path}: could not write {what} ({err.strerror or err}){other.replace(' or', ';', 1)}."


def check_destination(
    path: str | Path,
    *,
    overwrite: bool = True,
    what: str = "the output",
    fix: str = "",
    error: type[LinearcastError] = ConfigError,
) -> Path:
    """Refuse a destination that cannot or must not be written, before any work is done.

    Args:
        path: the file to write.
        overwrite: whether an existing file may be replaced (False: refuse it, naming
            ``--overwrite``).
        what: what the file is, for the message.
        fix: the option that picks another destination.
        error: the exception type raised.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        LinearcastError: (``error``) a missing folder, a directory in place of the file, or an
            existing file without ``overwrite``.
    """
    path = Path(path)
    other = f" or choose another destination ({fix})" if fix else ""
    if path.is_dir():
        raise error(
            f"{path}: expected a file path to write {what}, found a directory; remove it{other}."
        )
    if not path.parent.is_dir():
        found = "a file" if path.parent.exists() else "nothing"
        raise error(
            f"{path}: expected a folder {path.parent} to write {what} in, found {found}; "
            f"create the folder{other}."
        )
    if path.exists() and not overwrite:
        raise error(
            f"{path}: already exists and is kept; pass --overwrite (overwrite=True in Python) to "
            f"replace it{other}."
        )
    return path


def make_folder(
    path: str | Path,
    *,
    what: str = "the output folder",
    fix: str = "",
    error: type[LinearcastError] = ConfigError,
) -> Path:
    """Create the folder ``path`` with its parents (an existing folder is fine).

    Raises:
        LinearcastError: (``error``) a file in its place or in its parents, no permission, a
            full disk: one sentence naming the path.
    """
    path = Path(path)
    other = f"; choose another folder ({fix})" if fix else ""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise error(f"{path}: expected a folder for {what}, found a file{other}.") from None
    except NotADirectoryError:
        raise error(
            f"{path}: expected a folder for {what}, found a file in its path{other}."
        ) from None
    except OSError as err:
        raise error(os_error_message(path, err, what=what, fix=fix)) from None
    return path


@contextmanager
def atomic_path(
    path: str | Path,
    *,
    keep_suffix: bool = False,
    what: str = "the output",
    fix: str = "",
    error: type[LinearcastError] = ConfigError,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` atomically.

    The caller writes the whole file to the yielded path (e.g. ``fig.savefig(tmp)``). On any
    exception the temporary file is removed and ``path`` is left as it was; an ``OSError``
    becomes ``error`` with :func:`os_error_message`.

    Args:
        path: the destination.
        keep_suffix: end the temporary name with ``path``'s suffix (writers that choose the
            format from it, such as matplotlib).
        what: what the file is, for messages.
        fix: the option that picks another destination, for messages.
        error: the exception type an ``OSError`` becomes.

    Yields:
        The temporary path (an empty file exists there).
    """
    path = Path(path)
    check_destination(path, what=what, fix=fix, error=error)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as err:
        raise error(os_error_message(path, err, what=what, fix=fix)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise error(os_error_message(path, err, what=what, fix=fix)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes, **kwargs: Any) -> Path:
    """Write ``data`` to ``path`` atomically (keyword arguments as :func:`atomic_path`)."""
    with atomic_path(path, **kwargs) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, **kwargs: Any) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (keyword arguments as :func:`atomic_path`)."""
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def write_json(path: str | Path, data: Any, *, indent: int | None = 2, **kwargs: Any) -> Path:
    """Write ``data`` as strict JSON (:func:`linearcast.jsonio.dumps`) to ``path`` atomically."""
    return write_text(path, jsonio.dumps(data, indent=indent) + "\n", **kwargs)


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Remove the temporary files of our naming pattern (:data:`TEMP_RE`) in ``directory``.

    A process killed between creating a temporary file and renaming it (SIGKILL, power loss)
    leaves one behind; a run calls this when it starts or resumes in its directory.

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if TEMP_RE.match(entry.name) and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except OSError:
                continue  # another process's, or not ours to remove: leave it
            removed.append(entry)
    return removed


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UMASK: int | None = None


def file_mode(path: Path) -> int:
    """The permission bits a file written to ``path`` gets: those of the file it replaces,
    else ``0o666`` less the process umask (what ``open()`` gives); ``mkstemp``'s temporary
    files are private (0600), and a forecast or data folder others should read stayed so."""
    global _UMASK
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        pass
    if _UMASK is None:
        _UMASK = os.umask(0o022)  # read it: the only portable way is to set it back at once
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (best effort: not possible on every
    platform, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
