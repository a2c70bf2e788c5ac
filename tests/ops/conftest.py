"""Fixtures shared by the kernel tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor


def _saved(fn: Callable[..., Any], *args: Any, **kw: Any) -> list[Tensor]:
    """Run ``fn`` and return every tensor autograd saved for its backward."""
    saved: list[Tensor] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*args, **kw)
    return saved


@pytest.fixture
def saved_by() -> Callable[..., list[Tensor]]:
    """``saved_by(fn, *args, **kw)``: the tensors autograd saves while ``fn`` runs."""
    return _saved
