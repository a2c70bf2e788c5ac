"""``linearcast.fit``'s arguments as people pass them: ``sets`` as ``None`` or one string,
NumPy scalars, misspelt keywords, no ``data``, bad data options and a frame without times.

``train`` is replaced by a stand-in that stops with the config ``fit`` built, so these tests
check what ``fit`` makes of its arguments without training anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import linearcast
from linearcast.api.options import check_frame_times, set_strings
from linearcast.data.frames import as_dataset
from linearcast.engine.config import TrainConfig, preset
from linearcast.errors import ConfigError


class _Built(Exception):
    """Raised by the stand-in for ``train``: carries the config and the in-memory dataset."""


Fit = Callable[..., tuple[TrainConfig, Any]]

#: should a refusal below ever be missed, what trains instead takes seconds, not hours
TINY: dict[str, Any] = {
    "model": "last-value",
    "epochs": 1,
    "synthetic": {"num_nodes": 2, "days": 3},
    "plots": False,
    "tensorboard": False,
    "accelerator": "cpu",
}


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fit:
    import linearcast.engine.trainer as trainer

    def stand_in(cfg: TrainConfig, **kwargs: Any) -> None:
        raise _Built(cfg, kwargs.get("dataset"))

    monkeypatch.setattr(trainer, "train", stand_in)

    def fit(**kwargs: Any) -> tuple[TrainConfig, Any]:
        kwargs.setdefault("out_dir", str(tmp_path / "runs"))
        with pytest.raises(_Built) as info:
            linearcast.fit(**kwargs)
        return info.value.args[0], info.value.args[1]

    return fit


def _frame(steps: int = 288, n: int = 3) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=steps, freq="10min")
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(100, 5, (steps, n)), index=idx, columns=["a", "b", "c"][:n])


def _one_sentence(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    return message


# ---------------------------------------------------------------------- sets
def test_sets_none_is_no_sets(built: Fit) -> None:
    cfg, _ = built(data="synthetic", sets=None)
    assert cfg == built(data="synthetic")[0] == built(data="synthetic", sets=[])[0]


def test_one_string_is_one_key_value(built: Fit) -> None:
    cfg, _ = built(data="synthetic", sets="lr=0.1")
    assert cfg.lr == 0.1
    assert cfg == built(data="synthetic", sets=["lr=0.1"])[0]
    both = built(data="synthetic", sets=("lr=0.1", "model_overrides.num_layers=2"))[0]
    assert both.lr == 0.1 and both.model_overrides["num_layers"] == 2


@pytest.mark.parametrize("bad", [{"lr": 0.1}, [1], 5, b"lr=0.1", ["lr=0.1", None]])
def test_sets_that_are_not_strings_are_refused_in_one_sentence(bad: Any) -> None:
    with pytest.raises(
        ConfigError, match=r"^fit\(\): sets expects .*key=value strings, found "
    ) as e:
        set_strings(bad)
    assert "sets=['lr=0.1']" in _one_sentence(e)


# ---------------------------------------------------------------------- NumPy scalars
def test_numpy_scalars_are_the_numbers_they_hold(built: Fit) -> None:
    cfg, _ = built(
        data="synthetic",
        lr=np.float32(1e-3),
        batch_size=np.int64(8),
        epochs=np.int64(1),
        weight_decay=np.float64(1e-4),
        mask_loss=np.bool_(False),
    )
    assert (cfg.lr, cfg.batch_size, cfg.max_epochs, cfg.weight_decay) == (1e-3, 8, 1, 1e-4)
    assert cfg.mask_loss is False
    assert [type(v) for v in (cfg.lr, cfg.batch_size, cfg.max_epochs)] == [float, int, int]
    json.dumps(cfg.to_dict())


def test_numpy_data_options_of_a_frame_are_recorded(built: Fit) -> None:
    cfg, dataset = built(data=_frame(), null_value=np.float32(-200.0), model="last-value")
    assert cfg.data_options["null_value"] == -200.0
    assert type(cfg.data_options["null_value"]) is float
    assert dataset.null_value == -200.0


# ---------------------------------------------------------------------- unknown keywords
@pytest.mark.parametrize(
    ("keyword", "meant"),
    [("out", "out_dir"), ("lrr", "lr"), ("learning_rate", "lr"), ("epoch", "max_epochs"),
     ("output_dir", "out_dir"), ("freq_minute", "freq_minutes")],
)  # fmt: skip
def test_an_unknown_keyword_names_the_one_it_likely_means(keyword: str, meant: str) -> None:
    with pytest.raises(ConfigError) as e:
        linearcast.fit(data=_frame(), **{keyword: 1})
    message = _one_sentence(e)
    assert message.startswith(f"fit(): unknown option {keyword!r} (did you mean {meant!r}?);")


def test_a_frame_option_with_a_file_points_at_data_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        linearcast.fit(data=str(tmp_path / "x.csv"), non_finite="mask")
    message = _one_sentence(e)
    assert "non_finite=" in message and "data_options={'non_finite': ...}" in message


# ---------------------------------------------------------------------- data
def test_no_data_is_refused_unless_the_synthetic_data_is_asked_for(
    built: Fit, tmp_path: Path
) -> None:
    out = tmp_path / "nothing"
    with pytest.raises(ConfigError) as e:
        linearcast.fit(out_dir=str(out), **TINY)
    message = _one_sentence(e)
    assert "found None" in message and 'data="synthetic"' in message
    assert not out.exists()
    assert built(data="synthetic")[0].data == "synthetic"
    assert built(sets=["data=synthetic"])[0].data == "synthetic"
    demo = preset("demo")
    assert built(preset="demo")[0].data == demo.data  # a preset names its data


def test_a_bad_data_option_is_refused_before_anything_is_read_or_written(
    built: Fit, tmp_path: Path
) -> None:
    out = tmp_path / "nothing"
    for options in ({"non_finite": "bogus"}, {"data_options": {"non_finite": "bogus"}}):
        data: Any = _frame() if "non_finite" in options else "synthetic"
        with pytest.raises(ConfigError) as e:
            linearcast.fit(data=data, out_dir=str(out), **TINY, **options)
        message = _one_sentence(e)
        assert "non_finite must be one of 'error', 'mask', 'null', found 'bogus'" in message
    assert not out.exists()
    cfg, _ = built(data=_frame(), non_finite="mask", model="last-value")
    assert cfg.data_options["non_finite"] == "mask"


# ---------------------------------------------------------------------- times
def test_an_array_without_times_is_refused_in_python_keywords(built: Fit, tmp_path: Path) -> None:
    values = _frame().to_numpy()
    with pytest.raises(ConfigError) as e:
        linearcast.fit(data=values, protocol="pems", out_dir=str(tmp_path), **TINY)
    message = _one_sentence(e)
    assert "time-of-day" in message and "<ndarray [288, 3]>" in message
    assert "freq_minutes=MINUTES" in message and "--set" not in message
    assert "protocol_overrides={'add_time_of_day': False}" in message
    _, dataset = built(data=values, protocol="pems", model="last-value", freq_minutes=10)
    assert dataset.steps_per_day == 144
    no_time = {"add_time_of_day": False, "add_day_of_week": False}
    built(data=values, protocol="pems", model="last-value", protocol_overrides=no_time)


def test_a_text_index_is_named_with_how_to_parse_it() -> None:
    frame = _frame()
    frame.index = frame.index.astype(str)
    dataset = as_dataset(frame.to_numpy())  # what a frame whose index is not read gives
    with pytest.raises(ConfigError) as e:
        check_frame_times(frame, dataset, TrainConfig(model="last-value", protocol="pems"))
    message = _one_sentence(e)
    assert "index holds text such as '2024-01-01 00:00:00'" in message
    assert "pd.to_datetime(df.index)" in message
