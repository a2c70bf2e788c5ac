"""Ship a model: a run's best weights as an ONNX file that takes and returns data units.

The exported graph is :class:`RawUnitModel`: the run's scaler is folded in, so a consumer
needs nothing but the ONNX file::

    input   x         [B, T_in, N, C_in] float32: channel 0 the target in data units; with time
                      features (STAEformer/ELinFormer) channel 1 the time of day as a fraction
                      in [0, 1) and channel 2 the day of week 0..6 (Monday = 0) as float
    output  forecast  [B, T_out, N, C_out] float32 in data units: the data channel the run
                      forecasts (the sidecar's ``outputs.forecast.channel``, e.g. ``inflow``),
                      clipped at 0 inside the graph for a run with ``nonnegative = true``

B is dynamic; T_in, N and C_in are the run's. The node axis is in the run's series order: the
JSON file beside it (``model.json`` for ``model.onnx``) lists the series names in that order
(``series``), as does the ONNX metadata (``linearcast.series``, JSON), and says the rest for
tools that do not read ONNX metadata. A run that records no names (trained before they were
recorded) gets ``series: null`` and a warning: its nodes are in the training data's order.

Export uses torch's ONNX exporter (``torch.onnx.export(..., dynamo=True)``), which needs the
optional packages ``onnx`` and ``onnxscript``; the check needs ``onnxruntime`` (extra
``[onnx]``). The check runs random inputs in the data's range (batches of 1 and 3) through
onnxruntime on the CPU and through the PyTorch pipeline (NumPy scaler, model, inverse
transform, as ``forecast`` does) and requires the forecasts to agree to 1e-4 in standardised
units (data units divided by the scaler's std, i.e. relative to the data's spread); a NaN or
infinite value on either side fails the check. Both files are written whole or not at all.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from linearcast import jsonio
from linearcast.atomic import check_destination
from linearcast.engine.series_identity import legacy_note, read_series
from linearcast.engine.target import clip_data_units, recorded_target
from linearcast.errors import ConfigError
from linearcast.serve.export_description import add_metadata, sidecar
from linearcast.serve.outputs import atomic_output, check_kept, check_output_path

if TYPE_CHECKING:
    from linearcast.data import StandardScaler
    from linearcast.engine.config import TrainConfig

TOLERANCE = 1e-4
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


class RawUnitModel(nn.Module):
    """A trained model with the scaler folded in: data units in, data units out.

    Args:
        model: maps ``[B, T_in, N, C_in]`` (channel 0 scaled) to ``[B, T_out, N, C_out]``
            (scaled units).
        scaler: the run's scaler (global: one mean/std; per series: ``[N]``).
        nonnegative: clip the forecast at 0 (data units), as the run's forecasts are.
    """

    mean_in: Tensor
    std_in: Tensor
    mean_out: Tensor
    std_out: Tensor

    def __init__(
        self, model: nn.Module, scaler: StandardScaler, *, nonnegative: bool = False
    ) -> None:
        super().__init__()
        self.model = model
        self.nonnegative = nonnegative
        mean = torch.as_tensor(np.asarray(scaler.mean, dtype=np.float32))
        std = torch.as_tensor(np.asarray(scaler.std, dtype=np.float32))
        # global: scalars; per series: [N] for the input target [B, T, N] and [N, 1] for outputs
        self.register_buffer("mean_in", mean)
        self.register_buffer("std_in", std)
        self.register_buffer("mean_out", mean[..., None] if mean.dim() else mean)
        self.register_buffer("std_out", std[..., None] if std.dim() else std)

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, T_in, N, C_in]`` in data units -> ``[B, T_out, N, C_out]`` in data units."""
        target = (x[..., 0] - self.mean_in) / self.std_in  # (B, T_in, N)
        scaled = torch.cat([target[..., None], x[..., 1:]], dim=-1)  # (B, T_in, N, C_in)
        out = self.model(scaled)  # (B, T_out, N, C_out), scaled units
        raw = out * self.std_out + self.mean_out
        return raw.clamp_min(0.0) if self.nonnegative else raw


def missing_onnx_packages() -> list[str]:
    """The packages of the ``[onnx]`` extra that are not installed."""
    return [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]


