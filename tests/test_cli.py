from linearcast.cli import build_parser


def test_parser_lists_every_command() -> None:
    text = build_parser().format_help()
    assert "demo" in text and "data" in text
