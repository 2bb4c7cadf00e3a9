"""``kseg export maskrcnn|fcn|unet --weights PATH [--config JSON] --out DIR``.

    kseg export maskrcnn --weights logs/shapes20260101T1200/mask_rcnn_shapes_0005.h5 --out serve/shapes
    kseg export unet --weights last --name smoke --out serve/smoke
    kseg export fcn --weights logs/road.../kseg_road_0010.weights.h5 --format onnx --out road.onnx

The model's settings come from the `config.json` that training wrote beside the
checkpoint (`kseg.models.runs.load_inference_model`; `--weights` may also be a run
folder); `--config` (a JSON file or an inline JSON object) overrides or replaces
them. `--format saved_model` (default) writes a SavedModel folder that molds raw
uint8 images inside the graph (see `kseg.export`); `onnx` / `tflite` write the bare
network to one file. An existing non-empty `--out` is kept unless `--overwrite`.
"""

from __future__ import annotations

from pathlib import Path

FORMATS = ("saved_model", "onnx", "tflite")


def add_arguments(parser):
    """Add the model argument and the export options to `parser` (an argparse parser)."""
    parser.add_argument("model", choices=("maskrcnn", "fcn", "unet"), help="the model kind")
    parser.add_argument("--weights", required=True,
                        help="checkpoint path, 'last' (newest run in --logs) or, for "
                             "maskrcnn, 'coco'")
    parser.add_argument("--config", default=None,
                        help="JSON file or inline JSON object of config values (default: "
                             "the config.json beside the checkpoint)")
    parser.add_argument("--out", required=True,
                        help="output folder (saved_model) or file (onnx, tflite)")
    parser.add_argument("--format", choices=FORMATS, default="saved_model",
                        help="saved_model (default), onnx (any model) or tflite (fcn / unet)")
    parser.add_argument("--logs", default="logs", help="run folders for --weights last")
    parser.add_argument("--name", default=None, help="run name for --weights last")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-image-bytes", action="store_true",
                        help="saved_model: no image_bytes (encoded JPEG/PNG) signature")
    parser.add_argument("--box-masks", action="store_true",
                        help="maskrcnn saved_model: 28x28 box-relative mask probabilities "
                             "instead of full-image uint8 masks")
    return parser


def _checkpoint(args):
    """The weights path for `--weights` (a path, a run folder, 'last' or 'coco')."""
    if args.weights == "coco" and args.model == "maskrcnn":
        from kseg import weights

        return weights.get("mask_rcnn_coco")
    from kseg.models.runs import resolve_checkpoint

    name = args.name or (None if args.model == "maskrcnn" else args.model)
    kind = "maskrcnn" if args.model == "maskrcnn" else "semantic"
    return resolve_checkpoint(args.weights, args.logs, name, kind)


def load_model(args):
    """(model, config): a `MaskRCNN` in inference mode or an FCN / U-Net keras.Model with
    the checkpoint's weights, rebuilt by `kseg.models.runs.load_inference_model` from the
    run's config.json and --config."""
    from kseg.cli.maskrcnn_data import parse_overrides
    from kseg.models.runs import load_inference_model

    model, config, _ = load_inference_model(_checkpoint(args), parse_overrides(args.config),
                                            weights=args.weights, kind=args.model,
                                            one_image=False)
    return model, config


def export(args, model, config):
    """Write `model` in `args.format` to `args.out`; returns the written path."""
    from kseg import export as kexport
    from kseg.cli import CLIError

    if args.format == "saved_model":
        return kexport.export_saved_model(
            model, args.out, config=config, image_bytes_signature=not args.no_image_bytes,
            full_masks=not args.box_masks, overwrite=args.overwrite)
    if Path(args.out).exists() and not args.overwrite:
        raise CLIError(f"{args.out} exists; pass --overwrite to replace it")
    if args.format == "onnx":
        return kexport.export_onnx(model, args.out)
    if args.model == "maskrcnn":
        raise CLIError("--format tflite supports fcn and unet only")
    return kexport.export_tflite(model, args.out, config=config)


def run(args):
    """Run the parsed ``kseg export ...`` command; returns the exit code."""
    from kseg.cli import CLIError

    model, config = load_model(args)
    try:
        path = export(args, model, config)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from exc
    except ValueError as exc:
        if args.format != "onnx":
            raise
        raise CLIError(f"ONNX export of {args.model} failed: {exc}") from exc
    print(f"wrote {args.format} {path}")
    return 0
