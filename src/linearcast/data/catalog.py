"""Known datasets: format, protocol, public files and expected shapes; and their download.

``download(name)`` fetches an entry's files from its public release URL into the cache
(``$LINEARCAST_CACHE`` or ``~/.cache/linearcast``), each to a temporary file renamed into place
only when complete, shows a progress bar, then reads the dataset and checks its shape; a file
that does not match is removed and reported. Entries whose data has no direct public URL (the
authors share them on cloud drives) say where to get them.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linearcast.atomic import file_mode
from linearcast.data.dataset import TimeSeriesDataset
from linearcast.data.readers import load
from linearcast.errors import DataError

_ASTGNN = "https://raw.githubusercontent.com/guoshnBJTU/ASTGNN/main/data"
_ETT = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small"
_PGT = "https://raw.githubusercontent.com/benedekrozemberczki/pytorch_geometric_temporal/master/dataset"
_TGCN = "https://raw.githubusercontent.com/lehaifeng/T-GCN/master/T-GCN/T-GCN-PyTorch/data"
_LTSF = (
    "https://raw.githubusercontent.com/junwoopark92/Self-Supervised-Contrastive-Forecsating/"
    "e20c108114cf68d451c938712ad28dac5f83ef6e/dataset"
)


@dataclass(frozen=True)
class CatalogEntry:
    """One known dataset.

    Attributes:
        name: catalogue name (``PEMS08``, ``ETTh1``, ...).
        format: reader format (see :data:`linearcast.data.readers.READERS`).
        protocol: protocol preset it is evaluated with.
        shape: expected ``[T, N, F]`` of the dataset read from the files.
        files: file name -> public URL (``None`` when no direct download exists).
        main_file: the file (or ``"."`` for the folder) handed to the reader.
        read_kwargs: extra reader arguments (frequency, ...).
        description: one line.
        source: where the files come from, and how to get them when there is no URL.
    """

    name: str
    format: str
    protocol: str
    shape: tuple[int, int, int]
    files: dict[str, str | None]
    main_file: str
    read_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = ""

    @property
    def downloadable(self) -> bool:
        """All files have a public URL."""
        return all(u is not None for u in self.files.values())


def _pems(name: str, t: int, n: int, f: int, pems03: bool = False) -> CatalogEntry:
    files: dict[str, str | None] = {
        f"{name}.npz": f"{_ASTGNN}/{name}/{name}.npz",
        f"{name}.csv": f"{_ASTGNN}/{name}/{name}.csv",
    }
    if pems03:
        files[f"{name}.txt"] = f"{_ASTGNN}/{name}/{name}.txt"
    return CatalogEntry(
        name=name,
        format="pems",
        protocol="pems",
        shape=(t, n, f),
        files=files,
        main_file=f"{name}.npz",
        description=f"Caltrans PeMS District {name[-1]}, 5-minute, {n} sensors",
        source="STSGCN/ASTGNN release (guoshnBJTU/ASTGNN, data/)",
    )


def _ett(name: str, t: int) -> CatalogEntry:
    return CatalogEntry(
        name=name,
        format="ltsf",
        protocol="ett",
        shape=(t, 7, 1),
        files={f"{name}.csv": f"{_ETT}/{name}.csv"},
        main_file=f"{name}.csv",
        description="Electricity Transformer Temperature (7 series, OT last)",
        source="zhouhaoyi/ETDataset, ETT-small/ (CC BY-ND 4.0)",
    )


def _dcrnn(name: str, t: int, n: int, h5: str, adj: str, description: str) -> CatalogEntry:
    """METR-LA / PEMS-BAY as DCRNN shares them: an HDF5 frame and a graph pickle, no URL."""
    return CatalogEntry(
        name=name,
        format="metr",
        protocol="metr",
        shape=(t, n, 1),
        files=dict.fromkeys([h5, adj]),
        main_file=h5,
        description=description,
        source="DCRNN (liyaguang/DCRNN): Google Drive / Baidu links in its README",
    )


def _autoformer(name: str, t: int, n: int, description: str) -> CatalogEntry:
    """A CSV of the Autoformer collection that has no direct URL."""
    return CatalogEntry(
        name=name,
        format="ltsf",
        protocol="ltsf",
        shape=(t, n, 1),
        files={f"{name}.csv": None},
        main_file=f"{name}.csv",
        description=description,
        source="Autoformer (thuml/Autoformer): Google Drive link in its README",
    )


def _pgt(name: str, t: int, n: int, description: str) -> CatalogEntry:
    """A pytorch-geometric-temporal JSON file."""
    return CatalogEntry(
        name=name,
        format="pgt",
        protocol="ltsf",
        shape=(t, n, 1),
        files={f"{name}.json": f"{_PGT}/{name}.json"},
        main_file=f"{name}.json",
        description=description,
        source="pytorch_geometric_temporal (MIT)",
    )


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in [
        _pems("PEMS03", 26208, 358, 1, pems03=True),
        _pems("PEMS04", 16992, 307, 3),
        _pems("PEMS07", 28224, 883, 1),
        _pems("PEMS08", 17856, 170, 3),
        _dcrnn(
            "METR-LA", 34272, 207, "metr-la.h5", "adj_mx.pkl",
            "Los Angeles loop detectors, speed, 5-minute",
        ),
        _dcrnn(
            "PEMS-BAY", 52116, 325, "pems-bay.h5", "adj_mx_bay.pkl",
            "Bay Area loop detectors, speed, 5-minute",
        ),
        _ett("ETTh1", 17420),
        _ett("ETTh2", 17420),
        _ett("ETTm1", 69680),
        _ett("ETTm2", 69680),
        CatalogEntry(
            name="exchange_rate",
            format="ltsf",
            protocol="ltsf",
            shape=(7588, 8, 1),
            files={"exchange_rate.csv": f"{_LTSF}/exchange_rate/exchange_rate.csv"},
            main_file="exchange_rate.csv",
            description="daily exchange rates of 8 countries, 1990-2010",
            source="LSTNet data via the Autoformer CSV layout",
        ),
        CatalogEntry(
            name="illness",
            format="ltsf",
            protocol="ili",
            shape=(966, 7, 1),
            files={"national_illness.csv": f"{_LTSF}/illness/national_illness.csv"},
            main_file="national_illness.csv",
            description="weekly US influenza-like illness, 2002-2020",
            source="CDC ILINet via the Autoformer CSV layout",
        ),
        _autoformer("weather", 52696, 21, "21 weather indicators, 10-minute, 2020"),
        _autoformer("electricity", 26304, 321, "hourly consumption of 321 clients"),
        _autoformer("traffic", 17544, 862, "hourly road occupancy of 862 sensors"),
        CatalogEntry(
            name="los_loop",
            format="matrix_csv",
            protocol="metr",
            shape=(2016, 207, 1),
            files={
                "los_speed.csv": f"{_TGCN}/los_speed.csv",
                "los_adj.csv": f"{_TGCN}/los_adj.csv",
            },
            main_file="los_speed.csv",
            read_kwargs={"freq_minutes": 5},
            description="METR-LA speeds, 207 sensors, first week of March 2012 (T-GCN)",
            source="lehaifeng/T-GCN (MIT)",
        ),
        _pgt("chickenpox", 521, 20, "weekly chickenpox cases, 20 Hungarian counties (z-scored)"),
        _pgt("pedalme_london", 35, 15, "weekly bicycle deliveries, 15 London zones"),
        _pgt(
            "england_covid", 61, 129,
            "daily COVID cases, 129 English regions, daily mobility graph",
        ),
    ]
}  # fmt: skip


def get_entry(name: str, catalog: dict[str, CatalogEntry] | None = None) -> CatalogEntry:
    """Look a dataset up by name (case-insensitive).

    Args:
        name: catalogue name.
        catalog: another catalogue (tests); default :data:`CATALOG`.

    Returns:
        The entry.
    """
    cat = CATALOG if catalog is None else catalog
    for key, entry in cat.items():
        if key.lower() == name.lower():
            return entry
    raise DataError(f"unknown dataset {name!r}; expected one of {sorted(cat)}.")


def cache_dir(override: str | Path | None = None) -> Path:
    """The download cache: ``override``, else ``$LINEARCAST_CACHE``, else ~/.cache/linearcast."""
    if override is not None:
        return Path(override)
    env = os.environ.get("LINEARCAST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "linearcast"


def _fetch(url: str, dest: Path, progress: bool, timeout: float) -> None:
    """Download ``url`` to ``dest`` through a temporary file renamed atomically."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "linearcast"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                ) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
            if total is not None and out.tell() != total:
                raise DataError(
                    f"{url}: expected {total} bytes, received {out.tell()} (connection cut?)."
                )
        os.chmod(tmp, file_mode(dest))  # mkstemp's files are private (0600)
        os.replace(tmp, dest)
    except urllib.error.HTTPError as err:
        raise DataError(f"{url}: download failed with HTTP {err.code} ({err.reason}).") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise DataError(f"{url}: download failed ({err}).") from err
    finally:
        if tmp.exists():
            tmp.unlink()


