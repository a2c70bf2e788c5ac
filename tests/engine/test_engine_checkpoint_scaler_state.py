"""Each field of a checkpoint's scaler state, altered to a wrong type, is refused in one
sentence that names the checkpoint file and that field (not a neighbouring one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checkpoint_cases import valid_checkpoint

from linearcast.data.scaler import StandardScaler
from linearcast.engine.checkpoint import atomic_save, load_checkpoint
from linearcast.errors import ConfigError

N = 6  # valid_checkpoint's meta.num_nodes


def _scaler_state() -> dict[str, Any]:
    """A per-series scaler state as training writes it (every field present)."""
    sc = StandardScaler(np.arange(N) + 1.0, np.full(N, 2.0), "per_channel", null_value=0.0)
    sc.fitted = True
    return sc.state_dict()


#: field -> (a wrong value, the type name the sentence reports as found)
WRONG: dict[str, tuple[Any, str]] = {
    "mode": (3, "int 3"),
    "mean": ("abc", "str 'abc'"),
    "std": ({"a": 1.0}, "dict"),
    "fitted": ("yes", "str 'yes'"),
    "null_value": ("0", "str '0'"),
    "fill": ("__import__('os')", "str \"__import__('os')\""),
}


def test_the_table_covers_every_field_training_writes() -> None:
    assert set(WRONG) == set(_scaler_state())


def test_the_unaltered_state_loads(tmp_path: Path) -> None:
    path = atomic_save(valid_checkpoint(scaler=_scaler_state()), tmp_path / "best.ckpt")
    assert load_checkpoint(path)["scaler"] == _scaler_state()


@pytest.mark.parametrize("field", sorted(WRONG))
def test_a_field_of_the_wrong_type_is_named_with_the_file(tmp_path: Path, field: str) -> None:
    value, found = WRONG[field]
    state = {**_scaler_state(), field: value}
    path = atomic_save(valid_checkpoint(scaler=state), tmp_path / "best.ckpt")
    with pytest.raises(ConfigError) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert text.startswith(f"{path}: damaged or altered checkpoint: scaler.{field} ")
    assert found in text and "(expected " in text and "\n" not in text
    others = set(WRONG) - {field}
    assert not any(f"scaler.{other}" in text for other in others)


@pytest.mark.parametrize("field", ["fitted", "null_value", "fill"])
def test_fields_older_runs_did_not_write_may_be_absent(tmp_path: Path, field: str) -> None:
    state = {k: v for k, v in _scaler_state().items() if k != field}
    path = atomic_save(valid_checkpoint(scaler=state), tmp_path / "best.ckpt")
    assert field not in load_checkpoint(path)["scaler"]
