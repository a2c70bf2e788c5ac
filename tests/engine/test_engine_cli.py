"""The train / evaluate / predict / models / bench commands through ``linearcast.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from linearcast.cli import main
from linearcast.metrics import masked_mae
from linearcast.models import REGISTRY

TINY_SETS = [
    "--set",
    "model_overrides={input_embedding_dim=4, tod_embedding_dim=4, dow_embedding_dim=4, "
    "adaptive_embedding_dim=4, feed_forward_dim=16, num_layers=1}",
    "--set",
    "synthetic.num_nodes=6",
    "--set",
    "synthetic.days=3",
]


@pytest.mark.parametrize(
    ("command", "must_mention"),
    [
        (
            ["train"],
            [
                "--model",
                "--data",
                "--protocol",
                "--preset",
                "--config",
                "--set",
                "--epochs",
                "--batch-size",
                "--devices",
                "--strategy",
                "--precision",
                "--accelerator",
                "--num-nodes",
                "--out",
                "--resume",
                "--max-train-batches",
                "--quiet",
                "staeformer-pems08",
                "basicts-pems07",
                "samovar-ett",
                "demo",
            ],
        ),
        (["evaluate"], ["RUN_DIR", "--data", "--split"]),
        (["predict"], ["RUN_DIR", "--out", "--data", ".npz"]),
        (
            ["forecast"],
            ["RUN_DIR", "--data", "--out", "--set", "--format", "unique_id, ds, y_hat", ".npz"],
        ),
        (["export"], ["RUN_DIR", "--onnx", "data units", "1e-4"]),
        (["models"], ["--family", "--json"]),
        (["demo"], ["--out", "--quiet", "last-value"]),
        (["bench", "eala-accuracy"], ["--n", "--out"]),
    ],
)
def test_help_explains_options_with_an_example(
    command: list[str], must_mention: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "Example" in text
    for word in must_mention:
        assert word in text, word


def test_top_level_help_lists_the_commands_with_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("train", "evaluate", "predict", "forecast", "export", "data", "bench"):
        assert f"\n    {command} " in text, command
    assert "Examples" in text and "linearcast forecast " in text and "--onnx" in text
    assert "tensorboard --logdir runs" in text


def test_models_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name, spec in REGISTRY.items():
        assert name in text and spec.description in text
    assert main(["models", "--json", "--family", "baseline"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == {n for n, s in REGISTRY.items() if s.family == "baseline"}
    assert all(set(r) >= {"family", "needs_graph", "fixed_num_nodes"} for r in rows)


def test_train_evaluate_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    argv = ["train", "--model", "elinformer", *TINY_SETS, "--epochs", "1"]
    argv += ["--max-train-batches", "3", "--batch-size", "32", "--accelerator", "cpu"]
    argv += ["--out", str(out), "--run-name", "cli", "--quiet", "--set", "plots=false"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    run = out / "cli"
    assert "horizon 12" in text and "last-value" in text and str(run) in text
    metrics = json.loads((run / "metrics.json").read_text())

    assert main(["evaluate", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key, values in metrics["test"].items():
        for name, value in values.items():
            assert res["metrics"][key][name] == pytest.approx(value, rel=1e-6), (key, name)
    base = metrics["baseline"]["test"]
    assert res["baseline"]["test"]["overall"] == pytest.approx(base["overall"], rel=1e-9)

    npz = tmp_path / "pred.npz"
    assert main(["predict", str(run), "--out", str(npz)]) == 0
    arrays = np.load(npz)
    assert arrays["prediction"].shape == (149, 12, 6, 1) == arrays["target"].shape
    assert arrays["start"].shape == (149,)
    mae = float(masked_mae(arrays["prediction"], arrays["target"], 0.0))
    assert mae == pytest.approx(metrics["test"]["overall"]["MAE"], rel=1e-5)
    npy = tmp_path / "pred.npy"
    assert main(["predict", str(run), "--out", str(npy), "--split", "val"]) == 0
    assert np.load(npy).shape == (149, 12, 6, 1)

    assert main(["bench", "attention-profile", str(run), "--max-sequences", "3"]) == 0
    text = capsys.readouterr().out
    assert "attn_layers_t.0.attn.kernel | 12 |" in text
    assert "attn_layers_s.0.attn.kernel | 6 |" in text


def test_print_config_resolves_preset_file_and_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('preset = "staeformer-pems08"\nmodel = "elinformer"\nlr = 5e-4\n')
    argv = ["train", "--config", str(cfg_file), "--data", "x.npz", "--epochs", "3"]
    assert main([*argv, "--set", "lr=2e-4", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["model"], cfg["data"], cfg["max_epochs"], cfg["lr"]) == (
        "elinformer",
        "x.npz",
        3,
        2e-4,
    )
    assert cfg["milestones"] == [25, 45, 65]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "nope"], "unknown model 'nope'"),
        (["train", "--set", "lr=fast"], "cannot parse 'fast' as a value; lr expects a number"),
        (["train", "--preset", "staeformer-pems08"], "no dataset given"),
        (["train", "--data", "missing.npz"], "dataset not found"),
        (["train", "--resume", "nowhere"], "not a run directory"),
        (["train", "--strategy", "fsdp"], "not supported"),
        (["train", "--precision", "float7"], "cannot set up"),
        (["evaluate", "nowhere"], "run directory not found"),
        (["predict", "nowhere", "--out", "p.csv"], "ending in .npy, .npz"),
    ],
)
def test_bad_input_is_one_line_error(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*argv, *(["--out", "runs"] if argv[0] == "train" else [])]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("linearcast: error:") and message in err
    assert "\n" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bench_eala_accuracy_prints_its_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "eala-accuracy", "--n", "128", "--out", str(tmp_path)]
    argv += ["--keys", "96", "--queries", "8", "--sigmas", "0.1", "2"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "relative output error" in text and "| 128 |" in text and "N=96" in text
    # one accuracy-table row per requested σ
    table = text.split("| score σ")[1].split("\n\n")[0].strip().splitlines()
    assert len(table) == 2 + 2  # header rest, separator, two rows
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("bench-eala-accuracy-")
    assert (run / "eala_vs_softmax.png").is_file() and (run / "tables.md").is_file()


def test_resume_from_the_command_line_extends_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    argv = ["train", *TINY_SETS, "--epochs", "1", "--max-train-batches", "2", "--quiet"]
    argv += ["--accelerator", "cpu", "--out", str(out), "--run-name", "r", "--set", "plots=false"]
    assert main(argv) == 0
    run = out / "r"
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert "r" == next(out.iterdir()).name and len(list(out.iterdir())) == 1  # same directory
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert json.loads((run / "config.json").read_text())["max_epochs"] == 2
    assert (run / "history.csv").read_text().count("\n") == 3  # header + 2 epochs
