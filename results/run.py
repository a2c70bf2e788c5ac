"""Run a results table, resumably, and collect one JSON per finished run.

    python results/run.py spatiotemporal                 # run what is missing, 2 at a time
    python results/run.py spatiotemporal --list          # what is done, running, missing
    python results/run.py spatiotemporal --only hzmetro  # a subset (substring of the run id)
    python results/report.py spatiotemporal              # the table and plots from the JSONs

Each run is the ``linearcast train`` command a user would type (see ``results/plans.py``), with
its run directory under ``results/work/<table>/<run id>`` (not committed: checkpoints). A run
that was stopped part way is resumed from its ``last.ckpt`` (``--resume``); a finished one is
never repeated: its summary is ``results/<table>/runs/<run id>.json`` (committed) -- the resolved
config, seed, metrics, seconds per epoch (wall and CPU), peak memory, parameters, the fraction
of targets masked, learned θ values where the model has them, the commit and the machine.

``--jobs 2 --threads 1`` (the default) runs two single-threaded processes side by side; on our
2-core CPU that does 1.3x more work per hour than one two-threaded process (results/threads.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "results"))

from plans import TABLES, Run  # noqa: E402


def _summary_path(run: Run) -> Path:
    return ROOT / "results" / run.table / "runs" / f"{run.run_id}.json"


def _work_dir(run: Run) -> Path:
    return ROOT / "results" / "work" / run.table / run.run_id


def _commit(code_root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(code_root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _learned_theta(run_dir: Path) -> dict[str, list[float]] | None:
    """θ per head of every layer with a learned θ, from the best checkpoint."""
    import torch

    from linearcast.engine.checkpoint import load_checkpoint

    state = load_checkpoint(run_dir / "best.ckpt")["model"]
    found = {
        k.removesuffix(".kernel.log_theta"): [round(float(x), 4) for x in v.exp()]
        for k, v in state.items()
        if k.endswith("log_theta") and isinstance(v, torch.Tensor)
    }
    return found or None


def collect(
    run: Run, run_dir: Path, code_root: Path, seconds: float, threads: int | None = None
) -> dict[str, Any]:
    """The summary JSON of a finished run directory.

    ``history`` is every epoch's row of ``history.csv`` (train/val loss and metrics, seconds);
    ``training_seconds`` adds up the epochs of every segment of a resumed run, where
    ``total_seconds`` is only the wall time of the last segment (and of collecting).
    """
    from linearcast.engine.run_dir import read_history

    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").is_file() else []
    config = json.loads((run_dir / "config.json").read_text())
    import torch

    summary = {
        "table": run.table,
        "run_id": run.run_id,
        "dataset": run.dataset.key,
        "model": run.name,
        "registry_model": run.model,
        "seed": run.seed,
        "width": run.width,
        "command": "linearcast train " + " ".join(_quote(a) for a in run.argv()),
        "config": config,
        "metrics": {k: metrics[k] for k in ("test", "val") if k in metrics},
        "baseline": metrics.get("baseline"),
        "protocol": metrics.get("protocol"),
        "windows": metrics.get("windows"),
        "parameters": metrics.get("parameters"),
        "epochs": metrics.get("epochs"),
        "best_epoch": metrics.get("best_epoch"),
        "seconds_per_epoch": metrics.get("mean_epoch_seconds"),
        "cpu_seconds_per_epoch": metrics.get("mean_epoch_cpu_seconds"),
        "total_seconds": seconds,
        "training_seconds": sum(float(r.get("seconds") or 0.0) for r in history) or None,
        "history": history,
        "peak_memory": metrics.get("peak_memory"),
        "masked_fraction": metrics.get("masked_fraction"),
        "mape_floor": metrics.get("mape_floor"),
        "null_value": metrics.get("null_value"),
        "learned_theta": _learned_theta(run_dir) if "learned" in run.model else None,
        "commit": _commit(code_root),
        "machine": {
            "host": platform.node(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "device": metrics.get("device"),
            # the run's own torch threads (the OMP_NUM_THREADS its process was started with)
            "threads": threads or int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        },
    }
    return summary


def _quote(arg: str) -> str:
    return arg if all(c.isalnum() or c in "-_./=:," for c in arg) else f"'{arg}'"


def state(run: Run) -> str:
    """``done``, ``partial`` (resumable) or ``missing``."""
    if _summary_path(run).is_file():
        return "done"
    if (_work_dir(run) / "last.ckpt").is_file():
        return "partial"
    return "missing"


def execute(run: Run, *, python: str, threads: int, log_dir: Path, extra: list[str]) -> str:
    """Train (or resume) one run as a subprocess, then write its summary JSON."""
    work = _work_dir(run)
    work.parent.mkdir(parents=True, exist_ok=True)
    if (work / "metrics.json").is_file():
        cmd = None  # trained, only the summary is missing
    elif (work / "last.ckpt").is_file():
        cmd = [python, "-m", "linearcast", "train", "--resume", str(work), "--quiet"]
    else:
        shutil.rmtree(work, ignore_errors=True)  # a start that never finished an epoch
        cmd = [python, "-m", "linearcast", "train", *run.argv(), *extra]
        cmd += ["--out", str(work.parent), "--run-name", run.run_id, "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    started = time.perf_counter()
    if cmd is not None:
        log = log_dir / f"{run.run_id}.log"
        with open(log, "a") as fh:
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            return f"FAILED {run.run_id} (exit {proc.returncode}; see {log})"
    code_root = Path(os.environ.get("LINEARCAST_CODE_ROOT", ROOT))
    summary = collect(run, work, code_root, time.perf_counter() - started, threads)
    out = _summary_path(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    from linearcast import jsonio

    tmp = out.with_suffix(".tmp")
    tmp.write_text(jsonio.dumps(summary) + "\n")
    os.replace(tmp, out)
    test = summary["metrics"]["test"]["overall"]
    main_metric = "MAE" if "MAE" in test else "MSE"
    return f"done {run.run_id}: test {main_metric} {test[main_metric]:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--only", action="append", default=[], help="run ids containing this")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--list", action="store_true", help="show the state of every run")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the runs")
    parser.add_argument(
        "--extra", action="append", default=[], help="extra train arguments (e.g. --accelerator)"
    )
    args = parser.parse_args(argv)
    runs = [r for r in TABLES[args.table].runs if all(o in r.run_id for o in args.only)]
    if args.list:
        for r in runs:
            print(f"{state(r):<8} {r.run_id}")
        counts = {s: sum(state(r) == s for r in runs) for s in ("done", "partial", "missing")}
        print(f"\n{counts}")
        return 0
    todo = [r for r in runs if state(r) != "done"]
    # resumable runs first, then in plan order
    todo.sort(key=lambda r: state(r) != "partial")
    log_dir = ROOT / "results" / "work" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{args.table}: {len(runs) - len(todo)} done, {len(todo)} to run", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(
                execute,
                r,
                python=args.python,
                threads=args.threads,
                log_dir=log_dir,
                extra=args.extra,
            )
            for r in todo
        ]
        failed = 0
        for f in futures:
            line = f.result()
            failed += line.startswith("FAILED")
            print(time.strftime("%H:%M:%S"), line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
