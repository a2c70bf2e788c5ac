"""``linearcast.fit`` says what it is doing in an interactive session and stays quiet in
scripts and tests unless asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from linearcast import api

_FIT = (
    "import linearcast\n"
    "linearcast.fit('last-value', 'synthetic', accelerator='cpu', out_dir={out!r},"
    " synthetic={{'num_nodes': 4, 'days': 3}}, plots=False, tensorboard=False)\n"
)


def _run(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=300
    )


def test_a_script_is_quiet_and_an_interactive_session_shows_the_epoch_lines(
    tmp_path: Path,
) -> None:
    quiet = _run(_FIT.format(out=str(tmp_path / "a")))
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "run directory" not in quiet.stdout + quiet.stderr
    # python -i: what a user at the prompt runs (stdin is closed, so it exits after the fit)
    shown = subprocess.run(
        [sys.executable, "-i", "-c", _FIT.format(out=str(tmp_path / "b"))],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "run directory" in shown.stdout + shown.stderr


def test_interactive_session_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "ps1", raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert api.interactive_session() is bool(sys.flags.interactive)
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    assert api.interactive_session()
