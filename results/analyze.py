"""The papers' claims inside trained models (nothing is re-trained; reads finished run dirs).

    python results/analyze.py entropy    # attention spread, entropy and negative EALA weights
    python results/analyze.py swap       # trained STAEformer with EALA swapped in at inference
    python results/analyze.py var        # SAMoVAR's VAR coefficients as lag x series heat maps

``entropy``: for every trained softmax STAEformer of the spatio-temporal table, the queries and
keys reaching each attention layer on test windows: score standard deviation σ, softmax
entropy / log n, and the fraction of negative weights EALA would give (``attention_profile``).
``swap``: the same models with every softmax replaced by EALA (each θ rule, and the exact
entropy match) at inference only -- how much of softmax's behaviour does EALA reproduce in a
real trained model? ``var``: for one trained SAMoVAR per long-horizon dataset, the derivative of
the forecast of the last series (``OT`` for ETT) at the first horizon step with respect to every
input series and lag, through the exact VAR coefficients (``analysis.var_coefficients``).

Outputs under ``results/analysis/`` (JSON + PNG + a README table).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "analysis"
WORK = ROOT / "results" / "work"


def _runs(table: str, model: str) -> list[Path]:
    return sorted(
        d
        for d in (WORK / table).glob(f"*__{model}__s*")
        if (d / "metrics.json").is_file() and "__official__" not in d.name
    )


def _load(run_dir: Path) -> tuple[Any, Any, Any]:
    """``(model, config, prepared data)`` of a finished run, weights loaded, eval mode."""
    from linearcast.engine.checkpoint import BEST, load_weights
    from linearcast.engine.setup import build_model
    from linearcast.serve.run import load_run

    ckpt, config, prep = load_run(run_dir)
    model = build_model(config, prep)
    load_weights(model, ckpt["model"], run_dir / BEST)
    return model.eval(), config, prep


def _test_batches(prep: Any, windows: int = 64, batches: int = 4) -> list[torch.Tensor]:
    """``batches`` batches of test windows spread over the whole test period."""
    n = len(prep.test)
    picks = np.linspace(0, n - 1, windows * batches).round().astype(int)
    out = []
    for chunk in np.array_split(picks, batches):
        xs = [prep.test[int(i)][0] for i in chunk]
        out.append(torch.stack(xs))
    return out


# ---------------------------------------------------------------------------- entropy
def entropy() -> dict[str, Any]:
    from linearcast.analysis import attention_profile

    rows: dict[str, Any] = {}
    for run_dir in _runs("spatiotemporal", "staeformer"):
        model, _, prep = _load(run_dir)
        per_layer: dict[str, list[Any]] = defaultdict(list)
        for x in _test_batches(prep):
            for p in attention_profile(model, x, max_sequences=64):
                per_layer[p.layer].append(p)
        rows[run_dir.name] = {
            layer: {
                "seq_len": ps[0].seq_len,
                "sigma": statistics.fmean(p.sigma for p in ps),
                "entropy_ratio": statistics.fmean(p.entropy_ratio for p in ps),
                "neg_fraction": {
                    r: statistics.fmean(p.neg_fraction[r] for p in ps) for r in ps[0].neg_fraction
                },
                "theta_hclamp": statistics.fmean(p.theta["gauss_hclamp"] for p in ps),
            }
            for layer, ps in per_layer.items()
        }
        print(f"profiled {run_dir.name}", flush=True)
    return rows


def entropy_table(rows: dict[str, Any]) -> str:
    lines = [
        "| run | layer | n | σ (score std) | H / log n | negative EALA weights, paper θ | "
        "θ = 1 | θ hclamp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run, layers in rows.items():
        for layer, r in layers.items():
            short = layer.replace(".attn.kernel", "").replace("attn_layers_", "")
            neg = r["neg_fraction"]
            lines.append(
                f"| {run.replace('__staeformer', '')} | {short} | {r['seq_len']} | "
                f"{r['sigma']:.3f} | {r['entropy_ratio']:.3f} | {100 * neg['paper']:.1f}% | "
                f"{100 * neg['gauss']:.1f}% | {100 * neg['gauss_hclamp']:.1f}% |"
            )
    return "\n".join(lines) + "\n"


def entropy_plot(rows: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    markers = {"t": "o", "s": "s"}
    datasets = sorted({run.split("__")[0] for run in rows})
    colors = {d: f"C{i}" for i, d in enumerate(datasets)}
    for run, layers in rows.items():
        ds = run.split("__")[0]
        for layer, r in layers.items():
            kind = "t" if "_t." in layer else "s"
            ax1.scatter(r["sigma"], r["entropy_ratio"], marker=markers[kind], color=colors[ds])
            ax2.scatter(r["sigma"], 100 * r["neg_fraction"]["paper"], marker=markers[kind],
                        color=colors[ds])  # fmt: skip
    for d in datasets:
        ax1.scatter([], [], color=colors[d], label=d)
    ax1.scatter([], [], marker="o", color="k", label="temporal layer")
    ax1.scatter([], [], marker="s", color="k", label="spatial layer")
    ax1.set_xscale("log")
    ax1.set_xlabel("score standard deviation σ inside the trained STAEformer")
    ax1.set_ylabel("softmax entropy / log n (1 = uniform)")
    ax1.axvline(0.25, color="grey", ls=":", label="σ = 0.25 (θ = 1 tracks softmax below)")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    ax2.set_xscale("log")
    ax2.set_xlabel("σ")
    ax2.set_ylabel("negative EALA weights, paper θ (%)")
    ax2.grid(alpha=0.3)
    fig.suptitle("Is attention in trained STAEformers 'moderate and balanced'? (each point: one "
                 "layer of one trained model, test windows)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------------- swap
RULES: tuple[Any, ...] = ("paper", "gauss", "gauss_hclamp", "exact")


def _swap_kernels(model: torch.nn.Module, theta: Any) -> None:
    from linearcast.nn import AttentionSpec, Kernel, make_kernel
    from linearcast.ops.eala import EalaImpl

    impl: EalaImpl = "quadratic" if theta == "exact" else "auto"  # exact needs the scores
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Kernel) and child.spec.kernel in ("softmax", "softmax_naive"):
                setattr(
                    module, child_name, make_kernel(AttentionSpec("eala", theta=theta, impl=impl))
                )


def swap(
    only: str = "",
    done: dict[str, Any] | None = None,
    rules: tuple[Any, ...] = RULES,
    save: Any = None,
) -> dict[str, Any]:
    from lightning_fabric import Fabric
    from torch.utils.data import DataLoader

    from linearcast.engine.evaluation import evaluate

    fabric = Fabric(accelerator="cpu", devices=1)
    rows: dict[str, Any] = dict(done or {})
    for run_dir in _runs("spatiotemporal", "staeformer"):
        res = dict(rows.get(run_dir.name, {}))
        todo = [r for r in rules if f"EALA θ={r}" not in res]
        if only not in run_dir.name or not todo:
            continue  # filtered out, or measured by an earlier call (swap.json)
        model, _, prep = _load(run_dir)
        loader = DataLoader(prep.test, batch_size=64)
        res["softmax (trained)"] = evaluate(fabric, model, loader, prep).metrics["overall"]
        for rule in todo:
            swapped, _, _ = _load(run_dir)
            _swap_kernels(swapped, rule)
            res[f"EALA θ={rule}"] = evaluate(fabric, swapped, loader, prep).metrics["overall"]
        rows[run_dir.name] = res
        if save is not None:  # after every model: a stopped analysis keeps what it measured
            save(rows)
        print(f"swapped {run_dir.name}: " + ", ".join(
            f"{k} {v['MAE']:.3f}" for k, v in res.items()), flush=True)  # fmt: skip
    return rows


def swap_table(rows: dict[str, Any]) -> str:
    heads = ["softmax (trained)", *(f"EALA θ={r}" for r in RULES)]
    lines = [
        "| run | " + " | ".join(f"{h} MAE" for h in heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for run, res in rows.items():
        base = res["softmax (trained)"]["MAE"]
        cells = [f"{base:.3f}"] + [
            f"{res[h]['MAE']:.3f} ({100 * (res[h]['MAE'] / base - 1):+.0f}%)" if h in res else "—"
            for h in heads[1:]
        ]
        lines.append(f"| {run.replace('__staeformer', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- VAR heat maps
def var_maps() -> dict[str, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from linearcast.analysis import var_coefficients
    from linearcast.analysis.var import MAX_TIME_LAG_ELEMENTS

    out: dict[str, Any] = {}
    for run_dir in sorted((WORK / "longhorizon").glob("*__samovar__s0")):
        if not (run_dir / "metrics.json").is_file():
            continue
        model, config, prep = _load(run_dir)
        ds = run_dir.name.split("__")[0]
        names = prep.dataset.node_names or [f"series {i}" for i in range(prep.num_nodes)]
        # up to 8 test windows, as many as the time-lag tensor [B, C, s, C, L] allows
        c, cfg = prep.num_nodes, model.config
        fits = MAX_TIME_LAG_ELEMENTS // (c * cfg.horizon * c * cfg.lookback)
        picks = np.linspace(0, len(prep.test) - 1, max(1, min(8, fits)))
        x = torch.stack([prep.test[int(i)][0] for i in picks])
        coeffs = var_coefficients(model, x)
        assert coeffs.time_lags is not None
        # |d forecast(last series, step 1) / d input(series c', lag l)|, mean over windows
        heat = coeffs.time_lags[:, -1, 0].abs().mean(dim=0).double().cpu().numpy()  # (C', L)
        lags = min(heat.shape[1], 2 * config.protocol_overrides.get("out_steps", 96))
        fig = Figure(figsize=(11, 0.45 * len(names) + 2))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        im = ax.imshow(heat[:, :lags], aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names)
        ax.set_xlabel("lag (input steps before the forecast; 1 = last observed)")
        ax.set_xticks(range(0, lags, max(1, lags // 12)))
        ax.set_xticklabels([str(i + 1) for i in range(0, lags, max(1, lags // 12))])
        ax.set_title(
            f"SAMoVAR on {ds}: |∂ forecast of {names[-1]} (next step) / ∂ input of each series|\n"
            f"through the extracted VAR coefficients, mean of {len(picks)} test windows",
            fontsize=10,
        )
        fig.colorbar(im, ax=ax, label="normalised units")
        fig.tight_layout()
        path = OUT / f"var_{ds}.png"
        fig.savefig(path, dpi=110)
        out[ds] = {"figure": str(path.relative_to(ROOT)), "lags_shown": lags,
                   "own_lag1": float(heat[-1, 0]), "max": float(heat.max())}  # fmt: skip
        print(f"wrote {path}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("entropy", "swap", "var"))
    parser.add_argument("--only", default="", help="swap: run directories containing this")
    parser.add_argument(
        "--rules",
        nargs="+",
        default=list(RULES),
        choices=list(RULES),
        help="swap: θ rules to measure (exact is slow: ~40 min per Los-loop model on one core)",
    )
    args = parser.parse_args(argv)
    from linearcast import jsonio

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "entropy":
        rows = entropy()
        (OUT / "entropy.json").write_text(jsonio.dumps(rows, indent=1) + "\n")
        entropy_plot(rows, OUT / "entropy.png")
        (OUT / "entropy.md").write_text(entropy_table(rows))
        print(entropy_table(rows))
    elif args.what == "swap":
        known = OUT / "swap.json"
        done = json.loads(known.read_text()) if known.is_file() else {}

        def save(rows: dict[str, Any]) -> None:
            (OUT / "swap.json").write_text(jsonio.dumps(rows, indent=1) + "\n")
            (OUT / "swap.md").write_text(swap_table(rows))

        rows = swap(args.only, done, tuple(args.rules), save)
        save(rows)
        print(swap_table(rows))
    else:
        rows = var_maps()
        (OUT / "var.json").write_text(jsonio.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
