"""``linearcast data ...`` (filled in by the data issue)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "data", help="datasets: list, describe, convert, download"
    )
    p.set_defaults(func=lambda a: 0)
