"""A config file or a run's JSON that is not text is one sentence naming it, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from linearcast.engine.config_io import read_config_file
from linearcast.engine.run_dir import read_json
from linearcast.errors import ConfigError

_DAMAGE = {
    "not-utf8": (b"\x8d\x99{}", r"found bytes that are not UTF-8 text \(at offset 0\)"),
    "nested": (b"[" * 100_000, r"found values nested too deeply to read|cannot parse"),
}


@pytest.mark.parametrize("suffix", [".json", ".toml"])
@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_a_damaged_config_file_is_one_sentence_naming_it(
    tmp_path: Path, suffix: str, damage: str
) -> None:
    content, found = _DAMAGE[damage]
    path = tmp_path / f"config{suffix}"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"^{path}: .*({found})"):
        read_config_file(path)


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_a_damaged_json_of_a_run_is_one_sentence_naming_it(tmp_path: Path, damage: str) -> None:
    content, found = _DAMAGE[damage]
    path = tmp_path / "metrics.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"^{path}: expected JSON text, ({found})"):
        read_json(path)


def test_a_config_that_is_no_regular_file_says_what_it_is(tmp_path: Path) -> None:
    """``--config /dev/zero`` or a FIFO was "config file not found"; reading either would
    hang or never end, so neither is opened and the message says what the path is."""
    import os

    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"c\.toml: expected a config file .* found a FIFO"):
        read_config_file(fifo)
    with pytest.raises(ConfigError, match=r"/dev/zero: expected a config file .* found a device"):
        read_config_file("/dev/zero")
    with pytest.raises(ConfigError, match=r"expected a config file .*, found a directory"):
        read_config_file(tmp_path)
    with pytest.raises(ConfigError, match=r"none\.toml: file not found"):
        read_config_file(tmp_path / "none.toml")
