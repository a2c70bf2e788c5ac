"""Record the golden outputs of every registry model into ``golden_outputs.json``.

    .venv/bin/python tests/models/make_golden.py

Regenerate ONLY when a change of behaviour is intended (a fixed bug, a new default, a new
model), and say in the commit which records changed and why. A refactoring that is meant to keep
behaviour must pass ``test_golden.py`` against the committed file unchanged.

The cases (shapes, seeds, overrides) live in ``golden_cases.py``, which the test runs as well.
Values were recorded with torch 2.13 CPU in float64 on one thread; they are stable to ~1e-15
across machines, hence the test's tolerance (rtol 1e-10, atol 1e-12).
"""

from __future__ import annotations

import json
import re
import time

import torch
from golden_cases import ATOL, GOLDEN_PATH, RTOL, all_cases, record


def _compact_lists(text: str) -> str:
    """Put each list of numbers on one line, so that a diff shows which record changed."""

    def one_line(m: re.Match[str]) -> str:
        return "[" + re.sub(r",\s+", ", ", m[1]) + "]"

    return re.sub(r"\[\s+([^\[\]{}\"]*?)\s+\]", one_line, text)


def main() -> None:
    torch.set_num_threads(1)  # as the tests run; summation order then matches
    records = {}
    start = time.perf_counter()
    for case in all_cases():
        records[case.id] = record(case)
    golden = {
        "_meta": {
            "recorded_with": f"torch {torch.__version__}, float64, 1 thread",
            "regenerate": "only for an intended change of behaviour: "
            "python tests/models/make_golden.py, and say why in the commit",
            "rtol": RTOL,
            "atol": ATOL,
        },
        "cases": records,
    }
    GOLDEN_PATH.write_text(_compact_lists(json.dumps(golden, indent=1)) + "\n")
    took = time.perf_counter() - start
    print(f"wrote {len(records)} cases to {GOLDEN_PATH} in {took:.1f} s")


if __name__ == "__main__":
    main()
