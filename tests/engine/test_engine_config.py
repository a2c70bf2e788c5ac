"""TrainConfig: presets match the documented protocols; files and --set round-trip, fail clearly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from linearcast.engine.config import PRESETS, TrainConfig, parse_value, preset, to_toml
from linearcast.errors import ConfigError
from linearcast.models import REGISTRY

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# staeformer.md: dataset -> (weight decay, milestones, max epochs, patience)
STAEFORMER_TABLE = {
    "metr-la": (3e-4, [20, 30], 200, 30),
    "pems-bay": (1e-4, [10, 30], 300, 20),
    "pems03": (5e-4, [15, 30, 40], 300, 20),
    "pems04": (5e-4, [15, 30, 50], 300, 20),
    "pems07": (1e-3, [15, 35, 50], 300, 20),
    "pems08": (1.5e-3, [25, 45, 65], 300, 30),
}


@pytest.mark.parametrize("dataset", sorted(STAEFORMER_TABLE))
def test_staeformer_presets_follow_the_official_table(dataset: str) -> None:
    cfg = preset(f"staeformer-{dataset}")
    wd, milestones, epochs, patience = STAEFORMER_TABLE[dataset]
    assert (cfg.weight_decay, cfg.milestones, cfg.max_epochs, cfg.patience) == (
        wd,
        milestones,
        epochs,
        patience,
    )
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.batch_size) == ("staeformer", "adam", 1e-3, 16)
    assert (cfg.scheduler, cfg.gamma) == ("multistep", 0.1)
    if dataset.startswith("pems0"):
        # the official code: nn.HuberLoss() on PEMS0x (unmasked), split by windows
        assert (cfg.loss, cfg.mask_loss, cfg.protocol) == ("huber", False, "pems-staeformer")
    else:
        assert (cfg.loss, cfg.mask_loss, cfg.protocol) == ("masked_mae", True, "metr-staeformer")
    assert cfg.data == ""  # a real dataset must be named


def test_basicts_and_samovar_presets() -> None:
    for name in ("basicts-pems03", "basicts-pems04", "basicts-pems07", "basicts-pems08"):
        cfg = preset(name)
        assert (cfg.loss, cfg.max_epochs, cfg.weight_decay, cfg.milestones) == (
            "masked_mae",
            100,
            3e-4,
            [20, 25],
        )
        assert cfg.batch_size == (8 if name.endswith("07") else 16)
    for name in ("samovar-ett", "samovar-ltsf"):
        cfg = preset(name)
        assert (cfg.optimizer, cfg.lr, cfg.betas, cfg.weight_decay) == (
            "adamw",
            6e-4,
            [0.9, 0.95],
            0.1,
        )
        assert (cfg.scheduler, cfg.onecycle_pct_start, cfg.grad_clip, cfg.patience) == (
            "onecycle",
            0.05,
            1.0,
            12,
        )
        assert cfg.loss == "mse" and cfg.protocol_overrides == {"in_steps": 1024, "out_steps": 96}


def test_demo_preset_uses_elinformer_on_synthetic_data() -> None:
    cfg = preset("demo")
    assert (cfg.model, cfg.data) == ("elinformer", "synthetic")
    assert cfg.baseline == "last-value"


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_every_preset_round_trips_through_files(name: str, suffix: str, tmp_path: Path) -> None:
    base = preset(name)
    layers = "n_attn_layers" if base.model.startswith("samovar") else "num_layers"
    # only the options the preset's model has (a baseline takes no θ)
    options = REGISTRY[base.model].options or frozenset()
    changes = {k: v for k, v in {layers: 2, "theta": 0.5}.items() if k in options}
    cfg = base.replace(model_overrides=changes)
    path = cfg.save(tmp_path / f"cfg{suffix}")
    assert TrainConfig.load(path) == cfg


def test_a_misspelt_model_override_fails_when_the_config_is_built() -> None:
    # before any data is read, with a sentence naming the key and the model's options
    with pytest.raises(
        ConfigError, match=r"model_overrides\.num_layer is not an option.*num_layers"
    ):
        TrainConfig(model="staeformer", model_overrides={"num_layer": 2})
    with pytest.raises(ConfigError, match=r"model_overrides\.order .*'last-value'.*none"):
        TrainConfig().with_sets(["model=last-value", "model_overrides.order=2"])
    # the older SAMoVAR spellings of the θ rule and the EALA path are still options
    cfg = TrainConfig(model="samovar", model_overrides={"attention": "eala", "eala_theta": "gauss"})
    assert cfg.model_overrides["eala_theta"] == "gauss"


def test_toml_writes_nan_and_strings_with_quotes() -> None:
    cfg = TrainConfig(protocol_overrides={"null_value": math.nan}, run_name='a "quoted" name')
    text = to_toml(cfg.to_dict())
    import tomllib

    back = tomllib.loads(text)
    assert back["protocol_overrides"]["null_value"] == "nan"  # kept exact through JSON too
    assert back["run_name"] == 'a "quoted" name'
    again = TrainConfig.from_dict(back)
    assert again.to_dict() == cfg.to_dict()
    import json

    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_nan_options_reach_the_protocol_as_nan(tmp_path: Path) -> None:
    from linearcast.engine.setup import resolve_protocol

    cfg = TrainConfig().with_sets(["protocol_overrides.null_value=nan"])
    assert cfg.protocol_overrides == {"null_value": "nan"}
    null = resolve_protocol(cfg).null_value
    assert null is not None and math.isnan(null)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_config_files_load(path: Path) -> None:
    cfg = TrainConfig.load(path)
    import tomllib

    raw = tomllib.loads(path.read_text())
    base = preset(raw["preset"]) if "preset" in raw else TrainConfig()
    # files override only what differs from their base
    assert set(raw) - {"preset"}, f"{path.name} sets nothing"
    for key, value in raw.items():
        if key != "preset" and key != "synthetic":
            assert getattr(base, key) != value, f"{path.name}: {key} repeats its base"
    assert cfg.model in __import__("linearcast.models", fromlist=["REGISTRY"]).REGISTRY


def test_config_files_exist() -> None:
    assert len(list(CONFIGS.glob("*.toml"))) >= 3


def test_set_parses_values_and_dotted_keys() -> None:
    cfg = TrainConfig().with_sets(
        [
            "lr=3e-4",
            "max_epochs=7",
            "milestones=[2, 5]",
            "model_overrides.num_layers=2",
            "model_overrides.attention=eala",
            "synthetic.num_nodes=16",
            "protocol_overrides.split_mode='staeformer'",
            "mask_loss=false",
            "devices=2",
        ]
    )
    assert cfg.lr == 3e-4 and cfg.max_epochs == 7 and cfg.milestones == [2, 5]
    assert cfg.model_overrides == {"num_layers": 2, "attention": "eala"}
    assert cfg.synthetic.num_nodes == 16 and cfg.synthetic.days == 14
    assert cfg.protocol_overrides == {"split_mode": "staeformer"}
    assert cfg.mask_loss is False and cfg.devices == 2
    assert parse_value("hello world") == "hello world"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["learning_rate=1"], "unknown option"),
        (["lr=fast"], "cannot parse .fast. as a value; lr expects a number"),
        (["max_epochs=1.5"], "max_epochs must be an integer"),
        (["optimizer=sgd"], "optimizer must be one of"),
        (["synthetic.nodes=3"], "unknown synthetic option"),
        (["lr"], "key=value"),
        (["batch_size=0"], r"batch_size must be an integer in \[1, "),
        (["seed.x=1"], "dotted key"),
    ],
)
def test_bad_values_raise_config_errors_naming_the_field(sets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_sets(sets)


def test_unknown_preset_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 3")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        TrainConfig.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.load(tmp_path / "missing.toml")
    yaml = tmp_path / "c.yaml"
    yaml.write_text("lr: 1")
    with pytest.raises(ConfigError, match=r"\.toml or \.json"):
        TrainConfig.load(yaml)


def test_file_preset_key_is_the_base(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('preset = "staeformer-pems08"\nmodel = "elinformer"\n')
    cfg = TrainConfig.load(path)
    assert cfg.model == "elinformer" and cfg.milestones == [25, 45, 65]
