"""The benchmark scripts are not a package: their tests import them with ``benchmarks/`` on the
path, kept there for the test module (the scripts import their siblings lazily too)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench_module() -> Iterator[Callable[[str], ModuleType]]:
    """``bench_module("_step")``: the script ``benchmarks/_step.py`` as a module."""
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCH))
