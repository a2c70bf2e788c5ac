import warnings

import pytest

from linearcast.cli import build_parser


def test_parser_lists_every_command() -> None:
    text = build_parser().format_help()
    for command in ("demo", "data", "train", "evaluate", "predict", "models", "bench"):
        assert command in text, command


def test_a_command_says_a_warning_once_however_often_its_data_is_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from linearcast.cli import _once_per_command

    show = _once_per_command()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        for text in ("a.csv: 3 NaN kept", "a.csv:  3 NaN\n kept", "b.csv: 1 NaN kept"):
            warnings.warn(text, UserWarning, stacklevel=1)  # train reads its data twice
    assert capsys.readouterr().err.splitlines() == [
        "linearcast: warning: a.csv: 3 NaN kept",
        "linearcast: warning: b.csv: 1 NaN kept",
    ]
    other = _once_per_command()  # the next command says it again
    other("a.csv: 3 NaN kept", UserWarning, "f.py", 1)
    assert capsys.readouterr().err == "linearcast: warning: a.csv: 3 NaN kept\n"


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
