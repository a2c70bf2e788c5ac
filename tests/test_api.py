"""The Python API (``linearcast.fit``, ``Run``, ``linearcast.load_run``) and the README's quick
start, which is executed as it stands."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import linearcast
from linearcast.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = {"input_embedding_dim": 4, "tod_embedding_dim": 4, "dow_embedding_dim": 4,
        "adaptive_embedding_dim": 4, "feed_forward_dim": 16, "num_layers": 1}  # fmt: skip


def _frame(days: int = 3, n: int = 4) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=days * 288, freq="5min")
    t = np.arange(len(idx))
    rng = np.random.default_rng(0)
    cols = {f"road{i}": 200 + 80 * np.sin(2 * np.pi * t / 288 - i) + rng.normal(0, 5, len(t))
            for i in range(n)}  # fmt: skip
    return pd.DataFrame(cols, index=idx)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[linearcast.Run, pd.DataFrame]:
    df = _frame()
    out = tmp_path_factory.mktemp("api") / "runs"
    with _one_thread():
        run = linearcast.fit(model="elinformer", data=df, protocol="pems", epochs=1,
                             model_overrides=TINY, max_train_batches=3, accelerator="cpu",
                             out_dir=str(out), plots=False, tensorboard=False)  # fmt: skip
    return run, df


def test_import_linearcast_loads_neither_torch_nor_pandas() -> None:
    code = (
        "import sys, linearcast; "
        "print([m for m in ('torch', 'pandas', 'numpy', 'linearcast.api') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(linearcast.fit) and linearcast.load_run is not None  # lazily resolved


def test_fit_on_a_dataframe_records_its_shape(fitted: tuple[linearcast.Run, pd.DataFrame]) -> None:
    run, _ = fitted
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["data"] == "<DataFrame [864, 4]>"
    assert config["max_epochs"] == 1 and config["model_overrides"] == TINY
    assert run.metrics["dataset"]["shape"] == [864, 4, 1]
    assert len(run.history) == 1 and run.history[0]["epoch"] == 1


def test_run_evaluate_predict_forecast(fitted: tuple[linearcast.Run, pd.DataFrame]) -> None:
    run, df = fitted
    res = run.evaluate(accelerator="cpu")
    assert res["metrics"]["overall"]["MAE"] == pytest.approx(run.metrics["test"]["overall"]["MAE"])
    pred = run.predict(accelerator="cpu")
    assert pred.shape == (run.metrics["test_windows"], 12, 4, 1)
    future = run.forecast(df.tail(20), accelerator="cpu")
    assert list(future.columns) == ["unique_id", "ds", "y_hat"]
    assert len(future) == 12 * 4 and set(future["unique_id"]) == set(df.columns)
    assert future["ds"].min() == df.index[-1] + pd.Timedelta(minutes=5)
    # an array forecasts the same once told its calendar
    arr = run.forecast(df.tail(20).to_numpy(), freq_minutes=5, start=df.index[-20],
                       accelerator="cpu")  # fmt: skip
    np.testing.assert_allclose(arr["y_hat"], future["y_hat"], rtol=1e-6)


def test_reloaded_run_needs_the_data_again(fitted: tuple[linearcast.Run, pd.DataFrame]) -> None:
    run, df = fitted
    again = linearcast.load_run(run.run_dir)
    assert again.config.model == "elinformer"
    with pytest.raises(ConfigError, match=r"<DataFrame \[864, 4\]>.*pass the data again"):
        again.evaluate(accelerator="cpu")
    res = again.evaluate(df, accelerator="cpu")
    assert res["metrics"]["overall"]["MAE"] == pytest.approx(run.metrics["test"]["overall"]["MAE"])


def test_long_frame_and_unknown_option(tmp_path: Path) -> None:
    wide = _frame(days=3, n=2)
    long = wide.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id",
                                                    value_name="y")  # fmt: skip
    with pytest.raises(ConfigError, match="unknown option 'epoch'"):
        linearcast.fit(data=long, epoch=1)
    run = linearcast.fit(model="last-value", data=long, out_dir=str(tmp_path), plots=False,
                         accelerator="cpu")  # fmt: skip
    assert run.metrics["dataset"]["shape"] == [864, 2, 1]
    future = run.forecast(long[long["ds"] >= wide.index[-12]], accelerator="cpu")
    last = wide.iloc[-1]
    for name in wide.columns:  # last value: the last reading, repeated, in data units
        got = future.loc[future["unique_id"] == name, "y_hat"].to_numpy()
        np.testing.assert_allclose(got, np.full(12, last[name]), rtol=1e-5)


def _readme_block(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.S)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


def test_readme_python_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _readme_block("## Python")
    assert len(code.strip().splitlines()) <= 15
    monkeypatch.chdir(tmp_path)  # it writes runs/ where it is run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    text = out.getvalue()
    assert "MAE" in text and "y_hat" in text
    assert len(list((tmp_path / "runs").iterdir())) == 1
