"""``linearcast export RUN_DIR --onnx model.onnx``: a run's best weights as an ONNX file.

The scaler is folded into the graph: input ``x [B, T_in, N, C_in]`` in data units (with the
time features as channels 1-2 for STAEformer-style models), output ``forecast
[B, T_out, N, C_out]`` in data units; B is dynamic. Needs the extra ``[onnx]``.
"""

from __future__ import annotations

import argparse
from typing import Any

from linearcast.cli import warnings_after

EPILOG = """\
The ONNX model (scaler folded in; a .json beside it describes the same):
  input  x         [B, T_in, N, C_in] float32  target in data units (+ time of day in [0, 1),
                                               day of week 0..6 for STAEformer/ELinFormer)
  output forecast  [B, T_out, N, C_out] float32 in data units
Node i of N is the run's series i: the .json lists the names in that order ("series").
At export, onnxruntime (CPU) must reproduce the PyTorch forecast to 1e-4 in standardised units;
the largest difference is printed. Needs: pip install 'linearcast[onnx]'.

Examples:
  linearcast export runs/elinformer-PEMS08-20250101-120000 --onnx elinformer.onnx
  linearcast export RUN_DIR --onnx model.onnx --no-check
"""


def _cmd_export(args: argparse.Namespace) -> int:
    from linearcast.serve.export import export_onnx

    with warnings_after():
        res = export_onnx(
            args.run_dir,
            args.onnx,
            check=not args.no_check,
            opset=args.opset,
            overwrite=args.overwrite,
        )
    shape_in = "x".join(str(v) for v in res["input_shape"])
    shape_out = "x".join(str(v) for v in res["output_shape"])
    print(
        f"wrote {res['path']} (input x [{shape_in}], output forecast [{shape_out}], data units; "
        f"scaler folded in) and {res['json']} (the series of the node axis, in order)"
    )
    if res["checked"]:
        print(
            f"onnxruntime (CPU) vs PyTorch on batches of 1 and 3: max |difference| "
            f"{res['max_abs_diff']:.3g} data units = {res['max_scaled_diff']:.3g} standardised "
            f"units (tolerance 1e-4)"
        )
    return 0


def add_parser(sub: Any) -> None:
    """Add ``export`` to the top-level sub-parsers."""
    p = sub.add_parser(
        "export",
        help="export a run's best weights to ONNX (scaler folded in)",
        description="Export RUN_DIR/best.ckpt to ONNX with a dynamic batch axis and the run's "
        "scaler inside the graph, and check it with onnxruntime.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `train`")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime comparison (no onnxruntime)"
    )
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing .onnx and its .json (never a file of the run's)",
    )
    p.set_defaults(func=_cmd_export)
