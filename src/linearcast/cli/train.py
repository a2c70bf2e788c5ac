"""``linearcast train | models`` (using a finished run: :mod:`linearcast.cli.evaluate`).

- ``train``: train and test a registry model on a dataset (or the synthetic one) under a
  protocol; writes a run directory (config, metrics, history, checkpoints, plots) and, at the
  end, calibrates its prediction intervals (``--level``, default 80 90) and adds their test
  coverage and width to ``metrics.json``;
- ``models``: the registry with family, flags and descriptions.

Heavy modules (torch, Fabric, the models) are imported inside the commands so that
``linearcast --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from linearcast import jsonio
from linearcast.errors import ConfigError

TRAIN_EPILOG = """\
How the configuration is assembled (later wins):
  defaults -> --preset -> --config FILE -> the options above -> --set key=value

What --set reaches (values are TOML: 3e-4, true, [20, 30], "text", nan, 2020-10-01):
  FIELD                     any config field          --set lr=3e-4 --set max_val_batches=25
  model_overrides.FIELD     the model's options       --set model_overrides.num_layers=2
  protocol_overrides.FIELD  split, windows, nulls     --set protocol_overrides.null_value=nan
  data_options.NAME         the reader's options      --set data_options.freq_minutes=5
                            (all formats: freq_minutes, start, adjacency, graph_drop,
                            null_value; per format: dedupe, key, layout, header, ...)
  synthetic.FIELD           the built-in data         --set synthetic.num_nodes=16
  (--print-config shows every field; docs/engine.md and docs/data.md list them)

Presets:
{presets}

Examples:
  linearcast train --preset demo
  linearcast train --model elinformer --data synthetic --epochs 5 --set synthetic.num_nodes=16
  linearcast train --preset staeformer-pems08 --data PEMS08.npz --model elinformer
  linearcast train --config configs/elinformer-pems08.toml --data PEMS08.npz --set lr=5e-4
  linearcast train --resume runs/elinformer-synthetic-20250101-120000 --epochs 20
  python -m linearcast train --preset demo --devices 2 --strategy ddp --accelerator cpu

