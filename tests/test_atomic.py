"""Atomic output files: nothing half written, no temporary file left, one-sentence errors."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linearcast import atomic
from linearcast.errors import ConfigError, DataError


def _no_temps(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if atomic.TEMP_RE.match(p.name)]


def _one_sentence(text: str) -> bool:
    return "\n" not in text and text.endswith(".") and text.count(". ") == 0


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EIO])
def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    target = atomic.write_json(tmp_path / "metrics.json", {"MAE": 1.0})
    real_fsync = os.fsync

    def full(fd: int) -> None:  # the disk fills while the new file is flushed
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ConfigError) as err:
        atomic.write_json(target, {"MAE": 2.0}, what="metrics.json", fix="--out DIR")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert json.loads(target.read_text()) == {"MAE": 1.0}
    assert _no_temps(tmp_path)
    text = str(err.value)
    assert str(target) in text and _one_sentence(text)
    if code == errno.ENOSPC:
        assert "no space left" in text and "free some space" in text and "--out DIR" in text
    if code == errno.EACCES:
        assert "permission denied" in text


def test_a_failure_while_writing_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target, keep_suffix=True) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"half")
        raise RuntimeError("drawing failed")
    assert target.read_bytes() == b"old" and _no_temps(tmp_path)


@pytest.mark.parametrize("case", ["missing folder", "directory", "parent is a file"])
def test_bad_destinations_are_one_sentence_naming_the_path(tmp_path: Path, case: str) -> None:
    if case == "missing folder":
        target = tmp_path / "nope" / "m.json"
    elif case == "directory":
        target = tmp_path / "m.json"
        target.mkdir()
    else:
        (tmp_path / "f").write_text("x")
        target = tmp_path / "f" / "m.json"
    with pytest.raises(DataError) as err:
        atomic.write_text(target, "{}", fix="OUT", error=DataError)
    text = str(err.value)
    assert text.startswith(str(target)) and _one_sentence(text)
    assert "folder" in text or "directory" in text


def test_an_existing_file_is_refused_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "data.dat"
    target.write_bytes(b"measured")
    with pytest.raises(DataError, match="--overwrite"):
        atomic.check_destination(target, overwrite=False, error=DataError)
    assert target.read_bytes() == b"measured"
    assert atomic.check_destination(target, overwrite=True) == target


def test_stale_temps_of_our_pattern_are_removed_and_nothing_else(tmp_path: Path) -> None:
    ours = [".best.ckpt.k2j_9xab.tmp", ".curves.png.abcdefgh.tmp.png", ".metrics.json.12345678.tmp"]
    theirs = ["best.ckpt", ".hidden.tmp", "notes.tmp", ".x.short.tmp", ".gitignore"]
    for name in ours + theirs:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()
    removed = atomic.remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted(ours)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {*theirs, ".dir.abcdefgh.tmp"}


def test_temp_names_match_the_stale_pattern(tmp_path: Path) -> None:
    seen: list[str] = []
    with atomic.atomic_path(tmp_path / "history.csv") as tmp:
        seen.append(tmp.name)
    with atomic.atomic_path(tmp_path / "errors.png", keep_suffix=True) as tmp:
        seen.append(tmp.name)
    assert all(atomic.TEMP_RE.match(name) for name in seen)


@pytest.mark.parametrize("case", ["file", "file in path"])
def test_make_folder_refuses_a_file_in_one_sentence(tmp_path: Path, case: str) -> None:
    (tmp_path / "f").write_text("x")
    target = tmp_path / "f" if case == "file" else tmp_path / "f" / "runs"
    with pytest.raises(ConfigError) as err:
        atomic.make_folder(target, what="run directories", fix="--out DIR")
    text = str(err.value)
    assert text.startswith(str(target)) and "found a file" in text and "--out DIR" in text
    assert _one_sentence(text)
    assert atomic.make_folder(tmp_path / "a" / "b").is_dir()


def test_permission_denied_names_the_folder_that_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    err = PermissionError(errno.EACCES, "Permission denied", str(runs / "dlinear-x"))
    text = atomic.os_error_message(runs, err, what="a run directory", fix="--out DIR")
    assert f"make {runs} writable" in text and _one_sentence(text)


_EXAMPLES = int(os.environ.get("LINEARCAST_HYPOTHESIS_EXAMPLES", "30"))


@pytest.mark.fuzz
@settings(
    max_examples=_EXAMPLES,
    deadline=None,
    derandomize="LINEARCAST_HYPOTHESIS_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    old=st.binary(max_size=64),
    new=st.binary(max_size=4096),
    where=st.sampled_from(["write", "fsync", "replace", "mkstemp"]),
    code=st.sampled_from([errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EIO]),
)
def test_any_failure_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, old: bytes, new: bytes, where: str, code: int
) -> None:
    folder = tmp_path / f"d{abs(hash((old, new, where, code)))}"
    folder.mkdir()
    target = folder / "out.bin"
    target.write_bytes(old)

    def fail(*_: object, **__: object) -> None:
        raise OSError(code, os.strerror(code))

    with pytest.MonkeyPatch.context() as mp:
        if where == "write":
            real_open = open

            def opener(path: object, mode: str = "r", *a: object, **k: object) -> object:
                fh = real_open(path, mode, *a, **k)  # type: ignore[call-overload]
                if "w" in mode:
                    fh.write(new[: len(new) // 2])
                    fh.close()
                    fail()
                return fh

            mp.setattr("builtins.open", opener)
        elif where == "fsync":
            mp.setattr(atomic, "_fsync_file", fail)
        elif where == "replace":
            mp.setattr(atomic.os, "replace", fail)
        else:
            mp.setattr(atomic.tempfile, "mkstemp", fail)
        with pytest.raises(ConfigError) as err:
            atomic.write_bytes(target, new, what="out.bin")
    assert target.read_bytes() == old
    assert sorted(p.name for p in folder.iterdir()) == ["out.bin"]
    assert str(target) in str(err.value) and "\n" not in str(err.value)


def test_written_files_get_the_umask_mode_or_keep_the_replaced_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mkstemp's temporary files are private (0600): a forecast, a converted dataset or a run
    file others should read stayed so. New files get 0666 less the umask, as ``open()`` gives;
    a replaced file keeps its mode."""
    monkeypatch.setattr(atomic, "_UMASK", None)  # read afresh under the umask set here
    old = os.umask(0o022)
    try:
        atomic.write_bytes(tmp_path / "new.csv", b"a\n")
        assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.csv"
        kept.write_bytes(b"old\n")
        kept.chmod(0o640)
        atomic.write_bytes(kept, b"new\n")
        assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_bytes() == b"new\n"
    finally:
        os.umask(old)
