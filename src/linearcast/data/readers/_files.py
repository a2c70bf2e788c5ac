"""What a reader may open and how much it may allocate.

Every reader goes through :func:`require_file` (regular files only: a FIFO named ``data.csv``
would block the first read forever, a symlink to ``/dev/zero`` would be read until memory runs
out) and checks the sizes a file declares (array headers, node counts) with :func:`check_alloc`
before allocating them. Values echoed from a file into a message go through :func:`echo`.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from linearcast.errors import ConfigError, DataError

#: The option that raises (or lowers) the memory a read may use (``data_options.NAME``).
LIMIT_OPTION = "memory_limit_gb"
# Without the option, a read may use this fraction of the memory the machine has available.
_AVAILABLE_FRACTION = 0.5
# Compressed data that claims to expand more than this (and past _COMPRESSED_FLOOR) is a zip
# bomb or constant filler, not a dataset: real series compress 2-20x.
_MAX_RATIO = 100
_COMPRESSED_FLOOR = 256 << 20

_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar("memory_limit", default=None)


def _describe_node(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def is_regular(path: Path) -> bool:
    """Whether ``path`` (symlinks resolved) is a regular file; for candidate searches."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def not_found(path: Path) -> str:
    """Why ``path`` (which does not resolve to anything) cannot be read: not found, or a
    symbolic link whose target is missing or that leads back to itself."""
    if not path.is_symlink():
        return "file not found"
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop so
        return "a symbolic link that loops back on itself"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
    return f"a symbolic link to {os.readlink(path)!r}, which does not exist"


def require_file(path: str | Path, what: str) -> Path:
    """The path of a regular file (symlinks followed), else a :class:`DataError` naming it.

    Args:
        path: the file a reader is about to open.
        what: what the reader expects, for the message.

    Returns:
        ``Path(path)``.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise DataError(f"{p}: {not_found(p)} (expected {what}).") from None
    except (OSError, ValueError) as err:  # ValueError: e.g. a NUL byte in the name
        reason = getattr(err, "strerror", None) or first_line(err)
        raise DataError(f"{p}: cannot access it ({reason}); expected {what}.") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{p}: expected {what}, found a directory.")
    if not stat.S_ISREG(mode):
        target = f" (it points to {p.resolve()})" if p.is_symlink() else ""
        raise DataError(
            f"{p}: expected {what} as a regular file, found {_describe_node(mode)}{target}; "
            f"copy the data into a regular file and pass that."
        )
    return p


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` of ``/proc/meminfo``; else physical)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (OSError, ValueError, AttributeError):
        return 8 << 30


def memory_budget() -> int:
    """Bytes one read may allocate: the ``memory_limit_gb`` option, else half the available."""
    given = _limit.get()
    return given if given is not None else int(available_memory() * _AVAILABLE_FRACTION)


def limit_given() -> bool:
    """Whether the user set ``memory_limit_gb`` (then it overrides the compression-ratio rule)."""
    return _limit.get() is not None


#: the largest read budget one may ask for (1 PiB: beyond any machine, within an int)
_MAX_LIMIT_GB = float(1 << 20)


@contextlib.contextmanager
def memory_limit(gigabytes: Any) -> Iterator[None]:
    """Let the reads inside use ``gigabytes`` GiB (``None``: the default budget)."""
    if gigabytes is None:
        yield
        return
    try:
        value = float(gigabytes)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value <= _MAX_LIMIT_GB:
        raise ConfigError(
            f"data_options.{LIMIT_OPTION}: expected a positive number of GiB up to "
            f"{int(_MAX_LIMIT_GB)}, found {echo(gigabytes)}; e.g. --set "
            f"data_options.{LIMIT_OPTION}=32."
        )
    token = _limit.set(int(value * (1 << 30)))
    try:
        yield
    finally:
        _limit.reset(token)


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def _raise_hint(need: int) -> str:
    gib = max(1, -(-need // (1 << 30)))
    return f"--set data_options.{LIMIT_OPTION}={gib}"


def check_alloc(
    source: Any,
    what: str,
    nbytes: int,
    *,
    compressed: int | None = None,
    stored_as: str = "of compressed bytes",
) -> None:
    """Refuse to allocate ``nbytes`` for ``what`` of ``source`` past the budget.

    Args:
        source: the file (or file and key) for the message.
        what: what would be allocated, e.g. ``"array 'data' float32 [2000, 500000]"``.
        nbytes: the bytes it needs.
        compressed: the bytes it is stored in, when compressed (or the size of a file that
            declares it): a claimed expansion beyond 100x (and past 256 MiB) is refused too,
            unless the user set the limit.
        stored_as: how the message names ``compressed``.

    Raises:
        DataError: naming the file, the size declared, the limit and the option raising it.
    """
    # a claim far past its stored bytes is told as such first: raising the limit is the fix
    # only for a sound file, and the file is the likelier cause
    if compressed is not None and not limit_given():
        cap = max(_COMPRESSED_FLOOR, _MAX_RATIO * compressed)
        if nbytes > cap:
            raise DataError(
                f"{source}: {what} claims {human_bytes(nbytes)} from {human_bytes(compressed)} "
                f"{stored_as} (over {_MAX_RATIO}x: a damaged or hostile file, or constant "
                f"filler); if the file is sound, allow it with {_raise_hint(nbytes)}."
            )
    budget = memory_budget()
    why = f"set by {LIMIT_OPTION}" if limit_given() else "half the memory available now"
    if nbytes > budget:
        raise DataError(
            f"{source}: {what} needs {human_bytes(nbytes)}, over the memory limit of "
            f"{human_bytes(budget)} for one read ({why}); "
            f"if the file is sound and the machine has the memory, raise it with "
            f"{_raise_hint(nbytes)}."
        )


def check_dense_graph(
    source: Any, n: int, *, file_size: int | None = None, bytes_per_cell: int = 12
) -> None:
    """Refuse a dense ``[n, n]`` adjacency past the budget (default: a float64 work copy and
    the float32 result) or, given the ``file_size`` of the file declaring ``n``, one 100x
    larger than that file (a few bytes saying N = 20,000 must not cost gigabytes)."""
    stored = f"of {source}" if file_size is not None else ""
    check_alloc(
        source,
        f"a dense [{n}, {n}] adjacency",
        n * n * bytes_per_cell,
        compressed=file_size,
        stored_as=stored,
    )


def check_text_size(path: Path, what: str, expansion: int) -> None:
    """Refuse a text file whose parse would need more than the budget (``expansion`` bytes of
    parsed objects per byte of text: JSON lists of numbers become Python floats)."""
    size = path.stat().st_size
    check_alloc(path, f"parsing {what} ({human_bytes(size)} of text)", size * expansion)


_ECHO_CHARS = 60


def echo(value: Any, limit: int = _ECHO_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (``…`` marks the cut): values from a
    file may be megabytes long, and a message is one line."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def echo_list(values: Sequence[Any] | Any, items: int = 10) -> str:
    """A list of names from a file, each cut by :func:`echo`, at most ``items`` of them."""
    seq = list(values)
    shown = ", ".join(echo(v, 40) for v in seq[:items])
    more = f", … ({len(seq)} in all)" if len(seq) > items else ""
    return f"[{shown}{more}]"


def first_line(err: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut to ``limit`` characters."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= limit else line[:limit] + "…"
