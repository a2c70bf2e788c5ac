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
