"""Models: one file per model (dataclass config + module) and the explicit :data:`REGISTRY`.

``build(name, num_nodes=..., in_steps=..., out_steps=..., **overrides)`` is the only way the
engine creates a model. Each model file exports a ``SPECS`` list of :class:`ModelSpec`; this
module lists those files explicitly (adding a model = one file + one line here).

``revin=True`` (and ``revin_affine=True``) among the overrides wraps any model trained by
gradient in :class:`~linearcast.nn.revin.RevIN`; the builders never see those two options.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from linearcast.errors import ConfigError
from linearcast.models import agcrn, baselines, dcrnn, gwnet, samovar, staeformer, stgcn, stid
from linearcast.models.base import OPTION_CHECKS, REVIN_OPTIONS, ModelSpec
from linearcast.nn.revin import RevIN

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
        **overrides: config fields to change (e.g. ``num_layers=2``, ``adjacency=...``);
            ``revin``/``revin_affine``: instance normalisation around the model.

    Returns:
        The model, mapping ``[B, in_steps, N, C_in]`` to ``[B, out_steps, N, C_out]``.
    """
    if name not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[name]
    kwargs = {**spec.defaults, **overrides}
    wrap = {key: kwargs.pop(key) for key in sorted(REVIN_OPTIONS) if key in kwargs}
    for key, value in wrap.items():
        OPTION_CHECKS[key].check(f"model_overrides.{key}", value)
    if any(wrap.values()) and spec.no_revin:
        raise ConfigError(
            f"model {name!r} does not take model_overrides.revin: {spec.no_revin}; "
            "remove --set model_overrides.revin=true (and revin_affine)."
        )
    if wrap.get("revin_affine") and not wrap.get("revin"):
        raise ConfigError(
            f"model {name!r}: model_overrides.revin_affine=true is the affine of the instance "
            "normalisation, which is off; add --set model_overrides.revin=true."
        )
    model = spec.builder(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **kwargs)
    if not wrap.get("revin"):
        return model
    if not any(p.requires_grad for p in model.parameters()) or callable(
        getattr(model, "fit", None)
    ):
        # a registry entry that forgot to declare no_revin: refuse rather than train nothing
        raise ConfigError(
            f"model {name!r} is not trained by gradient, so model_overrides.revin has nothing "
            "to learn around; remove --set model_overrides.revin=true."
        )
    return RevIN(model, affine=bool(wrap.get("revin_affine")))


__all__ = ["REGISTRY", "ModelSpec", "build"]
