"""The runs behind each results table: datasets, models, seeds and the shared training budget.

Every run is an ordinary ``linearcast train`` command line (``Run.argv``), so a table is what a
user would get from the CLI on the same files. Data paths are relative to the repository root
and point at ``../shared/data`` (see its README); nothing is copied into the project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# where ../shared/data is on this machine (a GPU machine gets a copy elsewhere)
DATA = os.environ.get("LINEARCAST_SHARED_DATA", "../shared/data")

# One reduced width for every STAEformer-family model (the official 152-wide, 3+3-layer model
# is ~5x slower per step on our 2-core CPU): width 64 = 12 (input) + 12 (time of day) + 12 (day of
# week) + 28 (adaptive), 2 temporal + 2 spatial layers, 4 heads of 16, FFN 128.
REDUCED_WIDTH = {
    "input_embedding_dim": 12,
    "tod_embedding_dim": 12,
    "dow_embedding_dim": 12,
    "adaptive_embedding_dim": 28,
    "feed_forward_dim": 128,
    "num_layers": 2,
}
STAEFORMER_FAMILY = (
    "staeformer",
    "elinformer",
    "elinformer-gauss",
    "elinformer-learned",
    "elinformer-hclamp",
    "staeformer-linformer",
    "staeformer-linear",
)


@dataclass(frozen=True)
class Dataset:
    """A dataset of a table and the options it needs (``--data`` plus ``--set`` values)."""

    key: str
    data: str
    sets: tuple[str, ...] = ()
    note: str = ""
    preset: str = ""


@dataclass(frozen=True)
class Run:
    """One training run of a table."""

    table: str
    dataset: Dataset
    model: str
    seed: int
    sets: tuple[str, ...] = ()
    epochs: int = 10
    width: str = "reduced"
    #: the name in the tables when it is not the registry model's (e.g. ``dlinear-released``:
    #: the same model trained with its own published recipe)
    key: str = ""
    #: a preset giving the model's own recipe (else the dataset's preset, if any)
    preset: str = ""
    #: extra ``model_overrides`` entries (``"revin=true"``), beside the table's width options
    options: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The model as the tables name it."""
        return self.key or self.model

    @property
    def run_id(self) -> str:
        """File-name-safe identity: ``<dataset>__<model>[__official]__s<seed>``."""
        width = "" if self.width == "reduced" else f"__{self.width}"
        return f"{self.dataset.key}__{self.name}{width}__s{self.seed}"

    def argv(self) -> list[str]:
        """The ``linearcast train`` arguments (without ``--out``/``--run-name``/``--resume``)."""
        preset = self.preset or self.dataset.preset
        args = ["--preset", preset] if preset else []
        args += ["--model", self.model, "--data", self.dataset.data, "--seed", str(self.seed)]
        args += ["--epochs", str(self.epochs)]
        for s in (*self.dataset.sets, *self.sets):
            args += ["--set", s]
        if self.model in STAEFORMER_FAMILY:
            # the tables were measured with nn.Dropout's masks (the official code's random
            # stream), before fast dropout became the default
            width = REDUCED_WIDTH if self.width == "reduced" else {}
            options = {**width, "fast_dropout": "false"}
            inner = ", ".join([*(f"{k}={v}" for k, v in options.items()), *self.options])
            args += ["--set", f"model_overrides={{{inner}}}"]
        else:
            for option in self.options:
                args += ["--set", f"model_overrides.{option}"]
        return args