def download(
    name: str,
    *,
    cache: str | Path | None = None,
    base_url: str | None = None,
    catalog: dict[str, CatalogEntry] | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download a catalogue dataset into ``<cache>/<name>/`` and check its shape.

    Args:
        name: catalogue name.
        cache: cache folder (default :func:`cache_dir`).
        base_url: fetch every file from ``<base_url>/<file name>`` instead of its public URL
            (mirrors, tests).
        catalog: another catalogue (tests).
        force: download again even when the files exist.
        progress: show a tqdm progress bar (stderr).
        timeout: seconds per connection.

    Returns:
        Path of the file to read (``main_file``) inside the cache.

    Raises:
        DataError: unknown name, no public URL, failed download or wrong shape (the files
            just downloaded are then removed).
    """
    entry = get_entry(name, catalog)
    target = cache_dir(cache) / entry.name
    if not entry.downloadable and base_url is None:
        raise DataError(
            f"{entry.name}: no direct public download; get {sorted(entry.files)} from "
            f"{entry.source} and read them with linearcast.data.load(path)."
        )
    fetched: list[Path] = []
    for fname, url in entry.files.items():
        dest = target / fname
        if dest.exists() and not force:
            continue
        src = f"{base_url.rstrip('/')}/{fname}" if base_url is not None else url
        assert src is not None
        _fetch(src, dest, progress, timeout)
        fetched.append(dest)
    main = target / entry.main_file
    try:
        validate(entry, main)
    except DataError:
        for p in fetched:
            p.unlink(missing_ok=True)
        raise
    return main


def validate(entry: CatalogEntry, path: Path) -> TimeSeriesDataset:
    """Read ``path`` as ``entry`` says and check the shape.

    Returns:
        The dataset read.
    """
    ds = load(path, format=entry.format, **entry.read_kwargs)
    if tuple(ds.shape) != tuple(entry.shape):
        raise DataError(
            f"{path}: expected {entry.name} of shape {list(entry.shape)} [T, N, F], "
            f"found {list(ds.shape)}."
        )
    return ds
