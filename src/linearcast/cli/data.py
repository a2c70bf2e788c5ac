"""``linearcast data list|describe|convert|download``.

- ``list``: the known datasets, their shapes, protocols and whether they download directly;
- ``describe PATH``: shape, frequency, zeros/NaN per channel, graph statistics and the window
  counts under a protocol (``PATH`` may be ``synthetic``);
- ``convert SRC OUT_DIR``: any supported format to a BasicTS folder;
- ``download NAME``: a catalogue dataset into the cache, checked after download.

The data modules are imported inside the commands so that ``linearcast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from linearcast import jsonio
from linearcast.errors import DataError


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Reader options from --freq/--start/--adj/--null/--set (the data_options of `train`)."""
    from linearcast.engine.config import numbers_from_text, parse_value

    opts: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--set expects NAME=VALUE (a reader option), found {item!r}.")
        opts[key.strip().removeprefix("data_options.")] = parse_value(raw.strip())
    if args.freq is not None:
        opts["freq_minutes"] = args.freq
    if args.start is not None:
        opts["start"] = args.start
    if args.adj is not None:
        opts["adjacency"] = args.adj
    if args.null is not None:
        opts["null_value"] = parse_value(args.null)
    return numbers_from_text(opts)


def _load(path: str | list[Any], fmt: str, args: argparse.Namespace | None = None) -> Any:
    from linearcast.data import load, synthetic_traffic

    if isinstance(path, list):  # describe's PATH...: one file, or several stacked
        path = path[0] if len(path) == 1 else path
    if path == "synthetic":
        return synthetic_traffic()
    return load(path, format=fmt, **(_options(args) if args is not None else {}))


def _time_lines(info: dict[str, Any], ds: Any) -> tuple[str, str]:
    """The frequency and start lines; where unknown, the options that give them."""
    if info["freq_minutes"]:
        freq = f"{info['freq_minutes']} min, steps/day {info['steps_per_day'] or 'unknown'}"
    elif ds.timestamps is not None:  # months, years: steps of varying length
        freq = f"{ds.meta.get('freq') or 'irregular'} (from the timestamps), steps/day unknown"
    else:
        freq = (
            "unknown (the file has no timestamps: give the step with --freq MINUTES here, "
            "--set data_options.freq_minutes=MINUTES for train/forecast)"
        )
    start = info["start"] or (
        "unknown (give the first step's time with --start YYYY-MM-DDTHH:MM here, "
        "--set data_options.start=YYYY-MM-DDTHH:MM for train/forecast)"
    )
    return freq, start


def _cmd_list(args: argparse.Namespace) -> int:
    from linearcast.data import CATALOG, PROTOCOLS

    if args.json:
        rows = [
            {
                "name": e.name,
                "format": e.format,
                "protocol": e.protocol,
                "shape": list(e.shape),
                "downloadable": e.downloadable,
                "description": e.description,
                "source": e.source,
            }
            for e in CATALOG.values()
        ]
        print(jsonio.dumps({"datasets": rows, "protocols": sorted(PROTOCOLS)}))
        return 0
    print(f"{'name':<16}{'format':<12}{'protocol':<10}{'shape [T, N, F]':<22}{'download':<10}")
    for e in CATALOG.values():
        shape = f"{e.shape[0]} x {e.shape[1]} x {e.shape[2]}"
        dl = "yes" if e.downloadable else "manual"
        print(f"{e.name:<16}{e.format:<12}{e.protocol:<10}{shape:<22}{dl:<10}")
    print(f"{'synthetic':<16}{'generated':<12}{'pems':<10}{'(configurable)':<22}{'built-in':<10}")
    print("\nprotocols:")
    for name, p in PROTOCOLS.items():
        print(f"  {name:<17}{p.description}")
    return 0


def _fmt_null(x: float) -> str:
    return "NaN" if math.isnan(x) else f"{x:g}"


