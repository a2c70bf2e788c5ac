"""Training from Python: :func:`fit`, the CLI's ``train`` as a function."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from linearcast.api.options import (
    check_frame_times,
    frame_dataset,
    recorded_options,
    set_strings,
    split_options,
)
from linearcast.api.run import Run
from linearcast.errors import ConfigError


def fit(
    model: str | None = None,
    data: Any = None,
    protocol: str | None = None,
    *,
    preset: str | None = None,
    sets: Sequence[str] | str | None = (),
    verbose: bool | None = None,
    level: Sequence[float] | None = (80, 90),
    **overrides: Any,
) -> Run:
    """Train and test a model (``linearcast train``) and return the :class:`Run`.

    Args:
        model: registry name (default: the preset's, else ``elinformer``).
        data: a path, a DataFrame (wide or long ``unique_id, ds, y``), an array ``[T, N]`` /
            ``[T, N, C]``, or ``"synthetic"`` for the built-in synthetic data. ``None``: the
            preset's data (or a ``data=`` in ``sets``); without either it is refused, so that
            a forgotten argument does not train on synthetic data.
        protocol: ``pems``, ``metr``, ``ett``, ``ltsf``, ... (default: the preset's, else pems).
        preset: start from a named preset (``"demo"``, ``"samovar-ett"``, ...).
        sets: ``key=value`` strings as ``--set`` takes (``["model_overrides.num_layers=2"]``);
            one string is one ``key=value``; ``None`` is none.
        verbose: print the CLI's lines (dataset, model, one per epoch, the final table), with
            a progress bar when stderr is a terminal. ``None`` (default): yes in an
            interactive session (a Python prompt, IPython, Jupyter), no in scripts and tests.
        level: interval levels calibrated at the end and scored on the test windows
            (``metrics["intervals"]``, as ``train``); ``None``: none.
        **overrides: :class:`~linearcast.engine.TrainConfig` fields (``max_epochs=5`` or
            ``epochs=5``, ``lr=1e-3``, ``model_overrides={...}``, ``accelerator="cpu"``) and,
            for a frame/array, options of :func:`linearcast.data.as_dataset`
            (``freq_minutes=5``, ``start="2024-01-01"``, ``null_value=0.0``).

    Returns:
        The finished run (``run.metrics``, ``run.evaluate()``, ``run.forecast(...)``).

    Raises:
        ConfigError: an unknown keyword, a value out of range or no ``data`` (one sentence
            naming what was expected, what was found and the fix), before anything is written.
    """
    from linearcast.data.frames import describe_data, is_in_memory
    from linearcast.engine.config import TrainConfig
    from linearcast.engine.config import preset as get_preset
    from linearcast.engine.trainer import train
    from linearcast.serve.interval_scores import record_or_warn
    from linearcast.serve.intervals import check_levels

    set_list = set_strings(sets)
    if data is None and not preset and not any(_sets_key(s) == "data" for s in set_list):
        raise ConfigError(
            'fit(): expected data= (a path, a DataFrame, an array [T, N] or "synthetic"), '
            'found None; pass data="synthetic" to train on the built-in synthetic data.'
        )
    cfg = get_preset(preset) if preset else TrainConfig()
    fields, data_options = split_options(data, overrides)
    in_memory = data is not None and is_in_memory(data)
    if model is not None:
        fields["model"] = model
    if protocol is not None:
        fields["protocol"] = protocol
    if in_memory:
        fields["data"] = describe_data(data)
        # kept in config.json: the run's later commands read new data the same way, and the
        # frame's null value wins over the protocol's as a file's reader option does
        fields["data_options"] = {**cfg.data_options, **recorded_options(data_options)}
    elif data is not None:
        fields["data"] = str(data)
    # the config is checked whole before the frame is read: a bad option is refused the
    # same way whether or not the data would have tripped over it
    cfg = cfg.replace(**fields) if fields else cfg
    cfg = cfg.with_sets(set_list)
    dataset = None
    if in_memory:
        dataset = frame_dataset(data, data_options)
        check_frame_times(data, dataset, cfg)
    show = interactive_session() if verbose is None else verbose
    progress = show and sys.stderr.isatty()
    levels = check_levels(level, "level") if level else ()
    result = train(cfg, progress=progress, verbose=show, report=show, dataset=dataset)
    metrics = result.metrics
    if levels:
        scores = record_or_warn(result.run_dir, levels, dataset=dataset)
        metrics = metrics | {"intervals": scores}
    return Run(result.run_dir, dataset=dataset, metrics=metrics, history=result.history)


def _sets_key(item: str) -> str:
    return item.partition("=")[0].strip()


def interactive_session() -> bool:
    """Whether Python runs interactively: a prompt (``python -i``, the REPL), IPython or
    Jupyter -- where a minutes-long fit should say what it is doing."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    ipython = sys.modules.get("IPython")
    try:
        return ipython is not None and ipython.get_ipython() is not None
    except Exception:  # an IPython too old or too odd to ask
        return False