@dataclass(frozen=True)
class Table:
    """A results table: its runs and what it is about."""

    name: str
    title: str
    runs: tuple[Run, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------- spatio-temporal
# The same recipe for every model: masked MAE (null 0), Adam 1e-3 with weight decay 3e-4,
# learning rate x0.1 after epochs 6 and 8, batch 16, 10 epochs, the best validation epoch's
# weights tested (BasicTS style: no early stop within the budget).
ST_RECIPE = (
    "protocol=pems",
    "loss=masked_mae",
    "lr=1e-3",
    "weight_decay=3e-4",
    "milestones=[6, 8]",
    "gamma=0.1",
    "batch_size=16",
    "eval_batch_size=64",
    "patience=0",
    "baseline=last-value",
)
ST_DATASETS = {
    "los_loop": Dataset(
        "los_loop",
        f"{DATA}/los_loop/los_speed.csv",
        ("data_options.freq_minutes=5", 'data_options.start="2012-03-01"'),
        "METR-LA speeds, 207 sensors, 5 min, 7 days (2016 steps)",
    ),
    "nyc_taxi": Dataset(
        "nyc_taxi",
        f"{DATA}/nyc_taxi/NYCtaxi-30min-inflow.npz",
        # 21k training windows: each epoch trains on 100 batches (1,600 windows) drawn anew
        # from all of them, and validates on 25 batches spread over the validation period
        ('data_options.start="2019-01-01"', "max_train_batches=100", "max_val_batches=25"),
        "69 Manhattan zones, inflow (target) and outflow, 30 min, 2019-2020 (35,088 steps)",
    ),
    "hzmetro": Dataset(
        "hzmetro",
        f"{DATA}/hzmetro/inflow_tensor.mat",
        # the graph has one station more than the flows; STAEformer does not use a graph
        ("data_options.adjacency=none",),
        "80 metro stations, inflow (target) and outflow, 10 min, 25 days (3,600 steps)",
    ),
    "chickenpox": Dataset(
        "chickenpox",
        f"{DATA}/pgt/chickenpox.json",
        # weekly and z-scored: no null value, Mondays from 2005-01-03
        ('data_options.start="2005-01-03"', "protocol_overrides.null_value=nan"),
        "20 Hungarian counties, weekly cases (z-scored by the source), 521 weeks",
    ),
}
CORE = ("staeformer", "elinformer", "elinformer-gauss", "elinformer-learned")
ONE_SEED = ("elinformer-hclamp", "staeformer-linformer", "staeformer-linear")
FLOORS = ("last-value", "historical-average", "dlinear", "var")


def _st_runs() -> tuple[Run, ...]:
    """Cheap floors first, then seed by seed across datasets (so that a table stopped part way
    already covers every dataset), then the one-seed variants and chickenpox."""
    keys = ("hzmetro", "los_loop", "nyc_taxi")
    runs = [Run("spatiotemporal", ST_DATASETS[k], m, 0, ST_RECIPE) for k in keys for m in FLOORS]
    for seed in (0, 1, 2):
        runs += [
            Run("spatiotemporal", ST_DATASETS[k], m, seed, ST_RECIPE) for k in keys for m in CORE
        ]
    runs += [Run("spatiotemporal", ST_DATASETS[k], m, 0, ST_RECIPE) for k in keys for m in ONE_SEED]
    ds = ST_DATASETS["chickenpox"]
    runs += [Run("spatiotemporal", ds, m, 0, ST_RECIPE) for m in (*FLOORS, *CORE)]
    return (*runs, *_baseline_runs(), *_revin_runs())


#: The field's baselines (issue 25), each with its own published recipe: BasicTS v0.5.8's
#: PEMS08 configuration of each (optimizer, lr, weight decay, schedule, batch, clipping,
#: scheduled sampling for DCRNN), under the table's shared budget: 10 epochs, the pems protocol,
#: the best validation epoch tested, NYC taxi's 100/25 batches per epoch.
BASELINE_PRESETS = {
    "stid": "stid-pems08",
    "stgcn": "stgcn-pems08",
    "agcrn": "agcrn-pems08",
    "gwnet": "gwnet-pems08",
    "gwnet-adaptive": "gwnet-pems08",
    "dcrnn": "dcrnn-pems08",
}
BASELINE_SETS = ("protocol=pems", "patience=0", "baseline=last-value", "eval_batch_size=64")
#: models that read the given graph (gwnet-adaptive learns its own; STID and AGCRN use none)
GRAPH_MODELS = ("stgcn", "gwnet", "dcrnn")


def _with_graph(ds: Dataset) -> Dataset:
    """The dataset as a graph model reads it: HZMetro's graph.csv has 81 nodes for the 80
    stations of the flows and does not say which one is extra; the last is dropped (an
    assumption, stated in the README). The others' graphs are found beside the data."""
    if ds.key != "hzmetro":
        return ds
    sets = tuple(s for s in ds.sets if not s.startswith("data_options.adjacency"))
    return Dataset(ds.key, ds.data, (*sets, "data_options.graph_drop=[80]"), ds.note)


def _baseline_runs() -> tuple[Run, ...]:
    """Seed 0 of every baseline on every dataset first (cheapest models first), then seeds
    1 and 2 of the three main datasets."""
    runs: list[Run] = []
    keys = ("hzmetro", "los_loop", "nyc_taxi", "chickenpox")
    for seed in (0, 1, 2):
        for model, preset in BASELINE_PRESETS.items():
            for key in keys if seed == 0 else keys[:3]:
                ds = ST_DATASETS[key]
                ds = _with_graph(ds) if model in GRAPH_MODELS else ds
                sets = BASELINE_SETS
                if key == "chickenpox":
                    sets = (*sets, "protocol_overrides.null_value=nan")
                runs.append(Run("spatiotemporal", ds, model, seed, sets, preset=preset))
    return tuple(runs)


#: issue 26: the core pair with instance normalisation (model_overrides.revin, no affine) on NYC
#: taxi, whose test period (the 2020 collapse) defeated every trained model; table name
#: ``<model>-revin``
REVIN = ("staeformer-revin", "elinformer-revin")


def _revin_runs() -> tuple[Run, ...]:
    ds = ST_DATASETS["nyc_taxi"]
    return tuple(
        Run("spatiotemporal", ds, key.removesuffix("-revin"), seed, ST_RECIPE, key=key,
            options=("revin=true",))
        for seed in (0, 1, 2)
        for key in REVIN
    )  # fmt: skip


def _official_width_runs() -> tuple[Run, ...]:
    """The core pair at the official width (152, 3+3 layers), seed by seed (GPU-sized)."""
    return tuple(
        Run("official-width", ST_DATASETS[key], m, seed, ST_RECIPE, width="official")
        for seed in (0, 1, 2)
        for key in ("hzmetro", "los_loop", "nyc_taxi")
        for m in ("staeformer", "elinformer")
    )


# ---------------------------------------------------------------------------- long horizon
# SAMoVAR's released recipe (the samovar-ett / samovar-ltsf presets: AdamW 6e-4, OneCycle, clip 1,
# batch 32, lookback 1024) but 8 epochs (the released schedule is 50 with patience 12).
LH_MODELS = ("samovar", "samovar-lintrans", "samovar-fixedvar", "samovar-eala", "dlinear")
LH_DATASETS = {
    "ETTh1": Dataset("ETTh1", f"{DATA}/ETT/ETTh1.csv", preset="samovar-ett"),
    "ETTh2": Dataset("ETTh2", f"{DATA}/ETT/ETTh2.csv", preset="samovar-ett"),
    "ETTm1": Dataset("ETTm1", f"{DATA}/ETT/ETTm1.csv", preset="samovar-ett"),
    "exchange": Dataset(
        "exchange", f"{DATA}/exchange_rate/exchange_rate.csv", preset="samovar-ltsf"
    ),
    "ili": Dataset(
        "ili",
        f"{DATA}/illness/national_illness.csv",
        # ILI: lookback 104 weeks, horizon 24, the ili protocol (0.7/0.1/0.2)
        (
            "protocol=ili",
            "protocol_overrides.in_steps=104",
            "protocol_overrides.out_steps=24",
            "batch_size=16",
        ),
        preset="samovar-ltsf",
    ),
}


#: DLinear's released recipe (cure-lab/LTSF-Linear @ 7f7a25b, scripts/EXP-LongForecasting/
#: Linear/*.sh and run_longExp.py's defaults): Adam, MSE, 10 epochs, patience 3, the learning
#: rate halved after every epoch (lradj type1), lookback 336 (ILI 104), and per dataset
#: (learning rate, batch): ETTh1 (0.005, 32), ETTh2 (0.05, 32), ETTm1 (1e-4, 8), Exchange
#: (5e-4, 8), ILI (0.01, 32).
DLINEAR_RELEASED = {
    "ETTh1": ("ett", 336, 0.005, 32),
    "ETTh2": ("ett", 336, 0.05, 32),
    "ETTm1": ("ett", 336, 1e-4, 8),
    "exchange": ("ltsf", 336, 5e-4, 8),
    "ili": ("ili", 104, 0.01, 32),
}


def _dlinear_released(key: str, seed: int) -> Run:
    protocol, lookback, lr, batch = DLINEAR_RELEASED[key]
    ds = LH_DATASETS[key]
    horizon = 24 if key == "ili" else 96
    sets = (
        f"protocol={protocol}",
        f"protocol_overrides.in_steps={lookback}",
        f"protocol_overrides.out_steps={horizon}",
        "optimizer=adam",
        f"lr={lr}",
        "weight_decay=0",
        f"batch_size={batch}",
        "scheduler=multistep",
        "milestones=[1, 2, 3, 4, 5, 6, 7, 8, 9]",
        "gamma=0.5",
        "patience=3",
        "loss=mse",
        "grad_clip=0",
        "baseline=last-value",
    )
    bare = Dataset(ds.key, ds.data)  # no SAMoVAR preset
    return Run("longhorizon", bare, "dlinear", seed, sets, epochs=10, key="dlinear-released")


#: seeds per long-horizon dataset: three where a run is cheap enough (issue 25)
LH_SEEDS = {
    "ETTh1": (0, 1, 2), "ETTh2": (0, 1, 2), "ili": (0, 1, 2), "ETTm1": (0,), "exchange": (0,)
}  # fmt: skip


def _lh_runs() -> tuple[Run, ...]:
    """Seed 0 of everything first (the table as it stood), then DLinear's own recipe, then the
    extra seeds: the cheap ILI ones before ETTh2's."""
    runs: list[Run] = []
    for ds in LH_DATASETS.values():
        runs += [Run("longhorizon", ds, m, 0, ("baseline=last-value",), epochs=8)
                 for m in LH_MODELS]  # fmt: skip
    runs += [_dlinear_released(key, 0) for key in LH_DATASETS]
    for key in ("ETTh1", "ili", "ETTh2"):
        ds = LH_DATASETS[key]
        for s in LH_SEEDS[key][1:]:
            runs += [Run("longhorizon", ds, m, s, ("baseline=last-value",), epochs=8)
                     for m in LH_MODELS]  # fmt: skip
            runs.append(_dlinear_released(key, s))
    return tuple(runs)


TABLES: dict[str, Table] = {
    "spatiotemporal": Table(
        "spatiotemporal",
        "ELinFormer vs STAEformer on real spatio-temporal data (the paper's Table 2, our data)",
        _st_runs(),
    ),
    "official-width": Table(
        "official-width",
        "The core pair at the official STAEformer width (GPU)",
        _official_width_runs(),
    ),
    "longhorizon": Table(
        "longhorizon", "SAMoVAR and its controls at long horizons (ETT, Exchange, ILI)", _lh_runs()
    ),
}
