"""STID: spatial-temporal identity (Shao et al., CIKM 2022), a residual MLP over embeddings.

Written from the paper and the official code's behaviour (GestaltCogTeam/STID @ 1056301,
``stid/arch/stid_arch.py``; BasicTS v0.5.8 ``baselines/STID`` is the same model). With the
default config it has the official parameter count, 116 684 at PEMS08 size (N = 170; see
``docs/models.md``). Each 1×1 convolution of the official code is an ``nn.Linear`` over the last
axis here: the same function, the same initialisation and, as the modules are created in the
official order, the same initial weights for one seed.

Two differences of layout, not of behaviour: our pipeline gives the day of week as the index
``0..6`` (BasicTS stores ``d/7``), so the model divides it by 7 before the series embedding; and
the hidden width counts the time-of-day width for the time-of-day table (the official formula
swaps the two widths, which only matters when they differ).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import ModelSpec, check_options

DAYS_PER_WEEK = 7


@dataclass
class STIDConfig:
    """STID hyper-parameters; the defaults are the official ones for PEMS04/08 and METR-LA.

    The official names are given in brackets; a width of 0 turns its identity off (the
    official ``if_node`` / ``if_T_i_D`` / ``if_D_i_W`` ablations).

    Attributes:
        num_nodes: N (filled from the data).
        in_steps: T_in [``input_len``].
        out_steps: T_out [``output_len``].
        steps_per_day: rows of the time-of-day table [``time_of_day_size``], from the data.
        input_dim: input channels flattened into the series embedding: 1 (target), 2 (+ time
            of day) or 3 (+ day of week, as the official model) [``input_dim``].
        input_embedding_dim: series embedding width [``embed_dim``].
        spatial_embedding_dim: node identity width, an ``[N, dim]`` table [``node_dim``].
        tod_embedding_dim: time-of-day identity width [``temp_dim_tid``].
        dow_embedding_dim: day-of-week identity width [``temp_dim_diw``].
        num_layers: residual MLP blocks [``num_layer``].
        dropout: inside each block (hard-coded 0.15 in the official ``mlp.py``).
    """

    num_nodes: int
    in_steps: int = 12
    out_steps: int = 12
    steps_per_day: int = 288
    input_dim: int = 3
    input_embedding_dim: int = 32
    spatial_embedding_dim: int = 32
    tod_embedding_dim: int = 32
    dow_embedding_dim: int = 32
    num_layers: int = 3
    dropout: float = 0.15

    def __post_init__(self) -> None:
        for name in ("num_nodes", "in_steps", "out_steps", "steps_per_day", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"STID {name} must be >= 1; found {getattr(self, name)}; "
                    f"set it with --set model_overrides.{name}=VALUE."
                )
        if self.input_dim not in (1, 2, 3):
            raise ConfigError(
                "STID input_dim must be 1, 2 or 3 (target, time of day, day of week); "
                f"found {self.input_dim}; fix it with --set model_overrides.input_dim=3."
            )

    @property
    def hidden_dim(self) -> int:
        """Width of the encoder: the series embedding and the identities (128 by default)."""
        return (
            self.input_embedding_dim
            + self.spatial_embedding_dim
            + self.tod_embedding_dim
            + self.dow_embedding_dim
        )

    @property
    def min_input_channels(self) -> int:
        """Channels ``x`` must carry: the embedded ones and the time features indexed."""
        need = self.input_dim
        if self.tod_embedding_dim > 0:
            need = max(need, 2)
        if self.dow_embedding_dim > 0:
            need = max(need, 3)
        return need


#: the options ``model_overrides`` may set: every field but the shape
OPTIONS: frozenset[str] = frozenset(
    {f.name for f in dataclasses.fields(STIDConfig)} - {"num_nodes", "in_steps", "out_steps"}
)


def _table(rows: int, dim: int) -> nn.Parameter | None:
    """A xavier-uniform ``[rows, dim]`` identity table (None when ``dim`` is 0)."""
    if dim == 0:
        return None
    table = nn.Parameter(torch.empty(rows, dim))
    nn.init.xavier_uniform_(table)
    return table


class STIDBlock(nn.Module):
    """``h + fc2(dropout(relu(fc1(h))))`` on ``[..., dim]`` (the official ``MultiLayerPerceptron``).

    Args:
        dim: width in and out.
        dropout: rate between the two layers.
    """

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        """``[..., dim]`` → ``[..., dim]``."""
        return h + self.fc2(self.drop(torch.relu(self.fc1(h))))


class STID(nn.Module):
    """Spatial-temporal identity MLP.

    Input ``x: [B, T_in, N, C_in]`` with channels [scaled target, time-of-day fraction in
    [0, 1), day-of-week 0..6 as float]. Per node, the first ``input_dim`` channels of all
    ``T_in`` steps are flattened time-major (feature ``t·C + c``) and embedded by
    ``Linear(T_in·input_dim → 32)``; the node's identity ``[N, 32]``, and the time-of-day
    (``floor(tod · steps_per_day)``) and day-of-week identities of the LAST input step are
    concatenated to it (width 128). ``num_layers`` residual MLP blocks and ``Linear(128 → T_out)``
    give the forecast.

    Args:
        config: the hyper-parameters.
    """

    def __init__(self, config: STIDConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.aux_loss: Tensor | None = None  # the engine contract: no auxiliary loss term
        # creation order = the official one, so a seed gives the official initial weights
        self.node_emb = _table(c.num_nodes, c.spatial_embedding_dim)
        self.tod_emb = _table(c.steps_per_day, c.tod_embedding_dim)
        self.dow_emb = _table(DAYS_PER_WEEK, c.dow_embedding_dim)
        self.series_emb = nn.Linear(c.in_steps * c.input_dim, c.input_embedding_dim)
        self.encoder = nn.ModuleList(
            [STIDBlock(c.hidden_dim, c.dropout) for _ in range(c.num_layers)]
        )
        self.regression = nn.Linear(c.hidden_dim, c.out_steps)

    def _check_input(self, x: Tensor) -> None:
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.in_steps or x.shape[3] < c.min_input_channels:
            raise ConfigError(
                f"STID expects x of shape [B, T_in={c.in_steps}, N, C_in>="
                f"{c.min_input_channels}] (target, time of day, day of week); "
                f"found {tuple(x.shape)}"
            )
        if self.node_emb is not None and x.shape[2] != c.num_nodes:
            raise ConfigError(
                f"this STID was built for N={c.num_nodes} nodes and found {x.shape[2]}: its "
                "node identity ties it to N (spatial_embedding_dim=0 gives a model for any N)"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Forecast ``out_steps`` steps.

        Args:
            x: ``[B, T_in, N, C_in]``: channel 0 the scaled target, 1 time-of-day fraction,
                2 day-of-week index (as float).

        Returns:
            ``[B, T_out, N, 1]`` in the target's scaled units.
        """
        self._check_input(x)
        c = self.config
        b, t, n, _ = x.shape
        series = x[..., : c.input_dim]  # (B, T, N, C)
        if c.input_dim == 3:
            # the official model embeds the day of week as BasicTS stores it, d/7 in [0, 1)
            series = torch.cat([series[..., :2], series[..., 2:] / DAYS_PER_WEEK], dim=-1)
        series = series.transpose(1, 2).reshape(b, n, t * c.input_dim)  # (B, N, T·C), t-major
        features = [self.series_emb(series)]  # (B, N, 32)
        if self.node_emb is not None:
            features.append(self.node_emb.expand(b, n, -1))  # (B, N, 32)
        last = x[:, -1]  # (B, N, C_in): only the last step's time indexes the tables
        if self.tod_emb is not None:
            # ranges are checked where data enters; the clamp only absorbs float rounding of
            # tod·steps_per_day at the top of the day (the official index truncates as well)
            tod = (last[..., 1] * c.steps_per_day).long().clamp(0, c.steps_per_day - 1)
            features.append(self.tod_emb[tod])  # (B, N, 32)
        if self.dow_emb is not None:
            dow = last[..., 2].long().clamp(0, DAYS_PER_WEEK - 1)
            features.append(self.dow_emb[dow])  # (B, N, 32)
        h = torch.cat(features, dim=-1)  # (B, N, 128)
        for block in self.encoder:
            h = block(h)  # (B, N, 128)
        out = self.regression(h)  # (B, N, T_out)
        return out.transpose(1, 2).unsqueeze(-1)  # (B, T_out, N, 1)


def build_stid(*, num_nodes: int, in_steps: int, out_steps: int, **overrides: Any) -> STID:
    """Registry builder: ``STID(STIDConfig(...))``.

    Raises:
        ConfigError: for an override that is not an option of :data:`OPTIONS`, or a bad value.
    """
    check_options("STID", overrides, OPTIONS)
    return STID(
        STIDConfig(num_nodes=num_nodes, in_steps=in_steps, out_steps=out_steps, **overrides)
    )


SPECS: list[ModelSpec] = [
    ModelSpec(
        name="stid",
        builder=build_stid,
        description="STID (Shao et al. 2022): identity embeddings and a residual MLP, no graph",
        needs_time_features=True,
        reads_channels=lambda o: (
            STIDConfig(
                num_nodes=1, **{k: v for k, v in o.items() if k in OPTIONS}
            ).min_input_channels
        ),
        fewer_channels="--set model_overrides.input_dim=1 --set model_overrides."
        "tod_embedding_dim=0 --set model_overrides.dow_embedding_dim=0",
        family="spatiotemporal",
        data_fields=("steps_per_day",),
        options=OPTIONS,
    ),
]

__all__ = ["OPTIONS", "SPECS", "STID", "STIDBlock", "STIDConfig", "build_stid"]
