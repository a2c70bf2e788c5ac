"""The contract between models and the engine.

Every model takes ``x: [B, T_in, N, C_in]`` and returns ``[B, T_out, N, C_out]``.
Channel 0 of ``x`` is the (scaled) target; when a model declares ``needs_time_features``, the
data pipeline appends time-of-day (fraction in [0, 1)) and day-of-week (0..6, as float) as the
next channels, in that order (STAEformer's layout). LTSF models see ``N`` = number of series.

A model that has an extra training term (e.g. SAMoVAR's next-patch loss) sets
``self.aux_loss`` to a scalar tensor in ``forward`` while training; the engine adds it to the
loss. Otherwise ``aux_loss`` stays None.

A model fitted in closed form (e.g. a least-squares VAR) exposes ``fit(loader)`` taking an
iterable of ``(x, y)`` training batches (``y: [B, T_out, N, C_out]`` in raw units; the model
is told the scaler through its config when it needs it); the engine calls it before (or
instead of, when the model has no trainable parameters) gradient training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from linearcast.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: how to build a model and what it needs from the data.

    Attributes:
        name: registry name (``linearcast train --model NAME``).
        builder: ``builder(num_nodes=..., in_steps=..., out_steps=..., **overrides) -> nn.Module``.
        description: one line for ``--help`` and tables; says "beyond the paper" where it is.
        needs_graph: the builder needs ``adjacency=`` (an ``[N, N]`` array).
        needs_time_features: ``x`` must carry time-of-day and day-of-week channels.
        fixed_num_nodes: the trained model only runs on the N it was built for.
        family: ``"spatiotemporal"`` (PEMS-style, 12 → 12), ``"ltsf"`` or ``"baseline"``.
        defaults: overrides applied before the user's (e.g. the attention kernel of a variant).
        data_fields: config fields the engine fills from the dataset unless the user set them
            (``"steps_per_day"``; the graph goes through ``needs_graph``).
        options: every name the builder takes as an override (``model_overrides``), so that a
            run's config is checked before any data is read; None: not declared (the builder
            alone checks its options).
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    needs_graph: bool = False
    needs_time_features: bool = False
    fixed_num_nodes: bool = True
    family: str = "spatiotemporal"
    defaults: dict[str, Any] = field(default_factory=dict)
    data_fields: tuple[str, ...] = ()
    options: frozenset[str] | None = None

    def check_overrides(self, overrides: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigError` naming the known options if an override is not one."""
        if self.options is not None:
            check_options(self.name, overrides, self.options)


def check_options(model: str, overrides: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise :class:`ConfigError` naming the known options if an override is not one of them."""
    known = set(known)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown {model} option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )


def target_channel(x: Tensor, model: str, in_steps: int | None = None) -> Tensor:
    """Channel 0 of ``x: [B, T, N, C_in]`` as ``[B, T, N]``, with a clear error on bad shapes."""
    if x.dim() != 4 or (in_steps is not None and x.shape[1] != in_steps):
        want = "T_in" if in_steps is None else f"T_in={in_steps}"
        raise ConfigError(
            f"{model} expects x of shape [B, {want}, N, C_in]; found {tuple(x.shape)}"
        )
    return x[..., 0]


def check_steps(model: str, in_steps: int, out_steps: int) -> None:
    """Raise :class:`ConfigError` unless ``in_steps`` and ``out_steps`` are both at least 1."""
    if in_steps < 1 or out_steps < 1:
        raise ConfigError(
            f"{model} needs in_steps >= 1 and out_steps >= 1; found {in_steps} and {out_steps}"
        )