def _cmd_describe(args: argparse.Namespace) -> int:
    from linearcast.data import get_protocol

    ds = _load(args.path, args.format, args)
    info = ds.describe()
    proto = get_protocol(args.protocol) if args.protocol else None
    if proto is not None:
        try:
            info["protocol"] = {
                "label": proto.label,
                "counts": proto.counts(ds.num_steps, ds.steps_per_day),
            }
        except DataError as err:
            info["protocol"] = {"label": proto.label, "error": str(err)}
    if args.json:
        print(jsonio.dumps(info, fallback=str))
        return 0
    t, n, f = info["shape"]
    print(f"{info['name']}  ({info['format']}{', memory-mapped' if info['memmap'] else ''})")
    if info["path"]:
        print(f"  path          {info['path']}")
    print(f"  shape         T={t} N={n} F={f}")
    freq, start = _time_lines(info, ds)
    print(f"  frequency     {freq}")
    print(f"  start         {start}")
    if ds.meta.get("files"):
        files = ds.meta["files"]
        more = ", ..." if len(files) > 3 else ""
        print(f"  files         {len(files)}: {', '.join(files[:3])}{more}")
    print(f"  null value    {_fmt_null(ds.null_value)}")
    total = t * n
    for ch in info["channels"]:
        rng = (
            ""
            if ch["min"] is None
            else f"min {ch['min']:.4g} max {ch['max']:.4g} mean {ch['mean']:.4g}"
        )
        null = "" if math.isnan(ds.null_value) else f"null {ch['null']}  "
        print(
            f"  {ch['name']:<13} zeros {ch['zeros']} ({100 * ch['zeros'] / total:.2f}%)  "
            f"NaN {ch['nan']}  inf {ch['inf']}  {null}missing {100 * ch['missing_share']:.2f}%"
            f"  {rng}"
        )
    if ds.node_names:
        shown = ", ".join(ds.node_names[:5]) + (", ..." if n > 5 else "")
        print(f"  series        {n}: {shown}")
    _print_series(info["series"], ds)
    g = info["graph"]
    note = ds.meta.get("graph_note")
    if g is None:
        print("  graph         none" + (f" ({note})" if note else ""))
    else:
        print(
            f"  graph         {g['nodes']} nodes, {g['undirected_edges']} edges, "
            f"density {g['density']:.4f}, symmetric {g['symmetric']}, self loops "
            f"{g['self_loops']}, isolated {g['isolated_nodes']}, weights "
            f"{g['weight_min']}..{g['weight_max']}"
        )
    if proto is not None:
        p = info["protocol"]
        print(f"  protocol      {p['label']}: {p.get('counts', p.get('error'))}")
    return 0


def _print_series(series: list[dict[str, Any]], ds: Any) -> None:
    """Per-series ranges (all of them for a few series, else the extremes) and far values."""
    names = ds.node_names or [f"node {i}" for i in range(ds.num_nodes)]
    for ch in series:
        pairs = [(nm, lo, hi) for nm, lo, hi in zip(names, ch["min"], ch["max"], strict=True)]
        pairs = [p for p in pairs if p[1] is not None]
        if not pairs:
            continue
        if len(pairs) <= 8:
            text = "; ".join(f"{nm} {lo:.4g}..{hi:.4g}" for nm, lo, hi in pairs)
        else:
            low = min(pairs, key=lambda p: p[1])
            high = max(pairs, key=lambda p: p[2])
            text = f"lowest min {low[1]:.4g} ({low[0]}), highest max {high[2]:.4g} ({high[0]})"
        print(f"  {ch['name'][:12]:<13} per series: {text}")
        far = ch["far_low"] + ch["far_high"]
        top = ch["far_values"][0] if ch["far_values"] else None
        if far and top is not None and top["count"] >= 3:
            # one value repeated far outside the series' range: a sentinel, not a reading
            values = ", ".join(f"{v['value']:g} ({v['count']}x)" for v in ch["far_values"])
            v = top["value"]
            print(
                f"  {'':<13} {far} values lie far outside their series' 5%..95% range (most "
                f"often {values}; in {', '.join(ch['far_series'])}). If {v:g} marks missing "
                f"readings, mask it: --null {v:g} here, --set data_options.null_value={v:g} for "
                f"train."
            )


