"""Declared ranges of options: what a value must be, said once, checked where a config is built.

A config field, a model option or a protocol field names one of these checks in a table
(:data:`linearcast.engine.config_io.FIELD_CHECKS`, :data:`linearcast.models.base.OPTION_CHECKS`);
the check both refuses a bad value with one sentence and describes the allowed values in it::

    Number(low=0, high=1, high_open=True)     # "a finite number in [0, 1)"
    Integer(low=1)                            # "an integer in [1, 2147483647]"

This module is a leaf (it imports only :mod:`linearcast.errors`), so that the engine's config
module can use it without importing torch and the models can use it without the engine.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from linearcast.errors import ConfigError

#: the largest integer option accepted anywhere (a C int: torch, numpy and DataLoader sizes)
INT_MAX = 2**31 - 1
#: the largest magnitude of a float option: larger is a typo, not a setting
FLOAT_MAX = 1e9


class Check:
    """A declared set of allowed values; subclasses define :meth:`accepts` and :meth:`describe`."""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is allowed."""
        raise NotImplementedError

    def describe(self) -> str:
        """The allowed values, as the end of "must be ..."."""
        raise NotImplementedError

    def check(self, option: str, value: Any, fix: str | None = None) -> Any:
        """Return ``value`` when allowed, else raise :class:`ConfigError` naming ``option``.

        Args:
            option: the option as the user spells it (``model_overrides.dropout``).
            value: the value found.
            fix: how to set it (default ``--set <option>=VALUE``).
        """
        if not self.accepts(value):
            how = fix or f"--set {option}=VALUE"
            raise ConfigError(
                f"config: {option} must be {self.describe()}, found {value!r}; set it with {how}."
            )
        return value


def is_flag(value: Any) -> bool:
    """Whether ``value`` is a bool: Python's or NumPy's (``np.bool_``, which is no number)."""
    kind = type(value)
    return isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ == "bool")


def _real(value: Any) -> bool:
    # numbers.Real/Integral take NumPy scalars (np.float32, np.int64) as the numbers they are
    return isinstance(value, numbers.Real) and not is_flag(value)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int too large for a float: out of every range
        return math.inf if value > 0 else -math.inf


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


@dataclass(frozen=True)
class Number(Check):
    """A finite real number between ``low`` and ``high`` (inclusive unless ``*_open``); an int
    or a NumPy scalar (``np.float32``, ``np.int64``) is one, a bool is not.

    ``allow_nan`` admits NaN as a value (e.g. a null value meaning "no null"); ±inf never.
    """

    low: float = -FLOAT_MAX
    high: float = FLOAT_MAX
    low_open: bool = False
    high_open: bool = False
    allow_nan: bool = False

    def accepts(self, value: Any) -> bool:
        if not _real(value):
            return False
        x = _as_float(value)
        if math.isnan(x):
            return self.allow_nan
        if not math.isfinite(x):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        text = f"a finite number in {left}{_bound(self.low)}, {_bound(self.high)}{right}"
        return text + (" (or nan)" if self.allow_nan else "")


@dataclass(frozen=True)
class Integer(Check):
    """An integer in ``[low, high]``, NumPy's included (a bool is not one; a float such as
    ``2.0`` is not one)."""

    low: int = 0
    high: int = INT_MAX

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, numbers.Integral)
            and not is_flag(value)
            and self.low <= int(value) <= self.high
        )

    def describe(self) -> str:
        return f"an integer in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Flag(Check):
    """``true`` or ``false`` (a Python or NumPy bool; not 0 or 1)."""

    def accepts(self, value: Any) -> bool:
        return is_flag(value)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(Check):
    """One of a few names (``values``); ``others`` describes further allowed values."""

    values: tuple[str, ...]
    others: Check | None = None

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str) and value in self.values:
            return True
        return self.others is not None and self.others.accepts(value)

    def describe(self) -> str:
        names = "one of " + ", ".join(repr(v) for v in self.values)
        return names + (f", or {self.others.describe()}" if self.others is not None else "")


@dataclass(frozen=True)
class ListOf(Check):
    """A list of ``item`` values, of length in ``[min_len, max_len]``."""

    item: Check
    min_len: int = 0
    max_len: int = 10_000

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or not self.min_len <= len(value) <= self.max_len:
            return False
        return all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        if self.min_len == self.max_len:
            size = f"{self.min_len}"
        else:
            size = f"{self.min_len} to {self.max_len}"
        return f"a list of {size} values, each {self.item.describe()}"


@dataclass(frozen=True)
class Text(Check):
    """A string matching ``pattern`` in full (``description`` says what that means)."""

    pattern: str
    description: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None

    def describe(self) -> str:
        return self.description


@dataclass(frozen=True)
class Nothing(Check):
    """``None`` (an option that may be unset; TOML cannot spell it, JSON's ``null`` can)."""

    def accepts(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "null"


@dataclass(frozen=True)
class Either(Check):
    """A value any of ``checks`` accepts."""

    checks: Sequence[Check]

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.checks)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.checks)


__all__ = [
    "FLOAT_MAX",
    "INT_MAX",
    "Check",
    "Choice",
    "Either",
    "Flag",
    "Integer",
    "ListOf",
    "Nothing",
    "Number",
    "Text",
    "is_flag",
]