def _placeholder_dataset(meta: dict[str, Any], adjacency: np.ndarray | None = None) -> Any:
    """A dataset of the run's shape and calendar, so the registry builds the same model."""
    from linearcast.data import TimeSeriesDataset

    return TimeSeriesDataset(
        values=np.zeros((1, int(meta["num_nodes"]), 1), dtype=np.float32),
        name=str(meta.get("dataset", "run")),
        steps_per_day=meta.get("steps_per_day"),
        adjacency=adjacency,
    )


def _run_graph(
    run_dir: Path, config: TrainConfig, num_nodes: int, ckpt: dict[str, Any]
) -> np.ndarray | None:
    """The graph a graph model was trained on (None: the model needs none): the checkpoint's
    copy, or for runs written before checkpoints kept it, read again from the run's data.
    DCRNN keeps its supports out of its weights, and every graph model's builder needs one
    before the checkpoint's buffers replace what it made."""
    from linearcast.engine.setup import load_dataset
    from linearcast.engine.trained_on import trained_graph
    from linearcast.errors import DataError
    from linearcast.models import REGISTRY

    spec = REGISTRY.get(config.model)
    if spec is None or not spec.needs_graph or "adjacency" in config.model_overrides:
        return None
    kept = trained_graph(ckpt)
    if kept is not None:
        return np.asarray(kept)
    try:
        adjacency = load_dataset(config).adjacency
    except (ConfigError, DataError) as err:
        raise ConfigError(
            f"{run_dir}: model {config.model!r} is built on the graph of the run's data, which "
            f"cannot be read again for the export ({err})"
        ) from None
    if adjacency is None or np.shape(adjacency) != (num_nodes, num_nodes):
        found = "none" if adjacency is None else f"shape {np.shape(adjacency)}"
        raise ConfigError(
            f"{run_dir}: model {config.model!r} was trained on a ({num_nodes}, {num_nodes}) "
            f"graph, but the run's data {config.data} now gives {found}; restore the data the "
            f"run was trained on to export it."
        )
    return np.asarray(adjacency)


def example_inputs(
    batch: int, meta: dict[str, Any], scaler: StandardScaler, seed: int = 0
) -> np.ndarray:
    """Random inputs in the data's range: ``[B, T_in, N, C_in]`` float32 in data units."""
    rng = np.random.default_rng(seed)
    t, n, c = int(meta["in_steps"]), int(meta["num_nodes"]), int(meta.get("input_channels", 1))
    x = np.empty((batch, t, n, c), dtype=np.float32)
    z = rng.standard_normal((batch, t, n))
    x[..., 0] = scaler.inverse_transform(z.astype(np.float32))
    spd = int(meta.get("steps_per_day") or 288)
    if c > 1:  # time of day of consecutive steps from a random start, as real windows have
        first = rng.integers(0, spd, size=(batch, 1))
        x[..., 1] = (((first + np.arange(t)) % spd) / spd)[..., None]
    if c > 2:
        x[..., 2] = rng.integers(0, 7, size=(batch, 1, 1)).astype(np.float32)
    return x


def _torch_forecast(model: nn.Module, scaler: StandardScaler, x: np.ndarray) -> np.ndarray:
    """The engine's own pipeline on raw inputs: NumPy scaler, model, inverse transform."""
    scaled = x.copy()
    scaled[..., 0] = scaler.transform(x[..., 0])
    with torch.no_grad():
        out = model(torch.from_numpy(scaled)).float()
    return np.asarray(scaler.inverse_transform(out).numpy())


