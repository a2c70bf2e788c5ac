"""What travels with an exported ONNX file: the JSON description beside it and the ONNX
metadata (series order, calendar, scaler, which data channel the forecast is, the clip at 0, the
check's result), for tools that read one or the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linearcast.data import StandardScaler


def sidecar(
    model_name: str,
    run_dir: Path,
    meta: dict[str, Any],
    scaler: StandardScaler,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The JSON file beside the ONNX file: inputs, outputs, calendar, scaler, the check."""
    return {
        "format": "linearcast-onnx",
        "model": model_name,
        "run_dir": str(run_dir),
        "series": meta.get("series"),
        "series_order": (
            "names: node i of x and forecast is series[i]"
            if meta.get("series") is not None
            else "positions: the training data's order (the run records no names)"
        ),
        "inputs": {
            "x": {
                "shape": result["input_shape"],
                "dtype": "float32",
                "channels": _channel_names(int(meta["input_channels"])),
                "units": "data units (the scaler is inside the graph)",
            }
        },
        "outputs": {"forecast": _output_description(meta, result["output_shape"])},
        "steps_per_day": meta.get("steps_per_day"),
        "freq_minutes": meta.get("freq_minutes"),
        "protocol": meta.get("protocol"),
        "dataset": meta.get("dataset"),
        "scaler": scaler.state_dict(),
        "check": {k: result[k] for k in ("checked", "max_abs_diff", "max_scaled_diff")},
    }


def _output_description(meta: dict[str, Any], shape: list[Any]) -> dict[str, Any]:
    """The sidecar's ``outputs.forecast``: shape, units, which data channel, the clip at 0."""
    out = meta["output_channel"]
    clipped = bool(meta["nonnegative"])
    return {
        "shape": shape,
        "dtype": "float32",
        "units": "data units" + (", clipped at 0 inside the graph" if clipped else ""),
        "channel": out["name"] or f"channel {out['index']}",
        "channel_index": out["index"],
        "data_channels": out["data_channels"],
        "nonnegative": clipped,
    }


def _channel_names(c: int) -> list[str]:
    names = ["target (data units)", "time of day in [0, 1)", "day of week 0..6 (Monday = 0)"]
    return names[:c] + [f"channel {i}" for i in range(3, c)]


def add_metadata(path: Path, model_name: str, meta: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    facts = {
        "linearcast.model": model_name,
        "linearcast.in_steps": meta.get("in_steps"),
        "linearcast.out_steps": meta.get("out_steps"),
        "linearcast.num_nodes": meta.get("num_nodes"),
        "linearcast.input_channels": meta.get("input_channels"),
        "linearcast.steps_per_day": meta.get("steps_per_day"),
        "linearcast.units": "data units in and out (scaler folded in)"
        + (", forecast clipped at 0" if meta["nonnegative"] else ""),
        "linearcast.channel": meta["output_channel"]["name"]
        or f"channel {meta['output_channel']['index']}",
        # node i of the graph is series[i]: the names travel with the file
        "linearcast.series": json.dumps(meta["series"]) if meta.get("series") else None,
    }
    for key, value in facts.items():
        if value is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))
