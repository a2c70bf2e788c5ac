"""Files that using a run writes (forecasts, predictions, ONNX models): checked before any work is
done, and written whole or not at all (through :mod:`linearcast.atomic`).

A failed write must not leave a truncated file that a later step (or a user) takes for a result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from linearcast.atomic import atomic_path, check_destination
from linearcast.errors import ConfigError


def check_output_path(path: str | Path, suffixes: Sequence[str], option: str = "--out") -> Path:
    """``path`` if a file with one of ``suffixes`` can be written there.

    Raises:
        ConfigError: another suffix, a directory, or a folder that does not exist.
    """
    path = Path(path)
    check_destination(path, what=f"the {option} file", fix=option)
    if path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{path}: {option} expected a file ending in {', '.join(suffixes)}; found "
            f"{path.suffix or 'no suffix'!r}."
        )
    return path


@contextmanager
def atomic_output(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """Yield a temp path beside ``path`` ending in its suffix (writers such as ``np.savez``
    choose the format from it); on success it replaces ``path``, on any error it is removed
    and ``path`` is left as it was (an ``OSError`` becomes a :class:`ConfigError` sentence)."""
    with atomic_path(path, keep_suffix=True, what=f"the {option} file", fix=option) as tmp:
        yield tmp
