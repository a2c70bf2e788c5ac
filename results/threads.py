"""Two single-threaded training processes side by side, or one two-threaded process at a time?

    python results/threads.py                      # HZMetro ELinFormer and ETTh1 SAMoVAR, 1 epoch
    python results/threads.py --runs ETTh1__samovar__s0 --epochs 2

For each run of a results table (its exact ``linearcast train`` command, but ``--epochs`` short
and a scratch output folder), the same work — two copies of the run — is done twice on this
machine: one after the other with 2 torch threads each, then side by side with 1 thread each. The
wall time of each way and their ratio go to ``results/threads.json``. Measure on a quiet machine:
another busy process changes both ways, but not equally.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "results"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from plans import TABLES, Run  # noqa: E402

DEFAULT_RUNS = ("hzmetro__elinformer__s0", "ETTh1__samovar__s0")


def _find(run_id: str) -> Run:
    for table in TABLES.values():
        for run in table.runs:
            if run.run_id == run_id:
                return run
    raise SystemExit(f"no run {run_id!r} in the results tables (python results/run.py T --list)")


def _start(run: Run, out: Path, name: str, threads: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "linearcast", "train", *run.argv()]
    cmd += ["--out", str(out), "--run-name", name, "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def _wall(procs_in_turn: list[list[Any]]) -> float:
    """Start each group of (run, out, name, threads), wait for it, then the next; total wall s."""
    started = time.perf_counter()
    for group in procs_in_turn:
        procs = [_start(*spec) for spec in group]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(f"a training run failed (exit {p.returncode}): {p.args}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), help="run ids")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "threads.json")
    args = parser.parse_args(argv)
    from _machine import machine_header
    from linearcast import jsonio

    records = []
    for run_id in args.runs:
        run = dataclasses.replace(_find(run_id), epochs=args.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            one = _wall([[(run, out, "a2", 2)], [(run, out, "b2", 2)]])
            two = _wall([[(run, out, "a1", 1), (run, out, "b1", 1)]])
        rec = {
            "run": run_id,
            "command": ["linearcast", "train", *run.argv()],
            "one_process_two_threads_in_turn_s": one,
            "two_processes_one_thread_side_by_side_s": two,
            "side_by_side_speedup": one / two,
        }
        records.append(rec)
        print(f"{run_id}: in turn (2 threads) {one:.1f} s, side by side (1 thread) {two:.1f} s "
              f"-> side by side is {one / two:.2f}x faster", flush=True)  # fmt: skip
    result = {"benchmark": "threads", "machine": machine_header(), "epochs": args.epochs,
              "command": " ".join(["python", "results/threads.py", *(argv or sys.argv[1:])]),
              "records": records}  # fmt: skip
    args.out.write_text(jsonio.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
