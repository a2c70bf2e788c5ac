"""MkDocs hooks (mkdocs.yml ``hooks:``): Sphinx roles render as code, and links from docs/ to
repository files outside it (results tables, benchmark JSON and plots) work on the built site.

The docstrings are Google style but name other objects with Sphinx roles (``:class:`Run```,
``:func:`~linearcast.data.load```), which Markdown renders as ``:class:<code>Run</code>``: the
role is dropped and a leading ``~`` keeps only the last dotted name, as Sphinx shows it.

A page's link such as ``../results/spatiotemporal/README.md`` is left as written by MkDocs (the
file is not a page), so on the site it would point nowhere: the file is copied to
``build/site/repo/<its path>`` and the link rewritten to it. tests/test_docs_links.py checks that
every such file exists.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>")
_URL = re.compile(r'(href|src)="([^"#:]+)(#[^"]*)?"')
_REPO_DIR = "repo"

_to_copy: dict[Path, str] = {}


def _code(match: re.Match[str]) -> str:
    name = match.group(2)
    if match.group(1):
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def _repo_link(html: str, page: Any, config: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    root = Path(config["config_file_path"]).resolve().parent
    source_dir = (docs / page.file.src_uri).parent

    def rewrite(match: re.Match[str]) -> str:
        target = (source_dir / match.group(2)).resolve()
        if target.is_relative_to(docs) or not target.is_relative_to(root) or not target.is_file():
            return match.group(0)
        rel = target.relative_to(root).as_posix()
        _to_copy[target] = rel
        # a page is served as <url>index.html (directory URLs) or as <url> itself
        page_dir = page.url if page.url.endswith("/") else posixpath.dirname(page.url)
        url = posixpath.relpath(f"{_REPO_DIR}/{rel}", page_dir or ".")
        return f'{match.group(1)}="{url}{match.group(3) or ""}"'

    return _URL.sub(rewrite, html)


def on_page_content(html: str, page: Any, config: Any, **kwargs: Any) -> str:
    """Replace rendered Sphinx roles by code spans; point links to repository files at copies."""
    return _repo_link(_ROLE.sub(_code, html), page, config)


def on_post_build(config: Any, **kwargs: Any) -> None:
    """Copy the repository files the pages link to into the site."""
    site = Path(config["site_dir"])
    for source, rel in _to_copy.items():
        dest = site / _REPO_DIR / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