def _cmd_convert(args: argparse.Namespace) -> int:
    from linearcast.data import write_basicts

    ds = _load(args.src, args.format, args)
    if args.name:
        ds.name = args.name
    # a null value the data was read with (--null, --set null_value=) wins over the
    # protocol's, as in training; the BasicTS copy carries it as NULL_VAL
    declared = "null_value" in _options(args)
    if not args.no_time_features:
        try:
            ds.time_of_day()
        except DataError:
            raise DataError(
                f"{args.src}: the time of day of its steps is unknown (no timestamps or "
                f"frequency), so no time features could be written; give the step with "
                f"--freq MINUTES (and --start YYYY-MM-DD for the calendar), or pass "
                f"--no-time-features."
            ) from None
    out = write_basicts(
        ds,
        args.out_dir,
        protocol=args.protocol,
        add_time_of_day=not args.no_time_features,
        add_day_of_week=not args.no_time_features,
        overwrite=args.overwrite,
        null_value=ds.null_value if declared else None,
    )
    print(f"wrote {out}/data.dat, desc.json" + (", adj_mx.pkl" if ds.adjacency is not None else ""))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from linearcast.data import download

    path = download(
        args.name,
        cache=args.cache_dir,
        base_url=args.base_url,
        force=args.force,
        progress=not args.no_progress,
    )
    print(path)
    return 0


def add_parser(sub: Any) -> None:
    """Add ``data`` and its sub-commands to the top-level sub-parsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "data", help="datasets: list, describe, convert, download"
    )

    def _usage(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_usage)
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    q = dsub.add_parser("list", help="known datasets and their protocols")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_list)

    fmt = argparse.RawDescriptionHelpFormatter

    def reader_options(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--format", default="auto", help="reader format (default: auto; see docs/data.md)"
        )
        q.add_argument("--freq", type=int, metavar="MINUTES", help="step of a file without dates")
        q.add_argument("--start", metavar="DATE", help="first time of a file without dates")
        q.add_argument(
            "--adj", metavar="FILE", help="the graph: an adjacency file, or 'none' (default: auto)"
        )
        q.add_argument("--null", metavar="VALUE", help="value that marks a missing reading")
        q.add_argument(
            "--set",
            action="append",
            metavar="NAME=VALUE",
            help="any reader option, as train's --set data_options.NAME=VALUE "
            "(e.g. graph_drop=[80], dedupe=first, key=arr_0)",
        )

    q = dsub.add_parser(
        "describe",
        help="shape, frequency, zeros/NaN, per-series ranges, sentinel values, graph",
        epilog="Examples:\n  linearcast data describe ETTh1.csv --protocol ett\n"
        "  linearcast data describe speeds.csv --freq 5 --start 2012-03-01 --adj adj.csv\n"
        "  linearcast data describe hzmetro/inflow_tensor.mat --set graph_drop=[80]\n"
        "  linearcast data describe forecasts.csv                   # long: unique_id, ds, y\n"
        "  linearcast data describe 'PRSA_Data_*.csv' --set value_column=PM2.5\n"
        "  linearcast data describe pm.csv --set id_column=station --set time_column=time "
        "--set value_column=PM2.5\n"
        "  linearcast data describe Bike_NYC.zip --set graph=distance",
        formatter_class=fmt,
    )
    q.add_argument(
        "path",
        nargs="+",
        help="a dataset file, a BasicTS folder, or 'synthetic'; several files (or a quoted glob "
        "pattern such as 'PRSA_Data_*.csv'), one per station, are stacked into one dataset",
    )
    reader_options(q)
    q.add_argument("--protocol", default=None, help="also print window counts under it")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_describe)

    q = dsub.add_parser(
        "convert",
        help="convert any supported format to the BasicTS layout",
        epilog="Examples:\n  linearcast data convert PEMS08.npz data/PEMS08\n"
        "  linearcast data convert speeds.csv data/speeds --freq 5 --start 2012-03-01",
        formatter_class=fmt,
    )
    q.add_argument("src", help="a dataset file, a BasicTS folder, or 'synthetic'")
    q.add_argument("out_dir", help="output folder (data.dat, desc.json, adj_mx.pkl)")
    reader_options(q)
    q.add_argument("--protocol", default="pems", help="protocol for regular_settings")
    q.add_argument("--name", default=None, help="dataset name written to desc.json")
    q.add_argument("--no-time-features", action="store_true", help="omit tod/dow channels")
    q.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier conversion in OUT_DIR (data.dat, desc.json, adj_mx.pkl); "
        "without it an existing file is kept and the command stops",
    )
    q.set_defaults(func=_cmd_convert)

    q = dsub.add_parser("download", help="download a catalogue dataset into the cache")
    q.add_argument("name", help="catalogue name (see `linearcast data list`)")
    q.add_argument(
        "--cache-dir", default=None, help="default $LINEARCAST_CACHE or ~/.cache/linearcast"
    )
    q.add_argument("--base-url", default=None, help="fetch files from this URL prefix instead")
    q.add_argument("--force", action="store_true", help="download again")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_download)
