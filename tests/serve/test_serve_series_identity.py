"""Forecasts about the right series: a run records its series names, new data is matched to
them by name (any column or row order), and names that are not the run's are refused."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import linearcast
from linearcast.cli import main
from linearcast.data import synthetic_traffic
from linearcast.engine import TrainConfig, train
from linearcast.engine.checkpoint import atomic_save, load_checkpoint
from linearcast.engine.series_identity import SERIES_FILE
from linearcast.errors import ConfigError, DataError
from linearcast.serve.forecast import forecast_run

_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "25"))
_SETTINGS = settings(
    max_examples=_EXAMPLES,
    derandomize="LINEARCAST_HYPOTHESIS_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny: Callable[..., TrainConfig]) -> Path:
    """A tiny ELinFormer (per-node embeddings) on 6 synthetic sensors S0000..S0005."""
    out = tmp_path_factory.mktemp("series") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(tiny(out, tensorboard=False), verbose=False, report=False).run_dir
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    """The run's own data, last 30 steps, as a wide frame (DatetimeIndex x S0000..S0005)."""
    ds = synthetic_traffic(num_nodes=6, days=3, seed=1)
    idx = pd.date_range(ds.start, periods=ds.num_steps, freq="5min")
    assert ds.node_names is not None
    return pd.DataFrame(ds.values[..., 0], index=idx, columns=ds.node_names).iloc[-30:]


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.rename_axis("ds")
        .reset_index()
        .melt(id_vars="ds", var_name="unique_id", value_name="y")[["unique_id", "ds", "y"]]
    )


def _forecast(run_dir: Path, data: object) -> pd.DataFrame:
    fc = forecast_run(run_dir, data, accelerator="cpu")
    return fc.to_frame().sort_values(["unique_id", "ds"]).reset_index(drop=True)


def test_the_run_records_its_series_in_order(run: Path, wide: pd.DataFrame) -> None:
    record = json.loads((run / SERIES_FILE).read_text())
    assert record["names"] == list(wide.columns) and record["num_nodes"] == 6


def test_reordered_columns_forecast_the_same(run: Path, wide: pd.DataFrame) -> None:
    """Before: the columns were taken by position, so each name got another series' forecast."""
    ref = _forecast(run, wide)
    moved = wide[list(reversed(wide.columns))]
    got = _forecast(run, moved)
    pd.testing.assert_frame_equal(got, ref)
    # and the forecast follows the series: swapping two series' values swaps their forecasts
    assert not np.allclose(
        ref[ref.unique_id == "S0000"].y_hat.to_numpy(),
        ref[ref.unique_id == "S0005"].y_hat.to_numpy(),
    )


@pytest.mark.fuzz
@_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), by_id=st.booleans())
def test_long_frame_rows_in_any_order_forecast_the_same(
    run: Path, wide: pd.DataFrame, seed: int, by_id: bool
) -> None:
    """Rows shuffled (or sorted by unique_id as neuralforecast does, with the series in another
    order): identical forecasts to the frame in the run's order."""
    long = _long(wide)
    ref = _forecast(run, long)
    rng = np.random.default_rng(seed)
    names = list(wide.columns)
    if by_id:  # series in a random order, each sorted by time
        order = {n: i for i, n in enumerate(rng.permutation(names))}
        shuffled = long.sort_values(["unique_id", "ds"], key=lambda c: c.map(order) if
                                    c.name == "unique_id" else c)  # fmt: skip
    else:
        shuffled = long.iloc[rng.permutation(len(long))]
    pd.testing.assert_frame_equal(_forecast(run, shuffled), ref)


