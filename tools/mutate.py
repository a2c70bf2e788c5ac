"""Mutation testing of the modules where a silent bug costs most (``make mutate``).

Runs mutmut (the ``mutate`` extra) once per *group* of modules, each with its own subset of the
tests and its own time box, in ``build/mutate/<group>/`` (a copy of ``src/`` and ``tests/`` with
a generated ``[tool.mutmut]`` section), then writes a table of the outcome per module to
``build/mutate/summary.md`` (and ``summary.json``) and the diff of every survivor to
``build/mutate/<group>/survivors.txt``.

A survivor is either a missing test (write it) or an equivalent mutant (no test can tell it from
the original): the latter are listed with a sentence each in ``tools/mutate_equivalent.toml``
and are counted apart. Mutant names are stable while their function is unchanged; an entry whose
mutant no longer exists or now dies is reported as stale.

Usage::

    python tools/mutate.py                       # every group afresh, default time boxes
    python tools/mutate.py --groups metrics,data --minutes 5
    python tools/mutate.py --continue            # keep the verdicts: check the rest, re-test
                                                 # the undetected against the current tests
    python tools/mutate.py --summary-only        # re-read the results of the last run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "mutate"
EQUIVALENT = Path(__file__).with_name("mutate_equivalent.toml")

# Lines of trainer.py and run_state.py that restore or save the state a resume needs; the rest of
# the training loop is left to the end-to-end tests (mutating all of it would cost a training run
# per mutant).
RESUME_WORDS = r"ckpt|resume|start_epoch|global_step|load_state_dict|rng|per_rank|use_epoch"
# Not mutated anywhere: the wording of errors and log lines (tests match their key words with
# ``match=``; the sentences are free to change) -- a raise line, a line that is only a string
# literal (a message's continuation), a log/print call.
MESSAGE_LINES = (
    r"\braise \w+\(",
    r"^\s*(rf|fr|f|r)?\"[^\"]*\"\s*[),]*\s*$",
    r"\b(log\.\w+|warnings\.warn|say|print)\(",
)


@dataclass(frozen=True)
class Group:
    """Modules mutated together and the tests that may kill their mutants.

    Attributes:
        files: source files (globs) to mutate.
        tests: pytest arguments selecting the tests (mutmut then runs, per mutant, only those
            that call the mutated function).
        minutes: time box on 2 cores; mutants not run by then count as "not checked".
        skip_lines: regexes of source lines not to mutate.
    """

    files: tuple[str, ...]
    tests: tuple[str, ...]
    minutes: float
    skip_lines: tuple[str, ...] = field(default=())


GROUPS: dict[str, Group] = {
    "engine": Group(
        ("src/linearcast/engine/checkpoint.py", "src/linearcast/engine/samplers.py"),
        (
            "tests/engine/test_engine_checkpoint.py",
            "tests/engine/test_engine_samplers.py",
            "tests/engine/test_engine_safety.py",  # safe loading, weights that do not fit
        ),
        6,
    ),
    "metrics": Group(
        ("src/linearcast/metrics.py",),
        (
            "tests/test_metrics.py",
            "tests/test_metrics_masking.py",
            "tests/test_metrics_per_step.py",
        ),
        6,
    ),
    "data": Group(
        (
            "src/linearcast/data/protocols.py",
            "src/linearcast/data/prepared.py",  # Protocol.prepare's body, split out of protocols
            "src/linearcast/data/scaler.py",
            "src/linearcast/data/windows.py",
        ),
        (
            "tests/data/test_data_protocols.py",
            "tests/data/test_data_bad_input.py",
            "tests/data/test_data_prepared.py",
            # the other tests that call Protocol.prepare (data/prepared.py)
            "tests/data/test_data_memmap.py",
            "tests/data/test_data_first_try.py",
            "tests/data/test_data_safety.py",
            "tests/test_metrics_masking.py",
            "tests/engine/test_engine_setup_fields.py",
        ),
        12,
    ),
    "resume": Group(
        ("src/linearcast/engine/trainer.py", "src/linearcast/engine/run_state.py"),
        (
            "tests/engine/test_engine_train.py",
            "tests/engine/test_engine_safety.py",
            "-k",
            "resume or checked_before or nan_loss",
        ),
        12,
        (rf"^(?!.*({RESUME_WORDS}))",),
    ),
    "ops": Group(("src/linearcast/ops/*.py",), ("tests/ops",), 25),
}

STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    37: "type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}
DETECTED = {"killed", "timeout"}


def _mutmut_section(group: Group) -> str:
    def arr(items: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/"]\n'
        f"only_mutate = {arr(group.files)}\n"
        f"pytest_add_cli_args_test_selection = {arr(group.tests)}\n"
        f"do_not_mutate_patterns = {arr((*MESSAGE_LINES, *group.skip_lines))}\n"
        # torch is not fork-safe once it has run: fork workers from a clean server process
        'process_isolation = "forkserver"\n'
        "use_git_change_detection = false\n"
    )


def _prepare(name: str, group: Group, *, fresh: bool) -> Path:
    """The group's working copy: src, tests and a pyproject with its mutmut section.

    ``fresh=False`` keeps ``mutants/`` (mutmut's results): it re-tests only what changed (new
    source, a new test selection) and leaves the other verdicts standing.
    """
    work = OUT / name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    # which tests call which function: kept, mutmut would map a function new since the last
    # run only to the tests new since then (its added mutants then "survive" the old tests)
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    for folder in ("src", "tests"):
        shutil.rmtree(work / folder, ignore_errors=True)
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\][^\[]*", "\n", text)  # ours replaces any existing one
    (work / "pyproject.toml").write_text(text + _mutmut_section(group))
    return work


def _mutmut(work: Path, names: list[str], deadline: float, max_children: int) -> bool:
    """``mutmut run [names]`` in ``work`` until done or ``deadline``; False when cut short."""
    mutmut = Path(sys.executable).with_name("mutmut")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    with (work / "mutmut.log").open("a") as log:
        proc = subprocess.Popen(
            [str(mutmut), "run", "--max-children", str(max_children), *names],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            # mutmut saves each verdict as it comes: what was not reached stays "not checked"
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return False


def _equivalent() -> dict[str, str]:
    """``{mutant name: why no test can tell it from the original}`` from the reviewed list."""
    if not EQUIVALENT.is_file():
        return {}
    return dict(tomllib.loads(EQUIVALENT.read_text()).get("equivalent", {}))


def _undetected(work: Path) -> list[str]:
    """Survivors and untested mutants, less those listed as equivalent (re-testing them only
    costs a full pass of their tests each; a listed mutant whose code changed gets a new hash
    and is re-tested by mutmut anyway)."""
    equivalent = _equivalent()
    return [
        k
        for k, (_, st) in _verdicts(work).items()
        if st in ("survived", "no tests") and k not in equivalent
    ]


def _run(name: str, group: Group, minutes: float, max_children: int, *, fresh: bool) -> float:
    """Mutate the group within its time box; when continuing, also re-test the undetected."""
    started = time.monotonic()
    deadline = started + minutes * 60
    again = [] if fresh else _undetected(OUT / name)
    work = _prepare(name, group, fresh=fresh)
    print(f"[{name}] mutmut run, time box {minutes:g} min (log: {work / 'mutmut.log'})", flush=True)
    done = True
    if again:  # first, so that a short time box still measures the new tests
        # listing the names makes mutmut re-test them; new tests get their stats first
        print(f"[{name}] re-testing {len(again)} undetected mutants", flush=True)
        done = _mutmut(work, again, deadline, max_children)
    if done:
        done = _mutmut(work, [], deadline, max_children)  # every mutant without a verdict
    if not done:
        print(f"[{name}] time box reached; the mutants left are 'not checked'", flush=True)
    return time.monotonic() - started


def _verdicts(work: Path) -> dict[str, tuple[str, str]]:
    """``{mutant name: (source file, status)}`` from mutmut's ``.meta`` files."""
    out: dict[str, tuple[str, str]] = {}
    for meta in sorted((work / "mutants" / "src").rglob("*.py.meta")):
        source = str(meta.relative_to(work / "mutants"))[: -len(".meta")]
        data = json.loads(meta.read_text())
        for key, code in data.get("exit_code_by_key", {}).items():
            out[key] = (source, STATUS.get(code, "suspicious"))
    return out


