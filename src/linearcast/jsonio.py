"""Strict JSON out: every file and line linearcast writes parses with any JSON reader.

Python's ``json`` writes ``NaN`` and ``Infinity`` tokens by default, which are not JSON (jq,
JavaScript and many readers refuse them). :func:`dumps` turns non-finite floats into ``null``
first and then writes with ``allow_nan=False``, so a stray NaN can never produce an invalid
file; NumPy scalars and arrays, paths, tuples and sets become their plain JSON forms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def strict(obj: Any, fallback: Callable[[Any], Any] | None = None) -> Any:
    """``obj`` with non-finite floats as ``None`` and NumPy/path/tuple values made plain.

    Args:
        obj: nested dicts, lists, numbers, strings, NumPy values, paths.
        fallback: applied to any other object (e.g. ``str`` for timestamps); without it such
            an object raises ``TypeError``.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict(v, fallback) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [strict(v, fallback) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist(), fallback)
    if isinstance(obj, np.generic):
        return strict(obj.item(), fallback)
    if isinstance(obj, Path):
        return str(obj)
    if fallback is not None:
        return strict(fallback(obj))
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, *, indent: int | None = 2, fallback: Callable[[Any], Any] | None = None) -> str:
    """Strict JSON text of ``obj`` (see :func:`strict`)."""
    return json.dumps(strict(obj, fallback), indent=indent, allow_nan=False)
