"""Models: one file per model (dataclass config + module) and the explicit :data:`REGISTRY`.

``build(name, num_nodes=..., in_steps=..., out_steps=..., **overrides)`` is the only way the
engine creates a model. Each model file exports a ``SPECS`` list of :class:`ModelSpec`; this
module lists those files explicitly (adding a model = one file + one line here).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from linearcast.errors import ConfigError
from linearcast.models import agcrn, baselines, dcrnn, gwnet, samovar, staeformer, stgcn, stid
from linearcast.models.base import ModelSpec

# One line per model file. Each file exports SPECS: list[ModelSpec].
_SPECS: list[ModelSpec] = [
    *staeformer.SPECS,
    *samovar.SPECS,
    *baselines.SPECS,
    *stid.SPECS,
    *agcrn.SPECS,
    *dcrnn.SPECS,
    *gwnet.SPECS,
    *stgcn.SPECS,
]

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def build(
    name: str, *, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any
) -> nn.Module:
    """Build registered model ``name`` for the data's shape.

    Args:
        name: a key of :data:`REGISTRY`.
        num_nodes: N (series for LTSF models).
        in_steps: input window length T_in.
        out_steps: horizon T_out.
        **overrides: config fields to change (e.g. ``num_layers=2``, ``adjacency=...``).

    Returns:
        The model, mapping ``[B, in_steps, N, C_in]`` to ``[B, out_steps, N, C_out]``.
    """
    if name not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[name]
    kwargs = {**spec.defaults, **overrides}
    return spec.builder(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **kwargs)


__all__ = ["REGISTRY", "ModelSpec", "build"]
