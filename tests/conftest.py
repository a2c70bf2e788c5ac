"""Shared test settings.

Tests run two xdist workers on two cores; letting each worker's torch also use two threads
oversubscribes the cores, and small ops then spin-wait (a 10 ms step becomes > 1 s). One
intra-op thread per worker is set here, per test, and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
