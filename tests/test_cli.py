import warnings

import pytest

from linearcast.cli import build_parser


def test_parser_lists_every_command() -> None:
    text = build_parser().format_help()
    for command in ("demo", "data", "train", "evaluate", "predict", "models", "bench"):
        assert command in text, command


def test_a_commands_user_warnings_print_after_its_work_one_line_each_repeats_included(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from linearcast.cli import warnings_after

    with warnings_after():
        for _ in range(2):  # Python's default shows a repeat from one line once
            warnings.warn("series 'a' is\n  constant", UserWarning, stacklevel=1)
        warnings.warn("internal detail", DeprecationWarning, stacklevel=1)
        print("progress")
    out, err = capsys.readouterr()
    assert out == "progress\n"
    assert err.splitlines() == ["linearcast: warning: series 'a' is constant"] * 2
