"""The README and docs/: relative links and anchors resolve, every `linearcast ...` command shown
parses with the CLI's own parser, pages are in the site's nav, the README stays a front page,
and the regenerated blocks live where results/report.py writes them.

`make docs` (run by `make test`) builds the site with `mkdocs build --strict`; it cannot resolve
links from docs/ to repository files (results/, benchmarks/), so they are checked here.
"""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_MAX_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
# [text](target) and ![alt](target); a target may carry a "title"
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _prose_lines(text: str, keep_code_spans: bool = False) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code removed unless kept."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line if keep_code_spans else _CODE_SPAN.sub("", line)))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub (and mkdocs.yml's pymdownx slugify) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path.read_text(), keep_code_spans=True):
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        found.add(slug)
    return frozenset(found)


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link that is not a URL, outside code."""
    links = []
    for number, line in _prose_lines(path.read_text()):
        for target in _LINK.findall(line):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            links.append((number, target))
    return links


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per link whose file (or heading anchor, in a Markdown file) does not exist."""
    problems = []
    for number, target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## Step at N = 883\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#step-at-n--883) [gone](missing.md) [bad](other.md#nowhere)\n"
        "![img](pic.png) [self](#top) [url](https://example.org/x.md)\n"
        "```\n[in code](nowhere.md)\n```\n`[span](nowhere.md)`\n# Top\n"
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with anchor #nowhere in other.md",
        "pic.png: no such file",
    ]


def test_github_slugs_keep_repeated_hyphens_and_unicode() -> None:
    assert github_slug("One training step at N = 883 (the PEMS07 shape)") == (
        "one-training-step-at-n--883-the-pems07-shape"
    )
    assert github_slug("The drop-in for `torch.nn.MultiheadAttention`") == (
        "the-drop-in-for-torchnnmultiheadattention"
    )
    assert github_slug("θ rules") == "θ-rules"


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; keep it <= {README_MAX_LINES} and move detail to docs/"
    )


def test_every_docs_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config.split("\nnav:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, flags=re.MULTILINE))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - listed == set(), "pages missing from mkdocs.yml's nav"
    assert listed - pages == set(), "nav entries without a page"


def test_verdict_blocks_live_in_docs_results() -> None:
    readme = (ROOT / "README.md").read_text()
    results = (DOCS / "results.md").read_text()
    for table in ("spatiotemporal", "longhorizon"):
        start, end = f"<!-- verdicts:{table} -->", f"<!-- /verdicts:{table} -->"
        assert start not in readme and end not in readme
        assert results.count(start) == 1 and results.count(end) == 1
        assert results.index(start) < results.index(end)


_SHELL_LANGS = {"", "bash", "sh", "shell", "console"}


def shown_commands(path: Path) -> list[tuple[int, str]]:
    """(line of the code block, command) of each `linearcast ...` line in a shell code block,
    continuation lines joined. Synopses (`[--json]`, a trailing `...`) are usage, left out."""
    commands: list[tuple[int, str]] = []
    lang: str | None = None
    first, buf = 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*(```|~~~)(\w*)", line)
        if fence and lang is None:
            lang, first, buf = fence.group(2), number, []
        elif fence:
            if lang in _SHELL_LANGS:
                for text in re.sub(r"\s*\\\n\s*", " ", "\n".join(buf)).splitlines():
                    command = re.sub(r"\s+#.*$", "", text.strip())
                    if command.startswith("linearcast ") and not re.search(r"\[-|\.\.\.$", command):
                        commands.append((first, command))
            lang = None
        elif lang is not None:
            buf.append(line)
    return commands


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shown_commands_parse(path: Path) -> None:
    from linearcast.cli import build_parser

    parser = build_parser()
    refused = []
    for number, command in shown_commands(path):
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            refused.append(f"{path.relative_to(ROOT)}:{number}: {command}")
    assert refused == []


def test_command_check_finds_a_renamed_flag(tmp_path: Path) -> None:
    from linearcast.cli import build_parser

    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nlinearcast train --preset demo \\\n    --max-batches 2   # renamed\n```\n"
        "```\nlinearcast data list [--json]\n```\n```python\nlinearcast = 1\n```\n"
    )
    commands = shown_commands(page)
    assert [c for _, c in commands] == ["linearcast train --preset demo --max-batches 2"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(shlex.split(commands[0][1])[1:])
