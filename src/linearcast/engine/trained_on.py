"""What a run was trained on, as its checkpoints record it, and the checks that new data is
the same: the fingerprint of its readings, names and calendar (a resume on other data is refused,
saying what changed) and its graph (kept for forecasting without one; a model that derives its
graph operators from the data refuses another graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from linearcast.engine.config import TrainConfig
from linearcast.errors import ConfigError

if TYPE_CHECKING:
    from linearcast.data import PreparedData, TimeSeriesDataset


def data_fingerprint(dataset: TimeSeriesDataset) -> str:
    """SHA-256 of a dataset's readings ``[T, N, F]`` (as float32, NaN kept), series names,
    first time and step: what a resumed run must find again (read a block at a time)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    values = dataset.values
    names = dataset.node_names or []
    head = (values.shape, names, str(dataset.start), dataset.freq_minutes)
    h.update(repr(head).encode())
    step = max(1, (1 << 22) // max(1, int(np.prod(values.shape[1:]))))
    for a in range(0, values.shape[0], step):
        h.update(np.ascontiguousarray(values[a : a + step], dtype=np.float32).tobytes())
    return h.hexdigest()


def check_same_data(meta: dict[str, Any], ckpt: dict[str, Any], data: str, run_dir: Path) -> None:
    """Refuse to resume a run on data other than its own (``meta``: this start's
    :func:`run_meta`; ``ckpt``: the run's last checkpoint; runs written before the fingerprint
    are not checked).

    Raises:
        ConfigError: naming the data, the run and the two ways on.
    """
    trained = ckpt.get("meta", {}).get("data_sha256")
    if trained is None or trained == meta["data_sha256"]:
        return
    raise ConfigError(
        f"{data}: expected the data {run_dir} was trained on, found "
        f"{_what_differs(ckpt['meta'].get('series'), meta['series'])} (its checkpoint keeps a "
        f"fingerprint of readings, series names and times); resuming would go on training, and "
        f"score, on other data: restore the run's data file, or train a new run on this data "
        f"(another --run-name)."
    )


def _what_differs(before: Any, now: list[str] | None) -> str:
    """What a resume's data changed, as far as the series names tell (the fingerprint says
    only that something did)."""
    from linearcast.data.readers._files import echo, echo_list

    if not isinstance(before, list) or now is None or before == now:
        return "other readings or times"
    if sorted(before) == sorted(now):
        at = next(i for i, (a, b) in enumerate(zip(before, now, strict=True)) if a != b)
        return (
            f"the same series in another order ({echo(now[at])} at position {at}, where the "
            f"run had {echo(before[at])})"
        )
    added = [n for n in now if n not in set(before)]
    gone = [n for n in before if n not in set(now)]
    parts = [f"series it did not have {echo_list(added)}"] if added else []
    parts += [f"without its series {echo_list(gone)}"] if gone else []
    return "other series names: " + ", ".join(parts)


def graph_fingerprint(adjacency: Any) -> str | None:
    """SHA-256 of an ``[N, N]`` adjacency as float32 (None without one)."""
    if adjacency is None:
        return None
    import hashlib

    import numpy as np

    a = np.ascontiguousarray(adjacency, dtype=np.float32)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()


def kept_graph(config: TrainConfig, prep: PreparedData) -> torch.Tensor | None:
    """The ``[N, N]`` float32 graph a graph model was built on, kept in its checkpoints so that
    forecasting on new data without a graph, and export, use the graph its weights saw (None:
    the model needs none, or its graph came from ``--set model_overrides.adjacency``)."""
    from linearcast.models import REGISTRY

    spec = REGISTRY.get(config.model)
    adjacency = prep.dataset.adjacency
    if spec is None or not spec.needs_graph or adjacency is None:
        return None
    if "adjacency" in config.model_overrides:
        return None
    import numpy as np

    return torch.from_numpy(np.array(adjacency, dtype=np.float32))


def trained_graph(ckpt: dict[str, Any]) -> Any:
    """The graph :func:`kept_graph` put in a checkpoint, as a float32 numpy array (None: the
    checkpoint has none: no graph model, or written before graphs were kept)."""
    graph = ckpt.get("graph")
    return None if graph is None else graph.numpy()


def check_trained_graph(
    model: nn.Module, meta: dict[str, Any], adjacency: Any, source: str, run_dir: Path
) -> None:
    """Refuse new data whose graph differs from the training graph, for a model whose graph
    operators are derived from the data rather than loaded with its weights (non-persistent
    buffers: DCRNN's supports); a model that saves them (Graph WaveNet, STGCN) is left alone.

    Raises:
        ConfigError: the graphs differ (runs written before the fingerprint are not checked).
    """
    trained = meta.get("graph_sha256")
    if trained is None or adjacency is None:
        return
    saved = set(model.state_dict())
    if all(name in saved for name, _ in model.named_buffers()):
        return
    if graph_fingerprint(adjacency) != trained:
        raise ConfigError(
            f"{source}: its graph is not the one {run_dir} was trained on, and model "
            f"{meta.get('model')!r} builds its graph operators from the data (they are not in "
            f"the checkpoint), so its forecasts would use a graph its weights never saw; give "
            f"the training graph with --set data_options.adjacency=FILE."
        )