def test_series_that_are_not_the_runs_are_refused(run: Path, wide: pd.DataFrame) -> None:
    renamed = wide.rename(columns={"S0003": "sensor-3"})
    with pytest.raises(DataError, match=r"expected the 6 series.*'S0000'.*found 6 series.*"
                       r"missing \['S0003'\].*not in the run \['sensor-3'\]"):  # fmt: skip
        forecast_run(run, renamed, accelerator="cpu")
    with pytest.raises(DataError, match=r"missing \['S0005'\]"):
        forecast_run(run, wide.drop(columns="S0005"), accelerator="cpu")
    with pytest.raises(DataError, match=r"not in the run \['extra'\]\); leave the extra series "
                       r"out \(drop \['extra'\] from the frame\)\.$"):  # fmt: skip
        forecast_run(run, wide.assign(extra=1.0), accelerator="cpu")


def test_the_suggested_drop_of_extra_series_forecasts_as_the_runs_own(
    run: Path, wide: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, extra = tmp_path / "plain.csv", tmp_path / "extra.csv"
    frame = wide.rename_axis("date").reset_index()
    frame.to_csv(plain, index=False)
    frame.assign(No=range(len(frame)), flag=1.0).to_csv(extra, index=False)
    assert main(["forecast", str(run), "--data", str(extra), "--out", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    fix = re.search(r"--set '([^']*)'", err)
    assert fix is not None and fix[1] == "data_options.drop=[No,flag]"
    outs = []
    for src, sets in ((plain, []), (extra, ["--set", fix[1]])):
        out = tmp_path / f"{src.stem}-next.csv"
        assert main(["forecast", str(run), "--data", str(src), "--out", str(out), *sets]) == 0
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])


def test_cli_file_with_a_column_moved_first(
    run: Path, wide: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ETT case (OT moved to the first column): same forecasts, labelled by name."""
    straight, moved = tmp_path / "straight.csv", tmp_path / "moved.csv"
    frame = wide.rename_axis("date").reset_index()
    frame.to_csv(straight, index=False)
    frame[["date", "S0005", *wide.columns[:5]]].to_csv(moved, index=False)
    outs = []
    for src in (straight, moved):
        out = tmp_path / f"{src.stem}-next.csv"
        assert main(["forecast", str(run), "--data", str(src), "--out", str(out)]) == 0
        outs.append(pd.read_csv(out).sort_values(["unique_id", "ds"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"S0005": "OT"}).to_csv(renamed, index=False)
    capsys.readouterr()
    assert main(["forecast", str(run), "--data", str(renamed)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("linearcast: ") and "renamed.csv" in err and "'OT'" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("damage", ["removed", "damaged"])
def test_a_run_whose_series_file_is_gone_still_matches_by_name(
    run: Path, wide: pd.DataFrame, tmp_path: Path, damage: str
) -> None:
    # following "delete it" used to give forecasts matched by position without a word
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    if damage == "removed":
        (copy / SERIES_FILE).unlink()
    else:
        (copy / SERIES_FILE).write_bytes(b"\x8d{")
    moved = wide[wide.columns[::-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _forecast(copy, moved)
    pd.testing.assert_frame_equal(got, _forecast(run, wide))


def test_a_run_without_names_works_by_position_and_says_so_once(
    run: Path, wide: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    (old / SERIES_FILE).unlink()
    for name in ("best.ckpt", "last.ckpt"):  # written before checkpoints kept the names too
        ckpt = load_checkpoint(old / name)
        del ckpt["meta"]["series"]
        atomic_save(ckpt, old / name)
    data = tmp_path / "recent.csv"
    wide.rename_axis("date").reset_index().to_csv(data, index=False)
    assert main(["forecast", str(old), "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert err.count("linearcast: warning:") == 1 and "records no series names" in err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _forecast(old, wide)
    assert sum("records no series names" in str(w.message) for w in caught) == 1
    pd.testing.assert_frame_equal(got, _forecast(run, wide))


def test_unnamed_data_is_taken_by_position_with_a_note(run: Path, wide: pd.DataFrame) -> None:
    with pytest.warns(UserWarning, match="no series names.*by position"):
        fc = forecast_run(run, wide.to_numpy(), data_options={"freq_minutes": 5,
                          "start": wide.index[0]}, accelerator="cpu")  # fmt: skip
    assert fc.node_names == list(wide.columns)
    with pytest.raises(DataError, match=r"expected the run's 6 series.*found 5 unnamed"):
        forecast_run(run, wide.to_numpy()[:, :5], data_options={"freq_minutes": 5,
                     "start": wide.index[0]}, accelerator="cpu")  # fmt: skip


def test_forecast_h_truncates_and_refuses_more(run: Path, wide: pd.DataFrame) -> None:
    r = linearcast.load_run(run)
    full = r.forecast(wide, accelerator="cpu")
    five = r.forecast(wide, h=5, accelerator="cpu")
    assert len(five) == 5 * 6 and five.attrs["units"] == "data units"
    head = full.groupby("unique_id", sort=False).head(5).reset_index(drop=True)
    pd.testing.assert_frame_equal(five, head)
    with pytest.raises(ConfigError, match=r"forecasts 12 steps.*found horizon \(h\) 24.*"
                       r"--set protocol_overrides.out_steps=24"):  # fmt: skip
        r.forecast(wide, h=24)
    with pytest.raises(ConfigError, match=r"horizon .h. expected a whole number"):
        r.forecast(wide, h=0)
    with pytest.raises(ConfigError, match=r"unknown option 'horizn'"):
        r.forecast(wide.to_numpy(), horizn=3)
    with pytest.raises(ConfigError, match=r"Run.predict\(\): unknown option 'h'"):
        r.predict(wide, h=3)


def test_forecast_output_is_checked_first_and_written_whole(
    run: Path, wide: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = linearcast.load_run(run)
    with pytest.raises(ConfigError, match=r"expected a folder .*missing to write.*found nothing"):
        r.forecast(wide, out=tmp_path / "missing" / "next.csv")
    with pytest.raises(ConfigError, match="found a directory"):
        r.forecast(wide, out=tmp_path)
    assert main(["forecast", str(run), "--data", "x.csv", "--out", str(tmp_path)]) == 1

    def broken(self: pd.DataFrame, path: object, **kwargs: object) -> None:
        Path(str(path)).write_bytes(b"")  # what an interrupted writer leaves
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    target = tmp_path / "out" / "next.csv"
    target.parent.mkdir()
    with pytest.raises(ConfigError, match=r"could not write.*disk full"):
        r.forecast(wide, out=target, accelerator="cpu")
    assert list(target.parent.iterdir()) == []  # neither the target nor a temp file


def test_the_python_api_replaces_an_output_only_when_told_and_never_a_runs_file(
    run: Path, wide: pd.DataFrame, tmp_path: Path
) -> None:
    r = linearcast.load_run(run)
    mine = tmp_path / "next.csv"
    mine.write_text("kept\n")
    with pytest.raises(ConfigError, match=r"already exists and is kept; pass --overwrite"):
        r.forecast(wide, out=mine, accelerator="cpu")
    assert mine.read_text() == "kept\n"
    r.forecast(wide, out=mine, overwrite=True, accelerator="cpu")
    assert mine.read_text().startswith("unique_id,ds,y_hat")
    kept = tmp_path / "p.npy"
    kept.write_bytes(b"kept")
    with pytest.raises(ConfigError, match=r"already exists and is kept"):
        r.predict(out=kept, accelerator="cpu")
    assert kept.read_bytes() == b"kept"
    r.predict(out=kept, overwrite=True, accelerator="cpu")
    assert kept.read_bytes() != b"kept"
    history = run / "history.csv"
    before = history.read_bytes()
    for attempt in (lambda: r.forecast(wide, out=history, overwrite=True, accelerator="cpu"),
                    lambda: r.predict(out=run / "intervals.npz", overwrite=True)):  # fmt: skip
        with pytest.raises(ConfigError, match=r"never overwritten, not even with --overwrite"):
            attempt()
    assert history.read_bytes() == before


@pytest.mark.parametrize("odd", ["c,d", "true", "it's", "[x]", "Zürich 2", "12"])
def test_the_suggested_drop_works_for_any_series_name(
    run: Path, wide: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str], odd: str
) -> None:
    frame = wide.rename_axis("date").reset_index()
    plain, extra = tmp_path / "plain.csv", tmp_path / "extra.csv"
    frame.to_csv(plain, index=False)
    frame.assign(**{odd: 1.0}).to_csv(extra, index=False)
    assert main(["forecast", str(run), "--data", str(extra), "--out", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err
    said = err[err.index("out with --set ") + len("out with --set ") :].strip()
    assert said.endswith(".")
    (arg,) = shlex.split(said[:-1])  # as a shell passes it
    outs = []
    for src, sets in ((plain, []), (extra, ["--set", arg])):
        out = tmp_path / f"{src.stem}-next.csv"
        assert main(["forecast", str(run), "--data", str(src), "--out", str(out), *sets]) == 0
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])


def test_non_finite_forecasts_are_refused_naming_the_series(
    run: Path, wide: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import linearcast.serve.forecast as fmod

    real = fmod._run_best_weights

    def nan_at_s2(*args: object, **kwargs: object) -> np.ndarray:
        values = real(*args, **kwargs)  # type: ignore[arg-type]
        values[:, 2] = np.nan
        return values

    monkeypatch.setattr(fmod, "_run_best_weights", nan_at_s2)
    with pytest.raises(DataError, match=r"non-finite values \(NaN/inf\) for series 'S0002' "
                       r"\(1 of 6\)"):  # fmt: skip
        forecast_run(run, wide[list(reversed(wide.columns))], accelerator="cpu")


@pytest.mark.parametrize(
    "series",
    [["a"], ["a"] * 6, [1, 2, 3, 4, 5, 6], "S0000"],
    ids=["short", "repeated", "ints", "str"],
)
def test_a_checkpoint_whose_series_are_altered_is_refused(
    run: Path, tmp_path: Path, series: object
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    ckpt = load_checkpoint(copy / "best.ckpt")
    ckpt["meta"]["series"] = series
    atomic_save(ckpt, copy / "best.ckpt")
    with pytest.raises(ConfigError, match=r"best\.ckpt: .*meta\.series is .*expected 6 distinct"):
        load_checkpoint(copy / "best.ckpt")


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["S0005", "S0001", "S0002", "S0003", "S0004", "S0000"],
         r"the same names in another order, 2 moved, first 'S0005'"),
        (["S0000", "S0001", "S0002", "S0003", "S0004", "other"],
         r"names not in the checkpoint \['other'\]"),
    ],
    ids=["permuted", "renamed"],
)  # fmt: skip
def test_an_edited_series_file_that_disagrees_with_the_checkpoint_is_refused(
    run: Path, wide: pd.DataFrame, tmp_path: Path, names: list[str], said: str
) -> None:
    """Before: a valid but permuted series.json relabelled the forecasts (s0's went out as s2's)
    without a word; the checkpoint's meta.series is what the weights were trained on."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / SERIES_FILE).write_text(json.dumps({"identity": "names", "num_nodes": 6,
                                                "names": names}))  # fmt: skip
    with pytest.raises(ConfigError) as err:
        forecast_run(copy, wide, accelerator="cpu")
    text = str(err.value)
    assert re.fullmatch(
        rf"{re.escape(str(copy / SERIES_FILE))}: expected the series that "
        rf"{re.escape(str(copy / 'best.ckpt'))} records in meta\.series \(6 series \['S0000', .*"
        rf"\), found 6 series .* \({said}\); delete series\.json \(the checkpoint's copy is then "
        rf"used\) or restore it from a copy of the run\.",
        text,
    ), text
    # following the advice gives the intact run's forecasts, labelled as it labels them
    (copy / SERIES_FILE).unlink()
    pd.testing.assert_frame_equal(_forecast(copy, wide), _forecast(run, wide))