def _show(work: Path, name: str) -> str:
    mutmut = Path(sys.executable).with_name("mutmut")
    done = subprocess.run(
        [str(mutmut), "show", name], cwd=work, capture_output=True, text=True, check=False
    )
    return done.stdout


def summarize(
    names: list[str], seconds: dict[str, float], *, diffs: bool = True
) -> dict[str, object]:
    """Per-module counts over the groups' last results; writes summary.md/.json, survivors.txt."""
    equivalent = _equivalent()
    rows: dict[str, Counter[str]] = {}
    stale: list[str] = []
    for name in names:
        work = OUT / name
        verdicts = _verdicts(work)
        if not verdicts:
            continue
        survivors: list[str] = []
        for key, (source, status) in sorted(verdicts.items()):
            if status == "survived" and key in equivalent:
                status = "equivalent"
            elif status in ("survived", "no tests"):
                survivors.append(key)
            rows.setdefault(source, Counter())[status] += 1
        stale += [k for k in equivalent if k in verdicts and verdicts[k][1] != "survived"]
        with (work / "survivors.txt").open("w") as fh:
            for key in survivors:
                fh.write((_show(work, key) if diffs else f"# {key}") + "\n")
    ran = {_module(source) for source in rows}
    known = {k for n in names for k in _verdicts(OUT / n)}
    stale += [k for k in equivalent if k not in known and k.rsplit(".x", 1)[0] in ran]

    header = (
        "| module | mutants | killed | timeout | survived | no tests | equivalent | not checked "
        "| survival |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines, table = [], {}
    for source, c in [*sorted(rows.items()), ("all", sum(rows.values(), Counter()))]:
        # survival: undetected non-equivalent mutants (survived or reached by no test) over
        # the non-equivalent mutants that were checked
        undetected = c["survived"] + c["no tests"]
        checked = undetected + c["killed"] + c["timeout"]
        rate = 100.0 * undetected / checked if checked else 0.0
        table[source] = dict(c) | {"survival_percent": round(rate, 1)}
        lines.append(
            f"| {source.removeprefix('src/linearcast/')} | {sum(c.values())} | {c['killed']} "
            f"| {c['timeout']} | {c['survived']} | {c['no tests']} | {c['equivalent']} "
            f"| {c['not checked']} | {rate:.1f}% |"
        )
    timing = ", ".join(f"{n} {s / 60:.1f} min" for n, s in seconds.items())
    text = header + "\n".join(lines) + "\n"
    if timing:
        text += f"\nwall time: {timing}\n"
    if stale:
        text += "\nstale entries in tools/mutate_equivalent.toml: " + ", ".join(stale) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.md").write_text(text)
    (OUT / "summary.json").write_text(json.dumps({"modules": table, "stale": stale}, indent=1))
    print(text)
    return {"modules": table, "stale": stale}


def _module(source: str) -> str:
    return source.removeprefix("src/").removesuffix(".py").replace("/", ".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated groups")
    parser.add_argument("--minutes", type=float, help="time box per group (default: its own)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutants")
    parser.add_argument("--summary-only", action="store_true", help="only re-read the results")
    parser.add_argument(
        "--no-diffs", action="store_true", help="list survivors by name only (mutmut show is slow)"
    )
    parser.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="keep the last results: check the rest and re-test the undetected ones",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.groups.split(",") if n.strip()]
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; known: {', '.join(GROUPS)}")
    seconds: dict[str, float] = {}
    if not args.summary_only:
        for name in names:
            group = GROUPS[name]
            minutes = args.minutes or group.minutes
            seconds[name] = _run(name, group, minutes, args.max_children, fresh=not args.resume)
    summarize(names, seconds, diffs=not args.no_diffs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