DDP: --strategy ddp starts the other processes by re-running this command line (Fabric's
subprocess launcher); run it as `linearcast ...` or `python -m linearcast ...`. Multi-node:
start the same command on every machine with --num-nodes M and the usual MASTER_ADDR,
MASTER_PORT, NODE_RANK variables (or under SLURM/torchrun, which set them).
"""


def _presets_text() -> str:
    from linearcast.engine.config import PRESETS

    width = max(len(k) for k in PRESETS) + 2
    return "\n".join(f"  {name:<{width}}{desc}" for name, (desc, _) in PRESETS.items())


# ---------------------------------------------------------------------- train
def build_config(args: argparse.Namespace) -> Any:
    """The :class:`~linearcast.engine.TrainConfig` a ``train`` command line describes."""
    from linearcast.engine.config import TrainConfig, preset, read_config_file

    if args.resume:
        run = Path(args.resume)
        if not (run / "config.json").is_file():
            raise ConfigError(f"{run}: not a run directory (no config.json).")
        if args.preset or args.config or args.out or args.run_name:
            raise ConfigError(
                "--resume continues a run with its own config in its own directory; drop "
                "--preset/--config/--out/--run-name."
            )
        cfg = TrainConfig.load(run / "config.json")
    else:
        cfg = preset(args.preset) if args.preset else TrainConfig()
        if args.config:
            values = read_config_file(args.config, new_run=True)
            if args.preset and values.get("preset", args.preset) != args.preset:
                raise ConfigError(
                    f"{args.config} is based on preset {values['preset']!r} but --preset "
                    f"{args.preset!r} was given; use one."
                )
            if args.preset:
                values.pop("preset", None)
            cfg = TrainConfig.from_dict(values, base=cfg)
    flags = {
        "model": args.model,
        "data": args.data,
        "data_format": args.format,
        "protocol": args.protocol,
        "max_epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "devices": args.devices,
        "strategy": args.strategy,
        "precision": args.precision,
        "accelerator": args.accelerator,
        "num_nodes": args.num_nodes,
        "out_dir": args.out,
        "run_name": args.run_name,
        "max_train_batches": args.max_train_batches,
        "max_eval_batches": args.max_eval_batches,
        "num_workers": args.num_workers,
        "seed": args.seed,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if isinstance(given.get("devices"), str) and given["devices"].isdigit():
        given["devices"] = int(given["devices"])
    if args.resume:
        given["resume"] = str(args.resume)
    cfg = cfg.replace(**given) if given else cfg
    return cfg.with_sets(args.set or [])


def _cmd_train(args: argparse.Namespace) -> int:
    from linearcast.engine.trainer import Trainer

    cfg = build_config(args)
    if args.print_config:
        print(jsonio.dumps(cfg.to_dict()))
        return 0
    from linearcast.cli.evaluate import checked_levels, record_intervals_line

    levels = () if args.no_intervals else checked_levels(args.level, (80.0, 90.0))
    trainer = Trainer(
        cfg, progress=False if args.quiet else None, verbose=not args.quiet, report=True
    )
    result = trainer.fit()
    if levels and (trainer.fabric is None or trainer.fabric.is_global_zero):
        record_intervals_line(result.run_dir, levels, args.accelerator)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from linearcast.models import REGISTRY

    specs = [s for s in REGISTRY.values() if args.family in (None, s.family)]
    if args.json:
        rows = [
            {
                "name": s.name,
                "family": s.family,
                "needs_graph": s.needs_graph,
                "needs_time_features": s.needs_time_features,
                "fixed_num_nodes": s.fixed_num_nodes,
                "description": s.description,
            }
            for s in specs
        ]
        print(jsonio.dumps(rows))
        return 0
    width = max([6, *(len(s.name) + 2 for s in specs)])
    print(f"{'name':<{width}}{'family':<16}{'flags':<14}description")
    for s in specs:
        flags = "".join(
            [
                "G" if s.needs_graph else "-",
                "T" if s.needs_time_features else "-",
                "N" if s.fixed_num_nodes else "-",
            ]
        )
        print(f"{s.name:<{width}}{s.family:<16}{flags:<14}{s.description}")
    print(
        "\nflags: G needs a graph, T needs time-of-day/day-of-week inputs, N tied to the number "
        "of nodes it was trained on"
    )
    return 0


# ---------------------------------------------------------------------- parsers
def add_parser(sub: Any) -> None:
    """Add ``train`` and ``models`` to the top-level sub-parsers."""
    _add_train(sub)
    _add_models(sub)


def _add_train(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p: argparse.ArgumentParser = sub.add_parser(
        "train",
        help="train and test a model; writes a run directory",
        description="Train a registry model on a dataset under a protocol, restore the best "
        "validation weights, test it next to the last-value baseline and write "
        "runs/<model>-<dataset>-<time>/ (config.json, metrics.json, history.csv, best.ckpt, "
        "last.ckpt, curves.png, forecast.png, errors.png; TensorBoard event files when the "
        "tensorboard package is installed: tensorboard --logdir runs).",
        epilog=TRAIN_EPILOG.format(presets=_presets_text()),
        formatter_class=fmt,
    )
    _what_to_train(p)
    _optimisation(p)
    _devices(p)
    _output(p)
    p.set_defaults(func=_cmd_train)


def _what_to_train(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to train")
    g.add_argument("--model", help="registry name (see `linearcast models`); default elinformer")
    g.add_argument(
        "--data",
        metavar="PATH",
        help="dataset file or BasicTS folder, or 'synthetic' (the built-in generated "
        "traffic-like data; the default)",
    )
    g.add_argument("--format", help="reader format of --data (default: auto-detect)")
    g.add_argument(
        "--protocol",
        help="evaluation protocol: pems, pems-staeformer, metr, metr-staeformer, ett, ltsf, ili "
        "(default pems; see `linearcast data list`)",
    )
    g.add_argument("--preset", help="start from a named preset (listed below)")
    g.add_argument(
        "--config",
        metavar="FILE",
        help="a .toml or .json config; it may name `preset = ...` and list only what differs "
        "(see configs/)",
    )
    g.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any config field, repeatable: --set lr=3e-4 --set "
        "model_overrides.num_layers=2 --set synthetic.num_nodes=16 "
        "--set protocol_overrides.out_steps=24 (values parsed as TOML)",
    )


def _optimisation(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="maximum number of epochs (max_epochs)")
    g.add_argument("--batch-size", type=int, help="training batch size per process")
    g.add_argument("--lr", type=float, help="learning rate (OneCycle: the peak)")
    g.add_argument("--seed", type=int, help="seed for weights, shuffling and dropout (default 0)")
    g.add_argument(
        "--max-train-batches",
        type=int,
        metavar="N",
        help="at most N training batches per epoch (quick runs; 0 = all)",
    )
    g.add_argument(
        "--max-eval-batches",
        type=int,
        metavar="N",
        help="at most N validation/test batches (quick runs only: metrics cover part of the set)",
    )


def _devices(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("devices (Lightning Fabric)")
    g.add_argument("--accelerator", help="auto (default), cpu, cuda, mps")
    g.add_argument(
        "--devices", help="devices per machine: a number, 'auto', or a list like '0,1' (default 1)"
    )
    g.add_argument(
        "--strategy",
        help="auto (default), ddp (re-runs this command per extra process), ddp_spawn",
    )
    g.add_argument("--num-nodes", type=int, help="machines for multi-node DDP (default 1)")
    g.add_argument(
        "--precision", help="32-true (default), bf16-mixed, 16-mixed (CUDA), bf16-true, 64-true"
    )
    g.add_argument("--num-workers", type=int, help="DataLoader worker processes (default 0)")


def _output(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="parent folder of run directories (default runs)")
    g.add_argument("--run-name", help="exact run directory name (default <model>-<data>-<time>)")
    g.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted (or finished) run from its last.ckpt, exactly where it "
        "stopped; --epochs may raise its epoch limit",
    )
    g.add_argument(
        "--quiet", action="store_true", help="no progress bars or per-epoch lines; final table only"
    )
    g.add_argument(
        "--print-config", action="store_true", help="print the resolved config as JSON and exit"
    )
    g.add_argument(
        "--level",
        nargs="+",
        metavar="PCT",
        help="prediction-interval levels calibrated at the end (conformal, on the validation "
        "windows) and scored on the test windows in metrics.json's intervals (default 80 90)",
    )
    g.add_argument(
        "--no-intervals", action="store_true", help="skip the interval calibration at the end"
    )


def _add_models(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "models",
        help="list the registry: names, families, flags, descriptions",
        description="List the models `train --model` accepts.",
        epilog="Examples:\n  linearcast models\n  linearcast models --family baseline --json",
        formatter_class=fmt,
    )
    p.add_argument("--family", help="only this family (spatiotemporal, ltsf, baseline)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_models)