def test_an_intact_series_file_is_still_trusted_with_the_checkpoint_loaded_once(
    run: Path,
) -> None:
    from linearcast.engine.series_identity import read_series

    meta = load_checkpoint(run / "best.ckpt")["meta"]
    got = read_series(run, meta)
    assert got is not None and got.names == meta["series"] and got.num_nodes == 6
    assert read_series(run) == got


def _renamed_run(run: Path, to: Path, names: list[str]) -> Path:
    """A copy of ``run`` whose recorded series are ``names`` (file and checkpoints)."""
    shutil.copytree(run, to)
    for ckpt_name in ("best.ckpt", "last.ckpt"):
        ckpt = load_checkpoint(to / ckpt_name)
        ckpt["meta"]["series"] = names
        atomic_save(ckpt, to / ckpt_name)
    record = {"identity": "names", "num_nodes": len(names), "names": names}
    (to / SERIES_FILE).write_text(json.dumps(record))
    return to


def test_names_that_differ_only_in_unicode_normalisation_are_the_same_series(
    run: Path, wide: pd.DataFrame, tmp_path: Path
) -> None:
    """Before: 'café' typed as NFD (e + combining accent, as macOS writes it) against the run's
    NFC 'café' gave "missing ['café'], not in the run ['café']"."""
    import unicodedata

    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    names = [nfc, *wide.columns[1:]]
    renamed = _renamed_run(run, tmp_path / "cafe", names)
    same = wide.set_axis(names, axis=1)
    ref = _forecast(renamed, same)
    # the NFD column moved last: matched to the run's first series by name, labelled as the run
    moved = same.rename(columns={nfc: nfd})[[*names[1:], nfd]]
    got = _forecast(renamed, moved)
    pd.testing.assert_frame_equal(got, ref)
    assert set(got.unique_id) == set(names)
    # two columns equal under NFC are one series given twice
    both = same.assign(**{nfd: same[nfc]})
    with pytest.raises(DataError, match=r"found 2 repeated .*\(equal in Unicode NFC form\)"):
        forecast_run(renamed, both, accelerator="cpu")


