"""Options, configs and run names (Hardening II): every numeric option has a declared range
checked where the config is built, whatever builds it; names are checked before any data is
read; a resume reads nothing it could fail on after training; a run name stays inside --out."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linearcast.cli import main
from linearcast.engine.config import SyntheticConfig, TrainConfig
from linearcast.engine.config_checks import check_run_name
from linearcast.engine.config_io import DATA_OPTION_CHECKS, FIELD_CHECKS, PROTOCOL_CHECKS
from linearcast.engine.run_dir import check_resumable, create_run_dir, keep_earlier_result
from linearcast.engine.run_state import resume_dir
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY
from linearcast.models.base import OPTION_CHECKS
from linearcast.ranges import Check, Choice, Either, Flag, Integer, ListOf, Nothing, Number, Text

_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize="LINEARCAST_HYPOTHESIS_EXAMPLES" not in os.environ,
)


# ---------------------------------------------------------------------- what is declared
def _numeric_fields() -> list[str]:
    def numeric(value: Any) -> bool:
        if isinstance(value, list):
            return all(numeric(v) for v in value)
        return isinstance(value, int | float) and not isinstance(value, bool)

    cfg = TrainConfig()
    names = [f.name for f in dataclasses.fields(TrainConfig) if numeric(getattr(cfg, f.name))]
    names += [
        f"synthetic.{f.name}"
        for f in dataclasses.fields(SyntheticConfig)
        if numeric(getattr(cfg.synthetic, f.name))
    ]
    return names


def test_every_numeric_field_has_a_declared_range() -> None:
    missing = [name for name in _numeric_fields() if name not in FIELD_CHECKS]
    assert not missing, f"numeric config fields without a range in FIELD_CHECKS: {missing}"
    assert "devices" in FIELD_CHECKS  # an int or a string: the int part has a range too


def test_every_model_option_has_a_declared_check() -> None:
    missing = {
        name: sorted(set(spec.options) - set(OPTION_CHECKS))
        for name, spec in REGISTRY.items()
        if spec.options is not None and set(spec.options) - set(OPTION_CHECKS)
    }
    assert not missing, f"model options without a check in models.base.OPTION_CHECKS: {missing}"


# ---------------------------------------------------------------------- bad values
def _bad_values(check: Check) -> list[Any]:
    """Values ``check`` must refuse: non-finite, out of range, huge, of the wrong type."""
    if isinstance(check, Either):
        return [v for c in check.checks for v in _bad_values(c) if not check.accepts(v)]
    if isinstance(check, Integer):
        out: list[Any] = [check.low - 1, check.high + 1, 10**30, 1.5, math.nan, "x", True]
        return [v for v in out if not check.accepts(v)]
    if isinstance(check, Number):
        out = [math.inf, -math.inf, 1e300, -1e300, "x", True, [1.0]]
        out += [] if check.allow_nan else [math.nan]
        out += [check.low] if check.low_open else [math.nextafter(check.low, -math.inf)]
        out += [check.high] if check.high_open else [math.nextafter(check.high, math.inf)]
        return out
    if isinstance(check, ListOf):
        out = [[v] * max(check.min_len, 1) for v in _bad_values(check.item)]
        return [v for v in out if not check.accepts(v)] + ["x"]
    if isinstance(check, Flag):
        return [1, 0.0, "yes"]
    if isinstance(check, Choice):
        return ["no-such-name", *(v for v in ([1e30, -1.0, math.nan] if check.others else [3]))]
    if isinstance(check, Nothing):
        return []
    if isinstance(check, Text):
        return ["x", "", "0;1", 1.5]
    raise AssertionError(f"no bad values for {check!r}")


def _model_for(option: str) -> str:
    return next(n for n, s in REGISTRY.items() if s.options is not None and option in s.options)


#: (option as spelled with --set, its check) for every numeric field and model/protocol option
_CASES = [
    *FIELD_CHECKS.items(),
    *((f"model_overrides.{k}", c) for k, c in OPTION_CHECKS.items()),
    *((f"protocol_overrides.{k}", c) for k, c in PROTOCOL_CHECKS.items()),
    *((f"data_options.{k}", c) for k, c in DATA_OPTION_CHECKS.items()),
]


def _as_dict(option: str, value: Any) -> dict[str, Any]:
    head, _, rest = option.partition(".")
    values: dict[str, Any] = {head: {rest: value}} if rest else {head: value}
    if head == "model_overrides":
        values["model"] = _model_for(rest)
    return values


def _messages(option: str, value: Any) -> list[str]:
    """The ConfigError message of each way a config is built: a file's dict, the Python API
    (``TrainConfig(...)`` and ``replace``), ``--set``; each must refuse ``value``."""
    values = _as_dict(option, value)
    builds = [
        lambda: TrainConfig.from_dict(values),
        lambda: TrainConfig().replace(**values),
        lambda: TrainConfig(**{**TrainConfig().to_dict(), **values}),
    ]
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        sets = [f"{option}={value!r}"]
        if option.startswith("model_overrides."):
            sets.append(f"model={json.dumps(values['model'])}")
        builds.append(lambda: TrainConfig().with_sets(sets))
    out = []
    for build in builds:
        with pytest.raises(ConfigError) as err:
            build()
        out.append(str(err.value))
    return out


@pytest.mark.parametrize(("option", "check"), _CASES, ids=[o for o, _ in _CASES])
def test_a_bad_value_of_any_option_is_refused_naming_it_and_its_range(
    option: str, check: Check
) -> None:
    bad = _bad_values(check)
    assert bad or isinstance(check, Either)
    for value in bad:
        for message in _messages(option, value):
            assert f"{option} must be {check.describe()}, found " in message, message
            assert f"--set {option}=" in message and "\n" not in message


@pytest.mark.parametrize(
    ("sets", "option"),
    [
        ("seed=-1", "seed"),
        ("weight_decay=nan", "weight_decay"),
        ("betas=[nan, 0.999]", "betas"),
        ("model_overrides.dropout=2", "model_overrides.dropout"),
        ("batch_size=1e30", "batch_size"),
        ("model_overrides.num_layers=0", "model_overrides.num_layers"),
        ("model_overrides.num_layers=-1", "model_overrides.num_layers"),
        ("grad_clip=nan", "grad_clip"),
        ("min_delta=nan", "min_delta"),
        ("lr=inf", "lr"),
        ("synthetic.missing_rate=1", "synthetic.missing_rate"),
    ],
)
def test_the_issue_values_are_refused_with_the_range(sets: str, option: str) -> None:
    check = FIELD_CHECKS.get(option) or OPTION_CHECKS[option.rpartition(".")[2]]
    with pytest.raises(ConfigError) as err:
        TrainConfig().with_sets([sets])
    message = str(err.value)
    assert f"{option} must be {check.describe()}" in message
    assert f"--set {option}=" in message


def test_the_cli_refuses_before_training_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    for sets in ("grad_clip=nan", "min_delta=nan", 'baseline="nope"', 'run_name="../../x"'):
        argv = ["train", "--epochs", "1", "--out", str(out), "--set", sets, "--quiet"]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("linearcast: error: config: ") and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "x").exists()


def test_the_python_api_refuses_before_training(tmp_path: Path) -> None:
    import linearcast

    for bad in ({"grad_clip": math.nan}, {"seed": -1}, {"model_overrides": {"dropout": 2.0}}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            linearcast.fit(data="synthetic", out_dir=str(tmp_path / "runs"), max_epochs=1, **bad)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("sets", "words"),
    [
        ('baseline="nope"', "baseline must be one of"),
        ('baseline="elinformer"', "baseline must be one of"),  # not a floor: never trained
        ('model="nope"', "unknown model 'nope'"),
        ('protocol="nope"', "unknown protocol 'nope'"),
        ('model_overrides.attention="nope"', "model_overrides.attention must be one of"),
        ('model_overrides.theta="nope"', "model_overrides.theta must be one of"),
        ('model_overrides.impl="fast"', "model_overrides.impl must be one of"),
        ('model_overrides.node_embedding="x"', "model_overrides.node_embedding must be one of"),
        ('data_format="nope"', "data_format must be auto or one of"),
        ('protocol_overrides.split_mode="x"', "split_mode must be"),
    ],
)
def test_names_are_checked_when_the_config_is_built(sets: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        TrainConfig().with_sets([sets])


def test_attention_options_that_cannot_go_together_fail_before_training() -> None:
    with pytest.raises(ConfigError, match="do not go together"):
        TrainConfig().with_sets(['model_overrides.impl="linear"', "model_overrides.clamp=true"])


# ---------------------------------------------------------------------- round trip
_VALID = {
    "batch_size": st.integers(1, 2**31 - 1),
    "lr": st.floats(1e-12, 1e9, allow_nan=False),
    "weight_decay": st.floats(0, 1e9, allow_nan=False),
    "betas": st.lists(st.floats(0, 1, exclude_max=True, allow_nan=False), min_size=2, max_size=2),
    "milestones": st.lists(st.integers(1, 10**6), max_size=4),
    "gamma": st.floats(1e-300, 1e9, allow_nan=False),
    "grad_clip": st.floats(0, 1e9, allow_nan=False),
    "min_delta": st.floats(0, 1e9, allow_nan=False),
    "seed": st.integers(0, 2**32 - 1),
    "patience": st.integers(0, 2**31 - 1),
    "run_name": st.sampled_from(["", "a", "run-1", "r.2", "été"]),
}


@FUZZ
@pytest.mark.fuzz
@given(
    values=st.fixed_dictionaries({}, optional=_VALID),
    dropout=st.floats(0, 1, exclude_max=True, allow_nan=False),
    null_value=st.sampled_from([0.0, -1.0, math.nan]),
    suffix=st.sampled_from([".json", ".toml"]),
)
def test_a_valid_config_saves_and_loads_back_equal(
    values: dict[str, Any], dropout: float, null_value: float, suffix: str
) -> None:
    cfg = TrainConfig(
        **values,
        model_overrides={"dropout": dropout},
        protocol_overrides={"null_value": null_value},
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = cfg.save(Path(tmp) / f"config{suffix}")
        back = TrainConfig.load(path)
        if suffix == ".json":  # standard JSON: no NaN/Infinity tokens
            json.loads(path.read_text(), parse_constant=_no_constant)
    assert back.to_dict() == cfg.to_dict()


def _no_constant(token: str) -> None:
    raise AssertionError(f"non-standard JSON token {token}")


@FUZZ
@pytest.mark.fuzz
@given(value=st.one_of(st.floats(), st.integers(-(2**70), 2**70), st.booleans(), st.text()))
def test_every_value_is_either_refused_or_loads_back(value: Any) -> None:
    """No option ever stores a value its own loader refuses (e.g. grad_clip=nan -> null)."""
    for option in ("grad_clip", "min_delta", "seed", "weight_decay", "batch_size", "gamma"):
        try:
            cfg = TrainConfig.from_dict({option: value})
        except ConfigError as err:
            assert option in str(err)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            assert TrainConfig.load(cfg.save(Path(tmp) / "c.json")) == cfg


# ---------------------------------------------------------------------- run names
@pytest.mark.parametrize(
    "name",
    ["../../x", "..", ".", "a/b", "/tmp/x", "a\\b", "x\x00y", " x", "x\n", "C:x", "é" * 200],
)
def test_a_run_name_is_a_single_directory_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="run_name must be a single directory name"):
        TrainConfig(run_name=name)
    with pytest.raises(ConfigError, match="run_name"):
        create_run_dir(tmp_path / "runs", "m", "d", name=name)  # the engine's own check
    assert not any(p for p in tmp_path.rglob("*") if p.name not in ("runs",))


@FUZZ
@pytest.mark.fuzz
@given(name=st.text(min_size=1, max_size=40))
def test_an_accepted_run_name_makes_a_directory_directly_inside_out(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "runs"
        try:
            path = create_run_dir(parent, "m", "d", name=name)
        except ConfigError:
            return
        assert path.resolve().parent == parent.resolve() and path.name == name
        assert [p.name for p in Path(tmp).iterdir()] == ["runs"]


def test_a_run_name_symlinked_out_of_out_is_refused(tmp_path: Path) -> None:
    parent, outside = tmp_path / "runs", tmp_path / "elsewhere"
    parent.mkdir()
    outside.mkdir()
    (parent / "link").symlink_to(outside)
    with pytest.raises(ConfigError):
        create_run_dir(parent, "m", "d", name="link")
    assert list(outside.iterdir()) == []
    check_run_name("link")  # a plain name; the directory check is what refuses it


# ---------------------------------------------------------------------- resume
def _finished_run(path: Path, cfg: TrainConfig, metrics: str) -> Path:
    path.mkdir(parents=True)
    cfg.save(path / "config.json")
    (path / "last.ckpt").write_bytes(b"")  # resume_dir only checks that it is there
    (path / "metrics.json").write_text(metrics)
    (path / "history.csv").write_text("epoch\n1\n")
    return path


@pytest.mark.parametrize(
    "metrics",
    [
        '{"epochs": Infinity}',
        '{"epochs": -Infinity}',
        '{"epochs": NaN}',
        '{"epochs": 1e400}',
        '{"epochs": -3}',
        '{"epochs": "many"}',
        '{"epochs": 2.5}',
        "[1, 2]",
        "not json",
        '{"epochs": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_a_damaged_earlier_result_never_fails_the_end_of_a_resume(
    tmp_path: Path, metrics: str
) -> None:
    run = _finished_run(tmp_path / "r", TrainConfig(), metrics)
    kept = keep_earlier_result(run)  # what a resumed run does at its end, after training
    assert kept == run / "metrics.0.json" and kept.read_text() == metrics
    assert (run / "history.0.csv").is_file() and not (run / "metrics.json").exists()


def test_an_earlier_result_keeps_its_epoch_count(tmp_path: Path) -> None:
    run = _finished_run(tmp_path / "r", TrainConfig(), '{"epochs": 7}')
    assert keep_earlier_result(run) == run / "metrics.7.json"


def test_a_result_file_that_cannot_be_replaced_is_refused_before_training(tmp_path: Path) -> None:
    run = _finished_run(tmp_path / "r", TrainConfig(), "{}")
    (run / "metrics.json").unlink()
    (run / "metrics.json").mkdir()
    with pytest.raises(ConfigError, match=r"metrics\.json: expected a regular file"):
        check_resumable(run)
    with pytest.raises(ConfigError, match=r"metrics\.json"):
        resume_dir(TrainConfig(resume=str(run)))


@pytest.mark.parametrize(
    "change",
    [{"model": "staeformer"}, {"data_options": {"freq_minutes": 5}}, {"synthetic": {"days": 3}}],
)
def test_a_config_of_another_run_cannot_resume_it(tmp_path: Path, change: dict[str, Any]) -> None:
    run = _finished_run(tmp_path / "r", TrainConfig(max_epochs=1), '{"epochs": 1}')
    before = (run / "config.json").read_bytes()
    with pytest.raises(ConfigError, match="cannot resume this run with another"):
        resume_dir(TrainConfig.from_dict({**change, "resume": str(run)}))
    assert (run / "config.json").read_bytes() == before
    # the same run with more epochs and other devices continues
    same = TrainConfig(max_epochs=5, num_workers=1, resume=str(run))
    assert resume_dir(same) == run


def test_a_config_file_cannot_resume_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _finished_run(tmp_path / "r", TrainConfig(max_epochs=1), '{"epochs": 1}')
    before = (run / "config.json").read_bytes()
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text(f'resume = {json.dumps(str(run))}\nmodel = "staeformer"\n')
    out = tmp_path / "out"
    argv = ["train", "--config", str(cfg_file), "--out", str(out), "--quiet", "--epochs", "1"]
    assert main(argv) == 1
    assert "a config file cannot set resume" in capsys.readouterr().err
    assert main(["train", "--set", f"resume={json.dumps(str(run))}", "--epochs", "1"]) == 1
    assert "--set resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--out", str(out)]) == 1
    assert "drop --preset/--config/--out/--run-name" in capsys.readouterr().err
    assert (run / "config.json").read_bytes() == before and not out.exists()


def test_adam_eps_reaches_the_optimizer_and_is_range_checked() -> None:
    from torch import nn

    from linearcast.engine.config import TrainConfig
    from linearcast.engine.setup import make_optimizer
    from linearcast.errors import ConfigError

    for name in ("adam", "adamw"):
        opt = make_optimizer(TrainConfig(optimizer=name, adam_eps=1e-3), nn.Linear(2, 2))
        assert opt.param_groups[0]["eps"] == 1e-3
    for bad in (0.0, -1e-3, float("nan"), 2.0):
        with pytest.raises(ConfigError, match="adam_eps"):
            TrainConfig(adam_eps=bad)