def export_onnx(
    run_dir: str | Path,
    path: str | Path,
    *,
    check: bool = True,
    opset: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export a run's best weights to ONNX with the scaler folded in (see the module docstring).

    Args:
        run_dir: a run directory written by ``train``.
        path: the ``.onnx`` file to write (a ``.json`` description is written beside it).
        check: run onnxruntime on the CPU and compare with PyTorch (needs onnxruntime).
        opset: ONNX opset version (default: the exporter's).
        overwrite: replace an existing ``.onnx`` and its ``.json`` (``--overwrite``); never a
            file the run keeps in its directory.

    Returns:
        ``{"path", "json", "input_shape", "output_shape", "max_abs_diff",
        "max_scaled_diff", "checked"}`` (differences in data and standardised units).

    Raises:
        ConfigError: the ``[onnx]`` packages are missing, the exporter fails, onnxruntime
            does not reproduce the forecast, or a file to write exists (without ``overwrite``)
            or is the run's.
    """
    path = Path(path)
    run_dir = Path(run_dir)
    _check_target(path, check, run_dir, overwrite)
    model_name, meta, scaler, model = _load_run(run_dir)
    series = read_series(run_dir, meta)
    if series is None:
        warnings.warn(
            legacy_note(run_dir, "the graph's nodes are ordered"), UserWarning, stacklevel=2
        )
    elif series.num_nodes != int(meta["num_nodes"]):
        raise ConfigError(
            f"{run_dir / 'series.json'}: expected {meta['num_nodes']} series (the checkpoint's "
            f"N), found {series.num_nodes}; the file is from another run: retrain or delete it."
        )
    meta["series"] = series.names if series is not None else None
    wrapped = RawUnitModel(model, scaler, nonnegative=meta["nonnegative"]).eval()
    example = torch.from_numpy(example_inputs(2, meta, scaler))
    json_path = path.with_suffix(".json")
    with atomic_output(path, "--onnx") as tmp:  # a failed check removes the temp file
        _export(wrapped, example, tmp, opset, shown=path)
        add_metadata(tmp, model_name, meta)
        result = _result(path, meta, _output_channels(wrapped, example))
        if check:
            result |= _check(tmp, model, scaler, meta, shown=path)
        described = sidecar(model_name, run_dir, meta, scaler, result)
        with atomic_output(json_path, "--onnx") as tmp_json:
            tmp_json.write_text(jsonio.dumps(described) + "\n")
    result["json"] = str(json_path)
    return result


def _result(path: Path, meta: dict[str, Any], c_out: int) -> dict[str, Any]:
    t_in, t_out, n = int(meta["in_steps"]), int(meta["out_steps"]), int(meta["num_nodes"])
    return {
        "path": str(path),
        "input_shape": ["B", t_in, n, int(meta["input_channels"])],
        "output_shape": ["B", t_out, n, int(c_out)],
        "checked": False,
        "max_abs_diff": None,
        "max_scaled_diff": None,
    }


def _check_target(path: Path, check: bool, run_dir: Path, overwrite: bool) -> None:
    """Refuse an output name that is not ``.onnx`` in an existing folder, one whose ``.json``
    description would write over a file of a run (``--onnx RUN_DIR/config.onnx``), an existing
    ``.onnx`` or ``.json`` without ``overwrite``, or missing ``[onnx]`` packages."""
    check_output_path(path, (".onnx",), option="--onnx", run_dir=run_dir, overwrite=overwrite)
    sidecar = "a file of your own for the .json description beside --onnx"
    json_path = path.with_suffix(".json")
    check_kept(json_path, "--onnx", run_dir=run_dir, what=sidecar)
    if not overwrite:
        check_destination(json_path, overwrite=False, what="the .json description beside --onnx",
                          fix="--onnx")  # fmt: skip
    missing = [p for p in missing_onnx_packages() if check or p != "onnxruntime"]
    if missing:
        raise ConfigError(
            f"export to ONNX needs the optional packages {', '.join(ONNX_PACKAGES)}; "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            f"(pip install 'linearcast[onnx]')."
        )


def _load_run(run_dir: Path) -> tuple[str, dict[str, Any], StandardScaler, nn.Module]:
    """The run's model name, checkpoint ``meta`` (with ``input_channels``), scaler, and its
    best weights in a float32 model in eval mode."""
    from linearcast.data import StandardScaler
    from linearcast.engine.checkpoint import BEST, load_weights
    from linearcast.engine.setup import build_model_for, resolve_protocol
    from linearcast.serve.run import read_run

    ckpt, config = read_run(run_dir)
    meta = dict(ckpt.get("meta", {}))
    if "num_nodes" not in meta or "in_steps" not in meta:
        raise ConfigError(f"{run_dir / BEST}: the checkpoint does not record the data's shape.")
    protocol = resolve_protocol(config)
    meta.setdefault(
        "input_channels", 1 + int(protocol.add_time_of_day) + int(protocol.add_day_of_week)
    )
    scaler = StandardScaler.from_state_dict(ckpt["scaler"])
    model = build_model_for(
        config,
        _placeholder_dataset(meta, _run_graph(run_dir, config, int(meta["num_nodes"]), ckpt)),
        protocol,
        int(meta["input_channels"]),
        steps_per_day=meta.get("steps_per_day"),
    )
    load_weights(model, ckpt["model"], run_dir / BEST)
    # what the forecast output is: which data channel, clipped at 0 or not
    channel = protocol.target_channel
    name, channels = recorded_target(meta, channel)
    meta["output_channel"] = {"index": channel, "name": name, "data_channels": channels}
    meta["nonnegative"] = config.nonnegative
    return config.model, meta, scaler, model.float().eval()


def _output_channels(model: nn.Module, example: Tensor) -> int:
    with torch.no_grad():
        return int(model(example).shape[-1])


def _export(
    model: nn.Module, example: Tensor, path: Path, opset: int | None, shown: Path | None = None
) -> None:
    """``torch.onnx.export`` with a dynamic batch axis, quietly, errors as one sentence naming
    ``shown`` (the user's file, when ``path`` is a temp file)."""
    batch = torch.export.Dim("batch", min=1)
    kwargs: dict[str, Any] = {} if opset is None else {"opset_version": opset}
    # torch logs through its own handler (source paths, graph dumps of a failed trace) and the
    # exporter logs optional torchvision ops: not for users; a failure is the one line below
    noisy = [logging.getLogger(name) for name in ("torch", "torch.onnx._internal.exporter")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.CRITICAL)
    try:
        # a failed trace prints the graph it reached: thousands of lines with source paths
        quiet = io.StringIO()
        with (
            warnings.catch_warnings(),
            torch.no_grad(),
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
        ):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                # weights inside the .onnx: with external data the exporter writes
                # "<temp name>.data" beside it, which the atomic rename leaves behind under the
                # temp name (a model.onnx copied alone then has no weights)
                external_data=False,
                input_names=["x"],
                output_names=["forecast"],
                dynamic_shapes={"x": {0: batch}},
                verbose=False,
                **kwargs,
            )
    except ConfigError:
        raise
    except Exception as err:
        text = _ANSI.sub("", str(err)).strip()
        first = text.splitlines()[0] if text else type(err).__name__
        raise ConfigError(
            f"{shown or path}: torch's ONNX exporter failed ({type(err).__name__}: {first}); "
            f"the file was not written."
        ) from err
    finally:
        for logger, level in zip(noisy, levels):
            logger.setLevel(level)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the exporter colours its messages for terminals


def _check(
    path: Path,
    model: nn.Module,
    scaler: StandardScaler,
    meta: dict[str, Any],
    shown: Path | None = None,
) -> dict[str, Any]:
    """onnxruntime (CPU) vs the PyTorch pipeline on batches of 1 and 3 (``shown``: the name
    messages give the file, when ``path`` is a temp file)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    std = np.asarray(scaler.std, dtype=np.float64)
    std = std[:, None] if std.ndim else std  # per series: [N, 1] against [B, T_out, N, C]
    worst = scaled = 0.0
    for seed, batch in enumerate((1, 3)):
        x = example_inputs(batch, meta, scaler, seed=seed + 1)
        got = session.run(["forecast"], {"x": x})[0]
        # then the clip at 0 of a nonnegative run, as forecast applies it
        ref = clip_data_units(_torch_forecast(model, scaler, x), bool(meta.get("nonnegative")))
        for side, values in (("onnxruntime", got), ("PyTorch", ref)):
            if not np.isfinite(values).all():
                raise ConfigError(
                    f"{shown or path}: {side} produced {int((~np.isfinite(values)).sum())} "
                    f"non-finite values (NaN/inf) for a batch of {batch} in the data's range; "
                    f"expected finite forecasts: check best.ckpt for non-finite weights (retrain "
                    f"if it has them); the file was not written."
                )
        if got.shape != ref.shape:
            raise ConfigError(
                f"{shown or path}: onnxruntime returned shape {list(got.shape)} for a batch of "
                f"{batch}, PyTorch {list(ref.shape)}."
            )
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        worst = max(worst, float(diff.max()))
        scaled = max(scaled, float((diff / std).max()))
    if not scaled <= TOLERANCE:
        raise ConfigError(
            f"{shown or path}: onnxruntime does not reproduce the PyTorch forecast: max "
            f"|difference| {worst:.3g} data units = {scaled:.3g} standardised units (> "
            f"{TOLERANCE:g}); the file was not written."
        )
    return {"checked": True, "max_abs_diff": worst, "max_scaled_diff": scaled}