def test_the_suggested_drop_repeats_the_runs_own_drop_list(
    tmp_path: Path, tiny: Callable[..., TrainConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a run trained with data_options.drop=[kind] on a file, asked to forecast a file
    with a row-number column too, said --set drop=[No] "with any series the run's own drop list
    names", so pasting it dropped No but read kind again."""
    rng = np.random.default_rng(0)
    rows = 120
    frame = pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=rows, freq="h"),
        **{f"s{i}": 50 + rng.standard_normal(rows).cumsum() for i in range(3)},
        "kind": "a",
    })  # fmt: skip
    own = tmp_path / "own.csv"
    frame.to_csv(own, index=False)
    cfg = tiny(tmp_path / "runs", model="last-value", model_overrides={}, data=str(own),
               data_options={"drop": "[kind]"}, protocol="ltsf",
               protocol_overrides={"in_steps": 24, "out_steps": 6}, loss="mse",
               tensorboard=False, baseline="")  # fmt: skip
    run_dir = train(cfg, verbose=False, report=False).run_dir
    plain, numbered = tmp_path / "plain.csv", tmp_path / "numbered.csv"
    frame.tail(30).to_csv(plain, index=False)
    frame.tail(30).assign(No=range(90, 120)).to_csv(numbered, index=False)
    assert main(["forecast", str(run_dir), "--data", str(numbered)]) == 1
    err = capsys.readouterr().err
    assert "--set 'data_options.drop=[kind,No]' (the drop list the file was read with" in err
    assert len(err.strip().splitlines()) == 1
    outs = []
    for src, sets in ((plain, []), (numbered, ["--set", "data_options.drop=[kind,No]"])):
        out = tmp_path / f"{src.stem}-next.csv"
        assert main(["forecast", str(run_dir), "--data", str(src), "--out", str(out), *sets]) == 0
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])
