"""The VAR(p) baseline: a vector autoregression fitted in closed form by (ridge) least squares
through ``fit(loader)``; it forecasts iteratively. Its coefficients are buffers, so it has no
trainable parameters and the engine need not train it by gradient. Registered in
:mod:`linearcast.models.baselines`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from linearcast.errors import ConfigError
from linearcast.models.base import check_steps, target_channel

# the baselines' logger, as before they were split into files (users filter on the name)
log = logging.getLogger("linearcast.models.baselines")


VarMode = Literal["auto", "full", "per_node"]


@dataclass
class VARConfig:
    """Configuration of :class:`VARBaseline`.

    Attributes:
        num_nodes: N.
        in_steps: T_in (≥ ``order``).
        out_steps: T_out.
        order: p, the number of lags.
        ridge: λ ≥ 0 added to the diagonal of the normal equations for the lag coefficients
            (not the intercept), in units of "per regression row" (λ·rows is added), so its
            effect does not depend on how much data is fitted.
        mode: ``"full"`` (every node regresses on p lags of all N nodes: ``p·N²`` coefficients),
            ``"per_node"`` (each node on its own p lags: a diagonal VAR, ``p·N``), or ``"auto"``
            (full when ``N <= max_full_nodes``).
        max_full_nodes: the ``"auto"`` threshold; beyond it a full VAR has more coefficients
            per equation than is sensible to fit from a window of traffic-like data.
        fit_intercept: include a constant.
    """

    num_nodes: int
    in_steps: int
    out_steps: int
    order: int = 2
    ridge: float = 0.0
    mode: VarMode = "auto"
    max_full_nodes: int = 64
    fit_intercept: bool = True

    def __post_init__(self) -> None:
        check_steps("var", self.in_steps, self.out_steps)
        if self.order < 1:
            raise ConfigError(f"var needs order >= 1; found {self.order}")
        if self.in_steps <= self.order:
            raise ConfigError(
                f"var with order={self.order} needs in_steps > {self.order} (lags plus at least "
                f"one target step per window); found in_steps={self.in_steps}"
            )
        if self.ridge < 0:
            raise ConfigError(f"var needs ridge >= 0; found {self.ridge}")
        if self.mode not in ("auto", "full", "per_node"):
            raise ConfigError(f"var mode must be 'auto', 'full' or 'per_node'; found {self.mode!r}")

    @property
    def full(self) -> bool:
        """Whether the cross-node (full) VAR is fitted."""
        return self.mode == "full" or (
            self.mode == "auto" and self.num_nodes <= self.max_full_nodes
        )


class VARBaseline(nn.Module):
    """Least-squares VAR(p) on the scaled target: ``z_t = c + Σ_{k=1..p} A_k z_{t−k} + e_t``.

    Fitted in closed form by :meth:`fit` from the input windows of the training batches (every
    window of length T_in gives T_in − p regression rows; with stride-1 windows these cover the
    whole training series, overlapping steps weighted alike up to the split's edges). The
    targets ``y`` are not used: they are in raw units, and the windows already contain the
    training series in the model's scaled units. Forecasts are iterated: each predicted step
    becomes a lag of the next.

    Full mode stores ``A: [p, N, N]`` (``A[k−1, i, j]`` = effect of node j at lag k on node i);
    per-node mode stores ``A: [p, N]`` (diagonal). Until :meth:`fit` runs, the coefficients are
    persistence (``A_1 = I``) and ``forward`` logs a warning once.

    Args:
        config: the configuration.
    """

    def __init__(self, config: VARConfig) -> None:
        super().__init__()
        self.config = config
        p, n = config.order, config.num_nodes
        coef = torch.zeros(p, n, n) if config.full else torch.zeros(p, n)
        if config.full:
            coef[0] = torch.eye(n)
        else:
            coef[0] = 1.0
        self.register_buffer("coef", coef)
        self.register_buffer("intercept", torch.zeros(n))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.coef: Tensor
        self.intercept: Tensor
        self.fitted: Tensor
        self._warned = False

    def _rows(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Lagged design ``[R, N, p]`` (lag 1 first), targets ``[R, N]``; ``z: [B, T, N]``."""
        p = self.config.order
        t = z.shape[1]
        lags = torch.stack([z[:, p - k : t - k] for k in range(1, p + 1)], dim=-1)  # (B, T−p, N, p)
        return lags.reshape(-1, z.shape[2], p), z[:, p:].reshape(-1, z.shape[2])

    @torch.no_grad()
    def fit(self, loader: Iterable[Any]) -> VARBaseline:
        """Fit the coefficients by (ridge) least squares, accumulating normal equations in float64.

        Args:
            loader: iterable of training batches ``(x, y, ...)`` (or bare ``x``) with
                ``x: [B, T_in, N, C_in]``; only channel 0 of ``x`` is used.

        Returns:
            ``self``.

        Raises:
            ConfigError: the loader yielded no batches or batches of the wrong shape.
        """
        cfg = self.config
        n, p = cfg.num_nodes, cfg.order
        icpt = int(cfg.fit_intercept)
        dim = (n * p if cfg.full else p) + icpt
        gram: Tensor | None = None
        cross: Tensor | None = None
        rows = 0
        for batch in loader:
            x = batch[0] if isinstance(batch, tuple | list) else batch
            z = target_channel(x, "var", cfg.in_steps).to(torch.float64)
            if z.shape[2] != n:
                raise ConfigError(f"var was built for N={n} nodes; a batch has N={z.shape[2]}")
            lags, target = self._rows(z)  # (R, N, p), (R, N)
            r = lags.shape[0]
            if cfg.full:
                feats = lags.transpose(1, 2).reshape(r, p * n)  # lag-major: [lag1 nodes, lag2 ...]
                if icpt:
                    feats = torch.cat([feats, feats.new_ones(r, 1)], dim=1)
                g, c = feats.T @ feats, feats.T @ target  # (D, D), (D, N)
            else:
                feats = torch.cat([lags, lags.new_ones(r, n, 1)], dim=2) if icpt else lags
                g = torch.einsum("rni,rnj->nij", feats, feats)  # (N, D, D)
                c = torch.einsum("rni,rn->ni", feats, target)[..., None]  # (N, D, 1)
            gram = g if gram is None else gram + g
            cross = c if cross is None else cross + c
            rows += r
        if gram is None or cross is None:
            raise ConfigError("var.fit got no training batches")
        reg = torch.ones(dim, dtype=torch.float64)
        if icpt:
            reg[-1] = 0.0
        gram = gram + cfg.ridge * rows * torch.diag(reg)
        # the normal equations are small; gelsd (SVD) copes with collinear or constant series
        beta = torch.linalg.lstsq(gram.cpu(), cross.cpu(), driver="gelsd").solution
        if cfg.full:
            coef = beta[: n * p].reshape(p, n, n).transpose(1, 2)  # (p, target, source)
            intercept = beta[n * p] if icpt else torch.zeros(n, dtype=torch.float64)
        else:
            coef = beta[:, :p, 0].T  # (p, N)
            intercept = beta[:, p, 0] if icpt else torch.zeros(n, dtype=torch.float64)
        self.coef.copy_(coef.to(self.coef))
        self.intercept.copy_(intercept.to(self.intercept))
        self.fitted.fill_(True)
        log.info(
            "var: fitted order %d (%s) on %d rows", p, "full" if cfg.full else "per-node", rows
        )
        return self

    def step(self, history: Tensor) -> Tensor:
        """One-step prediction from the last ``p`` steps, ``[B, ≥p, N] → [B, N]``."""
        p = self.config.order
        out = self.intercept.to(history.dtype).expand(history.shape[0], -1)
        for k in range(1, p + 1):
            lag = history[:, -k]  # (B, N)
            a = self.coef[k - 1].to(history.dtype)
            out = out + (lag @ a.T if self.config.full else lag * a)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T_in, N, C_in] → [B, T_out, N, 1]`` by iterating :meth:`step`."""
        cfg = self.config
        z = target_channel(x, "var", cfg.in_steps)  # (B, T_in, N)
        if z.shape[2] != cfg.num_nodes:
            raise ConfigError(f"var was built for N={cfg.num_nodes} nodes; found N={z.shape[2]}")
        if not bool(self.fitted) and not self._warned:
            log.warning("var: forward before fit(); predicting with persistence coefficients")
            self._warned = True
        hist = z[:, -cfg.order :]
        preds = []
        for _ in range(cfg.out_steps):
            nxt = self.step(hist)  # (B, N)
            preds.append(nxt)
            hist = torch.cat([hist[:, 1:], nxt[:, None]], dim=1)
        return torch.stack(preds, dim=1)[..., None]


__all__ = ["VARBaseline", "VARConfig", "VarMode"]
