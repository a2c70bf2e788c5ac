"""`data convert` / write_basicts: nothing measured is lost, no traceback, no temp left."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from linearcast.atomic import TEMP_RE
from linearcast.cli import main
from linearcast.data import synthetic_traffic, write_basicts, writers
from linearcast.errors import DataError


def _small() -> object:
    return synthetic_traffic(num_nodes=3, days=1)


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if TEMP_RE.match(p.name) or p.name.endswith(".part")]


def test_a_full_disk_keeps_the_earlier_conversion_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = write_basicts(_small(), tmp_path / "out")  # type: ignore[arg-type]
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    class FullDisk:
        """A file whose second write finds the disk full (the first lands half the data)."""

        def __init__(self, path: Path, mode: str) -> None:
            self.fh, self.writes = open(path, mode), 0

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            self.writes += 1
            if self.writes > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.fh.write(data[: len(data) // 2])

    monkeypatch.setattr(writers, "open", FullDisk, raising=False)
    monkeypatch.setattr(writers, "_iter_row_chunks", lambda v: [slice(0, 100), slice(100, None)])
    with pytest.raises(DataError) as err:
        write_basicts(_small(), out, overwrite=True)  # type: ignore[arg-type]
    monkeypatch.undo()
    text = str(err.value)
    assert "data.dat" in text and "no space left" in text and "\n" not in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _temps(out) == []


@pytest.mark.parametrize("name", ["data.dat", "desc.json", "adj_mx.pkl"])
def test_any_existing_output_file_is_refused_without_overwrite(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_bytes(b"measured")
    with pytest.raises(DataError, match="--overwrite") as err:
        write_basicts(_small(), out)  # type: ignore[arg-type]
    assert str(out / name) in str(err.value)
    assert (out / name).read_bytes() == b"measured"
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing else was written


def test_convert_onto_an_existing_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "taken"
    target.write_bytes(b"measured")
    assert main(["data", "convert", "synthetic", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert str(target) in err and "found a file" in err
    assert target.read_bytes() == b"measured"


def test_convert_overwrite_replaces_and_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deep" / "out"  # missing parents are created for the output folder
    assert main(["data", "convert", "synthetic", str(out)]) == 0
    assert main(["data", "convert", "synthetic", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["data", "convert", "synthetic", str(out), "--overwrite"]) == 0
    from linearcast.data import read_basicts

    ds, ref = read_basicts(out), synthetic_traffic()
    np.testing.assert_allclose(np.asarray(ds.values), np.asarray(ref.values, dtype=np.float32))
    assert _temps(out) == []
