"""MkDocs hook (mkdocs.yml ``hooks:``): Sphinx roles in docstrings render as code.

The docstrings are Google style but name other objects with Sphinx roles (``:class:`Run```,
``:func:`~linearcast.data.load```), which Markdown renders as ``:class:<code>Run</code>``. The
role is dropped and a leading ``~`` keeps only the last dotted name, as Sphinx shows it.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    name = match.group(2)
    if match.group(1):
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Replace each rendered Sphinx role by its code span."""
    return _ROLE.sub(_code, html)
