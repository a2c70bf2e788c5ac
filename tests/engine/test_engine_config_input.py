"""Config values as people type them: NumPy scalars are the numbers they hold, an unknown key
is answered with the option it most likely means, and the reader options whose values are
known up front are checked when the config is built (before anything is written)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linearcast.cli import main
from linearcast.data.frames import as_dataset
from linearcast.engine.config import TrainConfig
from linearcast.engine.config_io import (
    DATA_OPTION_CHECKS,
    DEDUPE_CHOICES,
    FIELD_ALIASES,
    FIELD_CHECKS,
    NON_FINITE_CHOICES,
    did_you_mean,
    plain,
)
from linearcast.errors import ConfigError
from linearcast.ranges import Choice, Flag, Integer, Number

#: should a refusal be missed, what trains instead takes seconds
TINY_CLI = ["--set", "synthetic.num_nodes=2", "--set", "synthetic.days=3", "--set", "plots=false"]
NUMPY_INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64)
NUMPY_FLOATS = (np.float16, np.float32, np.float64)


# ---------------------------------------------------------------------- NumPy scalars
@pytest.mark.parametrize("kind", NUMPY_INTS, ids=lambda k: k.__name__)
def test_numpy_integers_pass_integer_and_number_checks(kind: type) -> None:
    assert Integer(1, 100).accepts(kind(8)) and not Integer(1, 100).accepts(kind(0))
    assert Number(0.0, 10.0).accepts(kind(8)) and not Number(0.0, 5.0).accepts(kind(8))
    assert not Flag().accepts(kind(1))  # 1 is no flag, whatever its type


@pytest.mark.parametrize("kind", NUMPY_FLOATS, ids=lambda k: k.__name__)
def test_numpy_floats_pass_number_checks_but_not_integer_ones(kind: type) -> None:
    check = Number(0.0, 1.0, low_open=True)
    assert check.accepts(kind(0.5)) and not check.accepts(kind(0.0))
    assert not check.accepts(kind("nan")) and not check.accepts(kind("inf"))
    assert Number(allow_nan=True).accepts(kind("nan"))
    assert not Integer(0, 10).accepts(kind(2.0))  # as a Python 2.0 is not an integer


def test_numpy_bools_are_flags_and_nothing_else() -> None:
    assert Flag().accepts(np.bool_(True)) and Flag().accepts(np.False_)
    for check in (Integer(0, 1), Number(0.0, 1.0)):
        assert not check.accepts(np.bool_(True)) and not check.accepts(True)


def test_an_int_too_large_for_a_float_is_out_of_range_not_a_crash() -> None:
    assert not Number().accepts(10**400) and not Number(allow_nan=True).accepts(-(10**400))


@pytest.mark.parametrize("name", sorted(FIELD_CHECKS))
def test_every_numeric_field_takes_its_default_as_a_numpy_scalar(name: str) -> None:
    head, _, rest = name.partition(".")
    default = TrainConfig().to_dict()[head]
    default = default[rest] if rest else default
    if isinstance(default, bool):
        value: Any = np.bool_(default)
    elif isinstance(default, int):
        value = np.int64(default)
    elif isinstance(default, float):
        value = np.float64(default)
    elif isinstance(default, list):
        value = [np.float32(v) if isinstance(v, float) else np.int32(v) for v in default]
    else:
        pytest.skip(f"{name} defaults to {default!r}, not a number")
    values = {head: {rest: value}} if rest else {head: value}
    cfg = TrainConfig.from_dict(values)
    assert cfg == TrainConfig()
    json.dumps(cfg.to_dict())  # plain Python values: the standard library writes them


def test_numpy_values_are_stored_as_the_python_numbers_meant() -> None:
    cfg = TrainConfig(
        lr=np.float32(1e-3),  # type: ignore[arg-type]
        batch_size=np.int64(8),  # type: ignore[arg-type]
        max_epochs=np.int64(1),  # type: ignore[arg-type]
        mask_loss=np.bool_(False),  # type: ignore[arg-type]
        betas=(np.float32(0.9), np.float64(0.99)),  # type: ignore[arg-type]
        model_overrides={"dropout": np.float32(0.1), "num_layers": np.int16(2)},
        data_options={"null_value": np.float32(-200.0)},
    )
    assert (cfg.lr, cfg.batch_size, cfg.max_epochs, cfg.mask_loss) == (1e-3, 8, 1, False)
    assert cfg.betas == [0.9, 0.99] and cfg.model_overrides == {"dropout": 0.1, "num_layers": 2}
    found = {type(v) for v in (cfg.lr, *cfg.betas, *cfg.model_overrides.values())}
    assert found <= {float, int} and type(cfg.mask_loss) is bool
    assert type(cfg.data_options["null_value"]) is float
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_plain_leaves_what_is_not_a_numpy_number_alone() -> None:
    stamp = np.datetime64("2024-01-01")
    assert plain(stamp) is stamp and plain("x") == "x" and plain(None) is None
    assert plain({"a": [np.int8(1), (np.float64(0.5),)]}) == {"a": [1, (0.5,)]}
    assert type(plain(np.str_("x"))) is str


def test_numpy_values_out_of_range_are_refused_as_their_numbers() -> None:
    with pytest.raises(ConfigError, match=r"lr must be a finite number in \(0, .*found 0\.0;"):
        TrainConfig(lr=np.float32(0.0))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"batch_size must be an integer in \[1, .*found 0;"):
        TrainConfig(batch_size=np.int64(0))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"batch_size must be an integer .* found True"):
        TrainConfig(batch_size=np.bool_(True))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- did you mean
@pytest.mark.parametrize(
    ("sets", "meant"),
    [
        ("learning_rate=0.1", "lr"),
        ("lrr=0.1", "lr"),
        ("Learning-Rate=0.1", "lr"),
        ("epochs=3", "max_epochs"),
        ("max_epoch=3", "max_epochs"),
        ("output_dir='x'", "out_dir"),
        ("out='x'", "out_dir"),
        ("wd=0.1", "weight_decay"),
        ("workers=2", "num_workers"),
        ("batchsize=8", "batch_size"),
        ("synthetic.nodes=3", "num_nodes"),
    ],
)
def test_an_unknown_key_names_the_option_it_likely_means(sets: str, meant: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig().with_sets([sets])
    message = str(err.value)
    head, dot, key = sets.partition("=")[0].rpartition(".")
    assert f"unknown {head + ' ' if dot else ''}option {key!r} " in message
    assert f"(did you mean {meant!r}?)" in message and "\n" not in message


def test_an_unknown_key_far_from_every_option_gets_no_guess() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'zzzz'; expected a config field: ") as e:
        TrainConfig.from_dict({"zzzz": 1})
    assert "did you mean" not in str(e.value)


def test_every_alias_points_at_a_field() -> None:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert not set(FIELD_ALIASES.values()) - fields
    assert not set(FIELD_ALIASES) & fields  # an alias never shadows a real name
    assert all(did_you_mean(alias, fields) == meant for alias, meant in FIELD_ALIASES.items())


def test_the_cli_names_the_option_meant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    assert (
        main(["train", "--out", str(out), "--set", "learning_rate=0.1", "--quiet", *TINY_CLI]) == 1
    )
    err = capsys.readouterr().err
    assert "unknown option 'learning_rate' (did you mean 'lr'?)" in err and err.count("\n") == 1
    assert not out.exists()


# ---------------------------------------------------------------------- reader options
def test_the_choices_are_the_readers_own() -> None:
    from linearcast.data.checks import NON_FINITE_POLICIES, NonFinitePolicy
    from linearcast.data.readers._common import Dedupe, GraphWeights
    from linearcast.data.readers.flows import Layout

    assert NON_FINITE_CHOICES == typing.get_args(NonFinitePolicy) == NON_FINITE_POLICIES
    assert DEDUPE_CHOICES == typing.get_args(Dedupe)
    for name, literal in (("weights", GraphWeights), ("layout", Layout)):
        check = DATA_OPTION_CHECKS[name]
        assert isinstance(check, Choice) and check.values == typing.get_args(literal)


@pytest.mark.parametrize(
    ("option", "bad", "allowed"),
    [
        ("non_finite", '"bogus"', "one of 'error', 'mask', 'null'"),
        ("dedupe", '"firts"', "one of 'error', 'first', 'last', 'mean'"),
        ("weights", '"cost"', "one of 'connectivity', 'distance', 'gaussian'"),
        ("layout", '"rows"', "one of 'auto', 'time_node', "),
        ("null_value", '"abc"', "a finite number"),
        ("steps_per_day", "0", r"an integer in \[1, 86400\]"),
        ("graph_threshold", "2", r"a finite number in \[0, 1\]"),
    ],
)
def test_a_reader_option_value_known_up_front_is_refused_when_the_config_is_built(
    option: str, bad: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig().with_sets([f"data_options.{option}={bad}"])
    message = str(err.value)
    assert f"data_options.{option} must be " in message and "\n" not in message
    assert re.search(allowed, message), message
    fix = f"--set data_options.{option}=VALUE (Python: data_options={{'{option}': VALUE}}"
    assert fix in message
    frame_option = option in inspect.signature(as_dataset).parameters
    assert (f", or {option}=VALUE with a frame or array" in message) == frame_option


@pytest.mark.parametrize("value", [*NON_FINITE_CHOICES])
def test_every_non_finite_rule_is_accepted(value: str) -> None:
    cfg = TrainConfig().with_sets([f'data_options.non_finite="{value}"'])
    assert cfg.data_options == {"non_finite": value}


def test_a_bad_reader_option_from_the_cli_writes_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    argv = ["train", "--out", str(out), "--set", "data_options.non_finite=bogus", "--quiet"]
    argv += [*TINY_CLI, "--model", "last-value", "--epochs", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "non_finite must be one of 'error', 'mask', 'null', found 'bogus'" in err
    assert not out.exists()


def test_a_missing_step_may_be_written_as_null() -> None:
    cfg = TrainConfig(data_options={"freq_minutes": None, "steps_per_day": None})
    assert cfg.data_options == {"freq_minutes": None, "steps_per_day": None}
