"""The step benchmark's allocator-free memory reading (``_step.live_peak``)."""

from __future__ import annotations

import pytest
import torch

MIB = 2**20


@pytest.fixture(scope="module")
def step(bench_module):  # type: ignore[no-untyped-def]
    return bench_module("_step")


def test_live_peak_counts_what_is_alive_together_not_what_was_allocated(step) -> None:  # type: ignore[no-untyped-def]
    before = torch.empty(64 * MIB, dtype=torch.uint8)  # allocated before: never counted

    def two_at_once_then_one() -> None:
        a = torch.empty(3 * MIB, dtype=torch.uint8)
        b = torch.empty(5 * MIB, dtype=torch.uint8)
        del a, b
        for _ in range(4):  # allocated in turn, never together
            torch.empty(7 * MIB, dtype=torch.uint8)

    peak = step.live_peak(two_at_once_then_one)
    assert 8 * MIB <= peak < 8 * MIB + MIB // 4  # 3 + 5 alive together, 7 alone, not 36 in all
    assert before.numel() == 64 * MIB


def test_live_peak_sees_the_saved_activations_of_a_backward(step) -> None:  # type: ignore[no-untyped-def]
    w = torch.randn(256, 256, requires_grad=True)
    x = torch.randn(1024, 256)

    def forward_backward(layers: int) -> None:
        h = x
        for _ in range(layers):
            h = torch.tanh(h @ w)  # each layer keeps its 1 MiB output for backward
        h.sum().backward()

    one, four = (
        step.live_peak(lambda: forward_backward(1)),
        step.live_peak(lambda: forward_backward(4)),
    )
    assert four - one >= 3 * MIB  # three more saved 1 MiB outputs alive at the peak
