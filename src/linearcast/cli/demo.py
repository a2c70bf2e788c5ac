"""``linearcast demo`` (placeholder until the ops land)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("demo", help="run the main example")
    p.set_defaults(func=lambda a: 0)
