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
from linearcast.nn import AttentionSpec, split_attention_options
from linearcast.nn.kernels import KERNELS
from linearcast.ops.eala import IMPLS
from linearcast.ops.linear import FEATURE_MAPS
from linearcast.ranges import Check, Choice, Either, Flag, Integer, Nothing, Number

_WIDTH = Integer(1, 65_536)
_OPTIONAL_WIDTH = Integer(0, 65_536)  # 0: the part is off
_LAYERS = Integer(1, 1024)
_IMPL = Choice(tuple(IMPLS))

#: The allowed values of every ``model_overrides`` option of every registry model, by name (a
#: name means the same in every model that takes it). ``TrainConfig`` checks a run's overrides
#: against it before any data is read; a model option missing here fails a registry test.
OPTION_CHECKS: dict[str, Check] = {
    # STAEformer and its variants
    "steps_per_day": Integer(1, 86_400),
    "input_dim": Integer(1, 1024),
    "output_dim": Integer(1, 1024),
    "input_embedding_dim": _WIDTH,
    "tod_embedding_dim": _OPTIONAL_WIDTH,
    "dow_embedding_dim": _OPTIONAL_WIDTH,
    "spatial_embedding_dim": _OPTIONAL_WIDTH,
    "adaptive_embedding_dim": _OPTIONAL_WIDTH,
    "feed_forward_dim": _WIDTH,
    "num_heads": Integer(1, 1024),
    "num_layers": _LAYERS,
    "dropout": Number(0.0, 1.0, high_open=True),
    "use_mixed_proj": Flag(),
    "node_embedding": Choice(("adaptive", "history")),
    "checkpoint_activations": Flag(),
    "fast_dropout": Flag(),
    "temporal_impl": _IMPL,
    "spatial_impl": _IMPL,
    # SAMoVAR
    "d_model": Either((_WIDTH, Nothing())),
    "n_heads": Integer(1, 1024),
    "n_mlp_layers": Integer(0, 1024),
    "n_attn_layers": _LAYERS,
    "variant": Choice(("samovar", "lintrans", "fixedvar")),
    "aux_loss_weight": Number(0.0),
    # the attention options (nn.kernels.OPTION_NAMES); AttentionSpec checks how they combine
    "attention": Choice(tuple(sorted(KERNELS))),
    "theta": Choice(
        ("paper", "gauss", "gauss_hclamp", "exact", "learned"), Number(0.0, low_open=True)
    ),
    "eala_theta": Choice(
        ("paper", "gauss", "gauss_hclamp", "exact", "learned"), Number(0.0, low_open=True)
    ),
    "impl": _IMPL,
    "eala_impl": _IMPL,
    "clamp": Flag(),
    "eps": Number(0.0, 1.0),
    "recompute": Flag(),
    "linformer_k": Integer(1, 1_000_000),
    "linformer_share_kv": Flag(),
    "feature_map": Choice(tuple(FEATURE_MAPS)),
    "normalize": Flag(),
    # Graph WaveNet (its receptive field is also capped by GWNetConfig)
    "residual_channels": _WIDTH,
    "dilation_channels": _WIDTH,
    "skip_channels": _WIDTH,
    "end_channels": _WIDTH,
    "blocks": Integer(1, 64),
    "layers": Integer(1, 16),
    "diffusion_steps": Integer(1, 16),
    # STGCN
    "temporal_kernel": Integer(1, 1024),
    "cheb_k": Integer(1, 64),
    "num_blocks": _LAYERS,
    "temporal_channels": _WIDTH,
    "graph_channels": _WIDTH,
    "output_channels": _WIDTH,
    "act_func": Choice(("glu", "gtu")),
    "laplacian": Choice(("normlap", "scaled")),
    # AGCRN (rnn_units: also DCRNN's)
    "rnn_units": _WIDTH,
    "embed_dim": _WIDTH,
    # DCRNN
    "num_rnn_layers": _LAYERS,
    "max_diffusion_step": Integer(0, 64),
    "filter_type": Choice(("dual_random_walk", "random_walk")),
    "graph_impl": Choice(("auto", "sparse", "dense")),
    "use_curriculum_learning": Flag(),
    "cl_decay_steps": Integer(1, 1_000_000_000),
    # the baselines
    "period": Choice(("day", "week")),
    "season": Integer(1, 1_000_000),
    "kernel_size": Integer(1, 1_000_000),
    "individual": Flag(),
    "order": Integer(1, 10_000),
    "ridge": Number(0.0),
    "mode": Choice(("auto", "full", "per_node")),
    "max_full_nodes": Integer(0, 1_000_000),
    "fit_intercept": Flag(),
    # every model trained by gradient (ModelSpec.no_revin says where not): linearcast.nn.revin
    "revin": Flag(),
    "revin_affine": Flag(),
}

#: the options ``models.build`` takes itself (it wraps the model in
#: :class:`~linearcast.nn.revin.RevIN`); every spec without ``no_revin`` accepts them
REVIN_OPTIONS: frozenset[str] = frozenset({"revin", "revin_affine"})


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
        takes_targets: ``forward(x, targets=y)`` while training, ``y`` the window's targets
            in the model's (scaled) units, NaN where missing: for scheduled sampling (DCRNN's
            decoder reads the truth with a decaying probability).
        options: every name the builder takes as an override (``model_overrides``), so that a
            run's config is checked before any data is read; None: not declared (the builder
            alone checks its options). :data:`REVIN_OPTIONS` are added unless ``no_revin``.
        no_revin: why ``model_overrides.revin`` (instance normalisation around the model) does
            not apply, as a clause ("" when it does): no parameters trained by gradient, or an
            instance normalisation of its own.
        reads_channels: the channels of ``x`` the model reads with the given overrides
            (``defaults`` included): 1 the target, 2 also time of day, 3 also day of week.
            None: 3 with ``needs_time_features``, else 1. The engine refuses a protocol that
            does not give them before training.
        fewer_channels: the ``--set`` options that make the model read the target alone (for
            the message when the data has no time features).
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
    takes_targets: bool = False
    no_revin: str = ""
    reads_channels: Callable[[Mapping[str, Any]], int] | None = None
    fewer_channels: str = ""

    def __post_init__(self) -> None:
        if self.options is not None and not self.no_revin:
            object.__setattr__(self, "options", self.options | REVIN_OPTIONS)

    def channels_read(self, overrides: Mapping[str, Any]) -> int:
        """The channels of ``x`` the model reads with ``overrides`` (see ``reads_channels``)."""
        if self.reads_channels is not None:
            return int(self.reads_channels({**self.defaults, **overrides}))
        return 3 if self.needs_time_features else 1

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


def check_option_values(model: str, overrides: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for an override outside its declared range
    (:data:`OPTION_CHECKS`) or attention options that cannot go together.

    Args:
        model: the registry name (for the message).
        overrides: ``model_overrides`` (option name -> value; NaN as a float).
    """
    for key, value in overrides.items():
        check = OPTION_CHECKS.get(key)
        if check is not None:
            check.check(f"model_overrides.{key}", value)
    if overrides.get("revin_affine") is True and overrides.get("revin") is not True:
        raise ConfigError(
            f"config: model_overrides.revin_affine=true of model {model!r} is the affine of the "
            "instance normalisation, which is off; add --set model_overrides.revin=true."
        )
    attention, _ = split_attention_options(overrides)
    if not attention:
        return
    try:
        AttentionSpec().with_options(**attention)
    except ConfigError as err:
        raise ConfigError(
            f"config: the attention options of model {model!r} in model_overrides do not go "
            f"together ({err}); change them with --set model_overrides.KEY=VALUE."
        ) from None


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
