"""Shared fixtures for the data tests: the real files in ../shared/data (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    """The real datasets folder; skips the test when it is absent (a user's checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only on the project machines)")
    return SHARED_DATA
