"""``StandardScaler.from_state_dict`` names the field that is wrong, not a neighbouring one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from linearcast.data.scaler import StandardScaler
from linearcast.errors import DataError


def _state() -> dict[str, Any]:
    return StandardScaler(np.ones(3), np.full(3, 2.0), "per_channel", null_value=0.0).state_dict()


# field, a wrong value, how the sentence names the field it blames
CASES = [
    ("mode", "rows", "scaler mode must be"),
    ("mean", "abc", "as mean, found str 'abc'"),
    ("std", [1.0, {"a": 1}], "as std, found list"),
    ("null_value", "0", "as null_value, found str '0'"),
    ("fill", "__import__('os')", "scaler fill must be"),
]
SUBJECTS = [c[2].split(",")[0] for c in CASES]


@pytest.mark.parametrize(("field", "value", "subject"), CASES, ids=[c[0] for c in CASES])
def test_a_wrong_field_is_named(field: str, value: Any, subject: str) -> None:
    with pytest.raises(DataError) as err:
        StandardScaler.from_state_dict({**_state(), field: value})
    text = str(err.value)
    assert subject in text and repr(value)[:20] in text
    assert sum(s in text for s in SUBJECTS) == 1  # only this field is blamed


def test_the_state_round_trips() -> None:
    sc = StandardScaler.from_state_dict(_state())
    assert sc.state_dict() == _state()
    assert sc.null_value == 0.0 and sc.mode == "per_channel"
