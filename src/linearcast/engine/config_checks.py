"""Checks of what a config names: the model and its options, the baseline, the protocol, the
reader format and the run directory's name.

:meth:`TrainConfig.validate <linearcast.engine.config.TrainConfig.validate>` calls them when a
config is built, so that a misspelt name fails in one sentence before any data is read or any
epoch is trained (a bad baseline used to fail only after training). The registry, the protocols
and the readers are imported here, inside the functions, to keep ``linearcast --help`` free of
torch.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from linearcast.engine.config_io import numbers_from_text
from linearcast.errors import ConfigError

#: the longest run name: most file systems allow 255 bytes per path component
MAX_NAME_BYTES = 255


def check_names(cfg: Any) -> None:
    """Check ``cfg.model``, ``model_overrides``, ``baseline``, ``protocol`` (with its
    overrides) and ``data_format`` (``cfg``: a :class:`~linearcast.engine.TrainConfig`).

    Raises:
        ConfigError: naming the option, what it may be and what was found.
    """
    from linearcast.models import REGISTRY
    from linearcast.models.base import check_option_values

    spec = REGISTRY.get(cfg.model)
    if spec is None:
        raise ConfigError(
            f"config: unknown model {cfg.model!r}; model must be a registry name "
            f"({', '.join(REGISTRY)}); set it with --model NAME (`linearcast models` lists them)."
        )
    floors = [name for name, s in REGISTRY.items() if s.family == "baseline" and not s.needs_graph]
    if cfg.baseline and cfg.baseline not in floors:
        raise ConfigError(
            f'config: baseline must be one of {", ".join(floors)} or "" (none), found '
            f"{cfg.baseline!r}; set it with --set baseline='\"last-value\"'."
        )
    overrides = numbers_from_text(cfg.model_overrides)
    unknown = sorted(set(overrides) - spec.options) if spec.options is not None else []
    if unknown:
        keys = ", ".join(f"model_overrides.{key}" for key in unknown)
        raise ConfigError(
            f"config: {keys} is not an option of model {cfg.model!r}; its options are "
            f"{', '.join(sorted(spec.options or ())) or 'none'}."
        )
    check_option_values(cfg.model, {**spec.defaults, **overrides})
    _check_protocol(cfg)
    _check_format(cfg.data_format)


def _check_protocol(cfg: Any) -> None:
    from linearcast.data import get_protocol

    overrides = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in numbers_from_text(cfg.protocol_overrides).items()
    }
    try:
        get_protocol(cfg.protocol, **overrides)
    except ConfigError as err:
        raise ConfigError(
            f"config: {str(err).rstrip('.')}; set it with --protocol NAME or "
            f"--set protocol_overrides.KEY=VALUE."
        ) from None


def _check_format(name: str) -> None:
    from linearcast.data.readers import FORMATS

    if name != "auto" and name not in FORMATS:
        raise ConfigError(
            f"config: data_format must be auto or one of {', '.join(FORMATS)}, found {name!r}; "
            f"set it with --format NAME."
        )


def check_run_name(name: str) -> None:
    """A run name is one directory name: refuse separators, ``.``/``..``, absolute paths, NUL
    and control characters, surrounding spaces and names too long for a file system
    (``""`` is allowed: the run directory is then named ``<model>-<dataset>-<time>``).

    Raises:
        ConfigError: naming ``run_name``, the rule broken and the value found.
    """
    if name == "":
        return
    problem = run_name_problem(name)
    if problem:
        raise ConfigError(
            f"config: run_name must be a single directory name ({problem}), found {name!r}; "
            f"set it with --run-name NAME."
        )


def run_name_problem(name: str) -> str:
    """What makes ``name`` unfit as one path component ("" when it is fit)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "no NUL or control characters"
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return "no / or \\"
    if name in (".", "..") or name.strip(". ") == "":
        return "not . or .."
    if name != name.strip():
        return "no leading or trailing spaces"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor or ":" in name:
        return "not an absolute path or a drive"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"at most {MAX_NAME_BYTES} bytes"
    return ""


def inside(parent: Path, child: Path) -> bool:
    """Whether ``child`` resolves to a path inside ``parent`` (symbolic links followed)."""
    parent, child = parent.resolve(), child.resolve()
    return child != parent and child.is_relative_to(parent)
