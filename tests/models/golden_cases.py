"""The golden-output cases: how each model is built, fed and measured (shared by the recorder
``make_golden.py`` and the test ``test_golden.py``, so both run exactly the same code).

Every :data:`linearcast.models.REGISTRY` entry has a case named after it: its family's small shape
(:data:`FAMILY_SHAPES`), the small overrides of its model file (:data:`SMALL_BY_MODULE`, then
:data:`SMALL_BY_NAME`), float64 weights from ``torch.manual_seed(MODEL_SEED)``, and seeded inputs.
:data:`EXTRA_CASES` pin options that no registry entry turns on (clamped EALA, checkpointing,
the plain output projection, ...), the other EALA path of SAMoVAR and, with sharpened queries,
the data-dependent branch of θ = ``gauss_hclamp``. A new model file adds a line to
:data:`SMALL_BY_MODULE` if its defaults are slow at these shapes (all cases together take ~3 s).

The sizes are small but keep every path: STAEformer cases have 2 temporal and 2 spatial layers of
2 heads with head dim 12, so temporal EALA (12 steps <= 2·12) takes the short quadratic path and
spatial EALA (N = 30 > 24) the linear one; SAMoVAR cases have 68 tokens > 2·d_head = 16 (causal
linear EALA) and > the chunk size 64 (two chunks, the second padded) for the chunked causal kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linearcast.models import REGISTRY, build
from linearcast.models.base import ModelSpec

GOLDEN_PATH = Path(__file__).with_name("golden_outputs.json")
DTYPE = torch.float64
MODEL_SEED, INPUT_SEED, TARGET_SEED, FIT_SEED = 0, 1, 2, 3
N_VALUES = 6  # output values recorded at fixed, spread-out flat indices
RTOL, ATOL = 1e-10, 1e-12

#: family → (batch, num_nodes, in_steps, out_steps) of the golden forward.
FAMILY_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "spatiotemporal": (2, 30, 12, 12),  # N = 30 > 2·head_dim = 24: spatial EALA is linear
    "ltsf": (2, 3, 100, 3),  # 34 patches → 68 tokens: linear causal EALA over two chunks
    "baseline": (2, 3, 30, 12),  # horizon > season (8) so seasonal-naive repeats a season
}
#: family → (num_nodes, in_steps, out_steps) for the parameter count at default width.
DEFAULT_SIZE_SHAPES: dict[str, tuple[int, int, int]] = {
    "spatiotemporal": (170, 12, 12),  # PEMS08
    "ltsf": (7, 96, 24),  # ETT
    "baseline": (7, 96, 24),
}
#: data fields the engine fills from the dataset, as a dataset of each family would.
FAMILY_DATA: dict[str, dict[str, Any]] = {
    "spatiotemporal": {"steps_per_day": 288},
    "ltsf": {"steps_per_day": 24},
    "baseline": {"steps_per_day": 8},
}

#: small overrides per model file (builder module); D = 8 + 4 + 4 + 8 = 24 for STAEformer.
SMALL_BY_MODULE: dict[str, dict[str, Any]] = {
    "linearcast.models.staeformer": dict(
        input_embedding_dim=8,
        tod_embedding_dim=4,
        dow_embedding_dim=4,
        adaptive_embedding_dim=8,
        feed_forward_dim=32,
        num_heads=2,
        num_layers=2,
        dropout=0.0,
        linformer_k=16,  # < N = 30 spatially, capped at the 12 steps temporally
    ),
    "linearcast.models.samovar": dict(
        d_model=16, n_heads=2, n_mlp_layers=2, n_attn_layers=2, dropout=0.0
    ),
    # every path at a small width; Ks = 3 keeps the Chebyshev recurrence's third term
    "linearcast.models.stgcn": dict(
        temporal_channels=8, graph_channels=4, output_channels=16, dropout=0.0
    ),
    # four different widths, so a width or identity put in another's place shows
    "linearcast.models.stid": dict(
        input_embedding_dim=8,
        spatial_embedding_dim=6,
        tod_embedding_dim=4,
        dow_embedding_dim=2,
        num_layers=2,
        dropout=0.0,
    ),
    # four different widths (a swapped one shows), adaptive dim 4 != 10 (the official literal)
    "linearcast.models.gwnet": dict(
        residual_channels=8,
        dilation_channels=6,
        skip_channels=16,
        end_channels=24,
        adaptive_embedding_dim=4,
        dropout=0.0,
    ),
    # widths that differ (a swapped one shows); K = 3 keeps the Chebyshev recurrence's term
    "linearcast.models.agcrn": dict(rnn_units=8, embed_dim=3, cheb_k=3),
    # two layers, K = 2 on both supports: every diffusion term; the default path otherwise
    "linearcast.models.dcrnn": dict(rnn_units=8),
}
#: small overrides per registry name (on top of the module's).
SMALL_BY_NAME: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Case:
    """One golden forward/backward.

    Attributes:
        model: registry name.
        tag: None for the registry case; otherwise what the extra case changes.
        overrides: on top of the family data fields and the small overrides.
        shape: ``(batch, num_nodes, in_steps, out_steps)``; None = the family's.
        scale: ``{name suffix: factor}`` multiplying the matching parameters after
            initialisation, to reach a regime the seed alone does not (large scores). A suffix
            that matches nothing is an error (a renamed parameter: update the suffix here).
    """

    model: str
    tag: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, int, int, int] | None = None
    scale: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.model if self.tag is None else f"{self.model}[{self.tag}]"

    @property
    def spec(self) -> ModelSpec:
        return REGISTRY[self.model]

    @property
    def dims(self) -> tuple[int, int, int, int]:
        return self.shape or FAMILY_SHAPES[self.spec.family]

    @property
    def in_channels(self) -> int:
        return 3 if self.spec.needs_time_features else 1

    def build_kwargs(self) -> dict[str, Any]:
        """All overrides passed to ``build`` (JSON-able; the graph is added in ``build``)."""
        spec = self.spec
        data = FAMILY_DATA[spec.family]
        kwargs = {k: data[k] for k in spec.data_fields if k in data}
        kwargs.update(SMALL_BY_MODULE.get(spec.builder.__module__, {}))
        kwargs.update(SMALL_BY_NAME.get(self.model, {}))
        kwargs.update(self.overrides)
        return kwargs

    def describe(self) -> dict[str, Any]:
        """The case as recorded in the JSON (the test checks it is unchanged)."""
        b, n, t_in, t_out = self.dims
        return {
            "model": self.model,
            "batch": b,
            "num_nodes": n,
            "in_steps": t_in,
            "out_steps": t_out,
            "in_channels": self.in_channels,
            "graph": self.spec.needs_graph,
            "overrides": self.build_kwargs(),
            "scale": dict(self.scale),
        }


EXTRA_CASES: list[Case] = [
    Case("elinformer", "clamp", {"clamp": True}),  # masked quadratic EALA on both axes
    Case("elinformer", "theta-0.9+checkpoint", {"theta": 0.9, "checkpoint_activations": True}),
    Case(
        "staeformer",
        "plain-proj+spatial-emb",
        {"use_mixed_proj": False, "spatial_embedding_dim": 4, "output_dim": 2},
    ),
    Case("staeformer-linformer", "share-kv", {"linformer_share_kv": True}),
    Case("staeformer-linear", "identity-map", {"feature_map": "identity"}),
    Case("samovar-eala", "quadratic", shape=(2, 3, 22, 4)),  # 6 patches → 12 tokens ≤ 16
    # θ = σ/sqrt(2 ln n) > 1 needs scores larger than the initialisation gives
    Case("elinformer-hclamp", "sharp-scores", scale={"attn.q_proj.weight": 8.0}),
    Case("samovar-eala", "sharp-scores", scale={"q_norm.weight": 8.0}),
    Case("dlinear", "individual", {"individual": True, "kernel_size": 5}),
    Case("var", "per-node+ridge", {"mode": "per_node", "ridge": 0.1, "order": 3}),
    Case("gwnet", "supports-only", {"adaptive_embedding_dim": 0}),  # official no --addaptadj
    # no graph at all: the official residual convs; kernel 3, receptive field 13
    Case(
        "gwnet-adaptive",
        "tcn+kernel3",
        {"adaptive_embedding_dim": 0, "kernel_size": 3, "blocks": 2},
    ),
    Case("stid", "input_dim-1+no-node", {"input_dim": 1, "spatial_embedding_dim": 0}),
    # the predictor's channel order t·C_out + c; one layer; the official K = 2
    Case("agcrn", "output_dim-2+one-layer+k2", {"output_dim": 2, "num_layers": 1, "cheb_k": 2}),
]


def registry_case(name: str) -> Case:
    """The case of registry entry ``name`` (any entry has one, even a newly added model)."""
    return Case(name)


def all_cases() -> list[Case]:
    """Registry cases (sorted by name), then the extra cases."""
    return [registry_case(name) for name in sorted(REGISTRY)] + EXTRA_CASES


def adjacency(n: int) -> np.ndarray:
    """A fixed symmetric ``[n, n]`` graph for models that need one: a ring plus chords i↔i+3."""
    a = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        for j in (i + 1, i + 3):
            a[i, j % n] = a[j % n, i] = 1.0
    return a


def _inputs(case: Case, seed: int, batch: int) -> Tensor:
    """Seeded ``x: [B, T_in, N, C_in]``; channels 1, 2 are time of day and day of week."""
    _, n, t_in, _ = case.dims
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.0, 2.0, t_in, dtype=DTYPE)[None, :, None, None]
    channels = [torch.randn(batch, t_in, n, 1, generator=g, dtype=DTYPE) + ramp]
    if case.spec.needs_time_features:
        channels.append(torch.rand(batch, t_in, n, 1, generator=g, dtype=DTYPE))
        channels.append(torch.randint(0, 7, (batch, t_in, n, 1), generator=g).to(DTYPE))
    return torch.cat(channels, dim=-1)


def build_case(case: Case) -> tuple[nn.Module, Tensor]:
    """The float64 model in eval mode (fitted first if it has ``fit``) and its seeded input.

    Returns:
        ``(model, x: [B, T_in, N, C_in])``.
    """
    b, n, t_in, t_out = case.dims
    kwargs = case.build_kwargs()
    if case.spec.needs_graph:
        kwargs["adjacency"] = adjacency(n)
    torch.manual_seed(MODEL_SEED)
    model = build(case.model, num_nodes=n, in_steps=t_in, out_steps=t_out, **kwargs)
    model = model.to(DTYPE).eval()
    with torch.no_grad():
        for suffix, factor in case.scale.items():
            hits = [p for name, p in model.named_parameters() if name.endswith(suffix)]
            assert hits, f"{case.id}: no parameter name ends with {suffix!r}"
            for p in hits:
                p.mul_(factor)
    fit = getattr(model, "fit", None)
    if callable(fit):
        # a batch of its own, twice the size, so the fit is not the evaluated input; the
        # contract's y (raw units) is not read by today's closed-form model
        x_fit = _inputs(case, FIT_SEED, 2 * b)
        fit([(x_fit, torch.zeros(2 * b, t_out, n, 1, dtype=DTYPE))])
    return model, _inputs(case, INPUT_SEED, b)


def value_indices(numel: int) -> list[int]:
    """``N_VALUES`` flat indices spread over the output, first and last included."""
    return sorted({round(i * (numel - 1) / (N_VALUES - 1)) for i in range(N_VALUES)})


def record(case: Case) -> dict[str, Any]:
    """Run the case and return what the JSON stores for it.

    Eval mode: output shape, values at :func:`value_indices`, sum and sum of squares. Train mode
    (dropout is 0 in every case, so it is deterministic): the loss ``MSE(out, y) + aux_loss``,
    the model's ``aux_loss``, the gradient norm over all parameters, ``Σ_p <∂loss/∂p, p>`` (the
    derivative along the parameter vector, which unlike the norm notices gradients swapped
    between parameters) and how many trainable parameter tensors got no gradient.
    """
    model, x = build_case(case)
    params = list(model.parameters())
    with torch.no_grad():
        out = model(x)
    flat = out.flatten()
    idx = value_indices(flat.numel())
    rec: dict[str, Any] = {
        "case": case.describe(),
        "output_shape": list(out.shape),
        "params_total": sum(p.numel() for p in params),
        "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        "default_size_params": default_size_params(case.model) if case.tag is None else None,
        "eval": {
            "indices": idx,
            "values": [flat[i].item() for i in idx],
            "sum": out.sum().item(),
            "sum_sq": out.square().sum().item(),
        },
    }
    gen = torch.Generator().manual_seed(TARGET_SEED)
    y = torch.randn(out.shape, generator=gen, dtype=DTYPE)
    model.train()
    out = model(x)
    aux = getattr(model, "aux_loss", None)
    loss = F.mse_loss(out, y) + (aux if isinstance(aux, Tensor) else 0.0)
    trainable = [p for p in params if p.requires_grad]
    grads = torch.autograd.grad(loss, trainable, allow_unused=True) if trainable else ()
    used = [(p, g) for p, g in zip(trainable, grads) if g is not None]
    rec["train"] = {
        "loss": loss.item(),
        "aux_loss": aux.item() if isinstance(aux, Tensor) else None,
        "grad_norm": math.sqrt(sum(float(g.square().sum()) for _, g in used)) if used else None,
        "grad_dot_params": sum(float((g * p.detach()).sum()) for p, g in used) if used else None,
        "params_without_grad": len(trainable) - len(used),
    }
    return rec


def default_size_params(name: str) -> int:
    """Parameters of registry model ``name`` at its default config and its family's default
    size (PEMS08 N = 170 for STAEformer: the official ``1 060 260 + 960·N``), built on the meta
    device, so nothing is allocated or run."""
    spec = REGISTRY[name]
    n, t_in, t_out = DEFAULT_SIZE_SHAPES[spec.family]
    data = FAMILY_DATA[spec.family]
    kwargs: dict[str, Any] = {k: data[k] for k in spec.data_fields if k in data}
    if spec.needs_graph:
        kwargs["adjacency"] = adjacency(n)
    with torch.device("meta"):
        model = build(name, num_nodes=n, in_steps=t_in, out_steps=t_out, **kwargs)
    return sum(p.numel() for p in model.parameters())


def mismatches(recorded: Any, now: Any, path: str = "") -> list[str]:
    """Differences between a recorded and a fresh record: integers, strings, shapes, None and
    structure exactly; floats to ``RTOL``/``ATOL``. Returns one line per difference."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        out = [f"{path}.{k}: missing now" for k in recorded.keys() - now.keys()]
        out += [f"{path}.{k}: not recorded" for k in now.keys() - recorded.keys()]
        for k in sorted(recorded.keys() & now.keys()):
            out += mismatches(recorded[k], now[k], f"{path}.{k}")
        return out
    if isinstance(recorded, list) and isinstance(now, list):
        if len(recorded) != len(now):
            return [f"{path}: recorded {recorded}, now {now}"]
        pairs = enumerate(zip(recorded, now))
        return [m for i, (r, c) in pairs for m in mismatches(r, c, f"{path}[{i}]")]
    if isinstance(recorded, float) and isinstance(now, float):
        if abs(recorded - now) <= ATOL + RTOL * abs(recorded):
            return []
        rel = abs(recorded - now) / max(abs(recorded), 1e-300)
        return [f"{path}: recorded {recorded!r}, now {now!r} (relative difference {rel:.2e})"]
    if type(recorded) is not type(now) or recorded != now:
        return [f"{path}: recorded {recorded!r}, now {now!r}"]
    return []
