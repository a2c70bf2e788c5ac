"""DCRNN (Li et al., ICLR 2018): diffusion-convolutional GRUs in an encoder-decoder.

Written from the paper and the behaviour of the PyTorch code BasicTS ports
(chnsh/DCRNN_PyTorch @ d92490b, ``model/pytorch/dcrnn_{cell,model}.py``), including the quirks
that code shares with the TensorFlow original (``docs/models.md``, "DCRNN"):

- the diffusion terms use the recurrence ``x_k = 2·S·x_{k-1} − x_{k-2}`` also for random-walk
  supports, and the second support's recurrence starts from where the first one ended;
- the stacked terms ``[B, N, F, M]`` are flattened feature-major (column ``f·M + m``), which is
  the layout of the weight ``[F·M, out]``;
- the gate is split reset first, update second, and the update gate weights the old state; the
  gate bias starts at 1, the candidate bias at 0, the weights are Xavier-normal.

Scheduled sampling (curriculum learning) lives in the model: while training, a forward given
``targets=`` feeds the decoder the true value of a step with probability
``τ / (τ + exp(i / τ))`` (``τ = cl_decay_steps``; ``i`` the training forwards seen so far, a
buffer saved with the weights), else its own prediction. Without ``targets`` (and always in
eval mode) the decoder runs free.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options

FilterType = Literal["dual_random_walk", "random_walk"]
GraphImpl = Literal["auto", "sparse", "dense"]
#: ``graph_impl="auto"`` multiplies by sparse supports on the CPU up to this share of non-zeros
SPARSE_MAX_DENSITY = 0.25
_FIX = "give the data's graph with --set data_options.adjacency=FILE"


@dataclass
class DCRNNConfig:
    """DCRNN hyper-parameters; the defaults are BasicTS's and the paper's for every dataset.

    Attributes:
        num_nodes: N (filled from the data; the graph must have N nodes).
        in_steps: T_in, encoder steps.
        out_steps: T_out, decoder steps.
        input_dim: channels of ``x`` the encoder reads (2: scaled target and time of day).
        output_dim: channels predicted, and fed back to the decoder.
        rnn_units: hidden width U of every DCGRU cell.
        num_rnn_layers: stacked DCGRU cells in the encoder and in the decoder.
        max_diffusion_step: K, diffusion steps per support (0: no graph term).
        filter_type: ``"dual_random_walk"`` (forward and backward walks, the paper's) or
            ``"random_walk"`` (forward only).
        use_curriculum_learning: scheduled sampling while training (needs ``targets=``).
        cl_decay_steps: τ of the teacher-forcing probability ``τ / (τ + exp(i / τ))``.
        graph_impl: the supports in the diffusion products as dense matrices or as sparse CSR
            (the reference's ``torch.sparse.mm``; same terms, same numbers up to rounding);
            ``"auto"``: sparse on the CPU for graphs with at most ``SPARSE_MAX_DENSITY``
            non-zeros (a DCRNN step on Los-loop's graph, 6.6%: 0.67x the dense time), else
            dense, and dense while exporting (torch.export does not take sparse CSR).
    """

    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    input_dim: int = 2
    output_dim: int = 1
    rnn_units: int = 64
    num_rnn_layers: int = 2
    max_diffusion_step: int = 2
    filter_type: FilterType = "dual_random_walk"
    use_curriculum_learning: bool = True
    cl_decay_steps: int = 2000
    graph_impl: GraphImpl = "auto"

    def __post_init__(self) -> None:
        for name in ("num_nodes", "in_steps", "out_steps", "input_dim", "output_dim",
                     "rnn_units", "num_rnn_layers", "cl_decay_steps"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"DCRNN {name} must be >= 1; found {getattr(self, name)}")
        if self.max_diffusion_step < 0:
            raise ConfigError(
                f"DCRNN max_diffusion_step must be >= 0; found {self.max_diffusion_step}"
            )
        if self.filter_type not in ("dual_random_walk", "random_walk"):
            raise ConfigError(
                "DCRNN filter_type must be 'dual_random_walk' or 'random_walk'; "
                f"found {self.filter_type!r}"
            )
        if self.graph_impl not in ("auto", "sparse", "dense"):
            raise ConfigError(
                f"DCRNN graph_impl must be 'auto', 'sparse' or 'dense'; found {self.graph_impl!r}"
            )

    @property
    def num_matrices(self) -> int:
        """M: the input itself plus K diffusion terms per support (5 by default)."""
        supports = 2 if self.filter_type == "dual_random_walk" else 1
        return 1 + supports * self.max_diffusion_step


#: the options ``model_overrides`` may set (the graph comes from the data)
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(DCRNNConfig)} - {"num_nodes", "in_steps", "out_steps"}
)


def random_walk_supports(adjacency: Any, num_nodes: int, filter_type: FilterType) -> Tensor:
    """The diffusion supports ``[S, N, N]`` (float64) of an adjacency, applied as ``S @ x``.

    ``S₁ = (D_O⁻¹ A)ᵀ`` (forward walk) and, for ``dual_random_walk``, ``S₂ = (D_I⁻¹ Aᵀ)ᵀ``
    (backward walk); a node without edges gets a zero row in ``D⁻¹`` (the reference's rule).

    Raises:
        ConfigError: not a finite, non-negative ``[N, N]`` matrix.
    """
    a = torch.as_tensor(np.asarray(adjacency, dtype=np.float64), device="cpu")
    if a.shape != (num_nodes, num_nodes):
        raise ConfigError(
            f"DCRNN expected an adjacency of shape ({num_nodes}, {num_nodes}) for the data's "
            f"{num_nodes} nodes and found shape {tuple(a.shape)}; {_FIX}."
        )
    if not bool(torch.isfinite(a).all()) or bool((a < 0).any()):
        raise ConfigError(
            "DCRNN expected finite, non-negative adjacency weights and found negative or "
            f"non-finite ones; {_FIX}."
        )

    def walk(m: Tensor) -> Tensor:  # D⁻¹ m, rows of isolated nodes stay 0
        degree = m.sum(dim=1, keepdim=True)
        inverse = torch.where(degree > 0, 1.0 / degree, torch.zeros_like(degree))
        return inverse * m

    supports = [walk(a).T]
    if filter_type == "dual_random_walk":
        supports.append(walk(a.T).T)
    return torch.stack(supports)  # (S, N, N)


def diffusion_terms(z: Tensor, supports: Tensor, max_step: int) -> Tensor:
    """The diffusion terms of ``z: [N, B, F]`` as ``[N, B, F, M]``, in the reference's order.

    Per support ``S``: ``x₁ = S x₀``, ``x_k = 2 S x_{k-1} − x_{k-2}``; ``x₀`` starts as ``z`` and
    (the reference's quirk) the next support starts from the previous one's last ``x_{K-1}``.
    Node-major, so that each product is one ``[N, N] @ [N, B·F]`` matrix product.
    ``supports`` is ``[S, N, N]``, or a list of S sparse CSR matrices (``graph_impl``).
    """
    n, b, f = z.shape
    x0 = z.reshape(n, b * f)
    terms = [x0]
    if max_step > 0:
        for s in supports:
            x1 = s @ x0  # (N, B·F)
            terms.append(x1)
            for _ in range(2, max_step + 1):
                x2 = torch.addmm(x0, s, x1, beta=-1, alpha=2)  # 2·S·x1 − x0
                terms.append(x2)
                x1, x0 = x2, x1
    return torch.stack(terms, dim=-1).view(n, b, f, len(terms))  # (N, B, F, M)


class DiffusionConv(nn.Module):
    """``[x, h] → Σ_m (diffusion term m) W_m + b``: one linear map over the stacked terms.

    Args:
        in_features: F, the width of ``[x, h]``.
        out_features: output width.
        num_matrices: M, the terms of :func:`diffusion_terms`.
        bias_start: the bias's initial value (1 for the gates, 0 for the candidate).
    """

    def __init__(
        self, in_features: int, out_features: int, num_matrices: int, bias_start: float
    ) -> None:
        super().__init__()
        # rows f·M + m: the reference's feature-major layout, so weights port as they are
        self.weight = nn.Parameter(torch.empty(in_features * num_matrices, out_features))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_start)))
        nn.init.xavier_normal_(self.weight)

    def forward(self, z: Tensor, supports: Tensor, max_step: int) -> Tensor:
        """``z: [N, B, F]`` → ``[N, B, out_features]``."""
        terms = diffusion_terms(z, supports, max_step)  # (N, B, F, M)
        return torch.addmm(self.bias, terms.flatten(2).flatten(0, 1), self.weight).view(
            *z.shape[:2], -1
        )  # (N, B, out)


class DCGRUCell(nn.Module):
    """A GRU whose matrix products are diffusion convolutions over the graph.

    Args:
        input_dim: channels of the cell's input ``x``.
        units: U, the hidden width.
        num_matrices: M of the diffusion convolutions.
    """

    def __init__(self, input_dim: int, units: int, num_matrices: int) -> None:
        super().__init__()
        self.units = units
        self.gate = DiffusionConv(input_dim + units, 2 * units, num_matrices, bias_start=1.0)
        self.candidate = DiffusionConv(input_dim + units, units, num_matrices, bias_start=0.0)

    def forward(self, x: Tensor, h: Tensor, supports: Tensor, max_step: int) -> Tensor:
        """``x: [N, B, C]``, ``h: [N, B, U]`` → the new state ``[N, B, U]``."""
        gates = torch.sigmoid(self.gate(torch.cat([x, h], dim=-1), supports, max_step))
        r, u = gates.split(self.units, dim=-1)  # reset first, update second
        c = torch.tanh(self.candidate(torch.cat([x, r * h], dim=-1), supports, max_step))
        return u * h + (1.0 - u) * c


class DCRNN(nn.Module):
    """Encoder-decoder of stacked DCGRU cells with a per-node ``Linear(U → output_dim)``.

    The encoder reads ``x[..., :input_dim]`` over ``T_in`` steps from zero states; the decoder
    starts from the encoder's states and a zero GO input and feeds back its prediction (or,
    under scheduled sampling, the truth) for ``T_out`` steps.

    Args:
        config: the hyper-parameters.
        adjacency: the graph ``[N, N]`` (weights ≥ 0; ``A[i, j]``: edge from i to j).
    """

    supports: Tensor  # (S, N, N), a buffer
    batches_seen: Tensor  # () int64, a buffer

    def __init__(self, config: DCRNNConfig, adjacency: Any) -> None:
        super().__init__()
        c = config
        self.config = c
        self.aux_loss: Tensor | None = None  # the engine contract: no auxiliary loss term
        supports = random_walk_supports(adjacency, c.num_nodes, c.filter_type)
        # derived from the data's graph, so not saved with the weights
        self.register_buffer("supports", supports.to(torch.get_default_dtype()), persistent=False)
        self.support_density = float((supports != 0).double().mean())  # for graph_impl="auto"
        # the scheduled-sampling clock; saved, so that a resumed run goes on where it stopped
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.int64))
        m, u = c.num_matrices, c.rnn_units
        self.encoder = nn.ModuleList(
            [DCGRUCell(c.input_dim if i == 0 else u, u, m) for i in range(c.num_rnn_layers)]
        )
        self.decoder = nn.ModuleList(
            [DCGRUCell(c.output_dim if i == 0 else u, u, m) for i in range(c.num_rnn_layers)]
        )
        self.projection = nn.Linear(u, c.output_dim)

    def teacher_forcing_probability(self) -> float:
        """``τ / (τ + exp(i / τ))`` at the current ``batches_seen`` ``i``."""
        tau = self.config.cl_decay_steps
        try:
            return tau / (tau + math.exp(int(self.batches_seen) / tau))
        except OverflowError:  # past exp(709): 0, as the reference's inf gives
            return 0.0

    def sampling_draws(self, steps: int) -> Tensor:
        """One uniform draw in [0, 1) per decoder step (torch's CPU generator, so the run's
        seed fixes them); the truth is fed where a draw is below the probability."""
        return torch.rand(steps, dtype=torch.float64)

    def _check(self, x: Tensor, targets: Tensor | None) -> None:
        c = self.config
        if (
            x.dim() != 4
            or x.shape[1] != c.in_steps
            or x.shape[2] != c.num_nodes
            or (x.shape[3] < c.input_dim)
        ):
            raise ConfigError(
                f"DCRNN expects x of shape [B, T_in={c.in_steps}, N={c.num_nodes}, "
                f"C_in>={c.input_dim}] (its graph has {c.num_nodes} nodes); "
                f"found {tuple(x.shape)}"
            )
        want = (x.shape[0], c.out_steps, c.num_nodes)
        if targets is not None and (
            targets.dim() != 4 or tuple(targets.shape[:3]) != want
            or targets.shape[3] < c.output_dim
        ):  # fmt: skip
            raise ConfigError(
                f"DCRNN expects targets of shape [B={want[0]}, T_out={c.out_steps}, "
                f"N={c.num_nodes}, C>={c.output_dim}]; found {tuple(targets.shape)}"
            )

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Tensor:
        """Forecast ``out_steps`` steps.

        Args:
            x: ``[B, T_in, N, C_in]``: channel 0 the scaled target, then time of day, ...
            targets: ``[B, T_out, N, C]`` in the output's (scaled) units, for scheduled
                sampling while training; a non-finite target is replaced by the prediction.

        Returns:
            ``[B, T_out, N, output_dim]`` in the target's scaled units.
        """
        self._check(x, targets)
        c = self.config
        b, t_in, n, _ = x.shape
        s, k = self.supports.to(x.dtype), c.max_diffusion_step
        if self.resolved_impl(x.device) == "sparse":
            with warnings.catch_warnings():  # torch's "sparse CSR support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                s = [m.to_sparse_csr() for m in s]  # type: ignore[assignment]
        # node-major inside: each diffusion step is then one [N, N] @ [N, B·F] product
        xs = x[..., : c.input_dim].permute(1, 2, 0, 3)  # (T_in, N, B, C_in)
        h = [x.new_zeros(n, b, c.rnn_units) for _ in range(c.num_rnn_layers)]
        for t in range(t_in):
            inp = xs[t]  # (N, B, C_in)
            for i, cell in enumerate(self.encoder):
                h[i] = cell(inp, h[i], s, k)  # (N, B, U)
                inp = h[i]
        teach = self._teacher_forcing(targets)  # (T_out,) bool, or None
        truths = None if targets is None else targets[..., : c.output_dim].permute(1, 2, 0, 3)
        dec_in = x.new_zeros(n, b, c.output_dim)  # the GO symbol
        outputs = []
        for t in range(c.out_steps):
            inp = dec_in
            for i, cell in enumerate(self.decoder):
                h[i] = cell(inp, h[i], s, k)
                inp = h[i]
            pred = self.projection(inp)  # (N, B, C_out)
            outputs.append(pred)
            dec_in = pred
            if teach is not None and truths is not None and bool(teach[t]):
                dec_in = torch.where(torch.isfinite(truths[t]), truths[t], pred)
        if self.training:
            self.batches_seen += 1
        return torch.stack(outputs).permute(2, 0, 1, 3)  # (B, T_out, N, C_out)

    def resolved_impl(self, device: torch.device) -> GraphImpl:
        """What ``graph_impl`` means for inputs on ``device`` ("auto" resolved; sparse CSR is
        kept out of exports and compiled graphs, which do not take it)."""
        impl = self.config.graph_impl
        if impl == "auto":
            sparse = device.type == "cpu" and self.support_density <= SPARSE_MAX_DENSITY
            impl = "sparse" if sparse else "dense"
        if impl == "sparse" and (torch.compiler.is_exporting() or torch.compiler.is_compiling()):
            return "dense"
        return impl

    def _teacher_forcing(self, targets: Tensor | None) -> Tensor | None:
        """Which decoder steps get the truth (None: none, no draw made)."""
        if not (self.training and self.config.use_curriculum_learning and targets is not None):
            return None
        return self.sampling_draws(self.config.out_steps) < self.teacher_forcing_probability()


def build_dcrnn(
    *, num_nodes: int, in_steps: int, out_steps: int, adjacency: Any = None, **overrides: Any
) -> DCRNN:
    """Registry builder: ``DCRNN(DCRNNConfig(...), adjacency)``.

    Raises:
        ConfigError: no graph, an unknown option, or a bad value.
    """
    if adjacency is None:
        raise ConfigError(f"DCRNN needs a graph and none was given; {_FIX}.")
    check_options("DCRNN", overrides, OPTIONS)
    config = DCRNNConfig(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **overrides)
    return DCRNN(config, adjacency)


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="dcrnn",
        builder=build_dcrnn,
        description="DCRNN (Li et al. 2018): diffusion-convolutional GRU encoder-decoder with "
        "scheduled sampling; needs the graph",
        needs_graph=True,
        needs_time_features=True,
        reads_channels=lambda o: int(o.get("input_dim", DCRNNConfig.input_dim)),
        fewer_channels="--set model_overrides.input_dim=1",
        family="spatiotemporal",
        options=OPTIONS,
        takes_targets=True,  # scheduled sampling
    ),
]

__all__ = [
    "DCRNN",
    "OPTIONS",
    "SPECS",
    "DCGRUCell",
    "DCRNNConfig",
    "DiffusionConv",
    "build_dcrnn",
    "diffusion_terms",
    "random_walk_supports",
]
