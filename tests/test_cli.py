from linearcast.cli import build_parser


def test_parser_lists_every_command() -> None:
    text = build_parser().format_help()
    for command in ("demo", "data", "train", "evaluate", "predict", "models", "bench"):
        assert command in text, command
