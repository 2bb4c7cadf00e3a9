"""The `kseg` command line.

    kseg train maskrcnn --dataset shapes --epochs 5
    kseg train maskrcnn --dataset ../shared/data/car_damage/dataset --image-size 256
    kseg evaluate maskrcnn --dataset shapes --weights last --out eval.json
    kseg predict maskrcnn --weights coco --images photos/ --out predictions/
    kseg train unet --dataset ../shared/data/smoke_fss/FSS
    kseg export maskrcnn ...
    kseg weights list
    kseg info

Mistakes in what the user typed (a missing file, a bad annotation, an impossible
config value) print one line `kseg: error: ...` and exit with status 2; `--debug`
shows the traceback instead.

The command line only parses arguments and calls the library (`kseg.models.runs`,
`kseg.semantic.jobs`, `MaskRCNN`, `kseg.evaluate`, `kseg.export`). May import: all of
kseg; nothing in kseg imports it.
"""

import argparse
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("maskrcnn", "fcn", "unet")
MODEL_MODULES = {"maskrcnn": "kseg.cli.maskrcnn", "fcn": "kseg.cli.semantic",
                 "unet": "kseg.cli.semantic"}
COMMAND_HELP = {
    "train": "train a model",
    "evaluate": "evaluate a checkpoint on a dataset (mAP / COCO AP, or mIoU)",
    "predict": "run a checkpoint on images and write overlays",
}


class CLIError(Exception):
    """A usage problem the command reports as one line (exit status 2)."""


def user_errors():
    """Exception types that mean "fix your input", reported without a traceback
    (`kseg.errors.user_errors` and `CLIError`)."""
    from kseg.errors import user_errors as library_user_errors

    return (CLIError, *library_user_errors())


def _import(module_name):
    """The module, or None when it cannot be imported (reported when the command runs)."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        _IMPORT_ERRORS[module_name] = exc
        return None


_IMPORT_ERRORS = {}


def _unavailable(parser, module_name):
    """A placeholder parser for a command whose module is missing."""
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_missing_module(module_name))


def _missing_module(module_name):
    def handler(args):
        raise CLIError(f"this command needs {module_name}, which cannot be imported "
                       f"({_IMPORT_ERRORS.get(module_name)})")
    return handler


def _add_debug(parser):
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")


def _add_model_commands(subparsers, command):
    """`kseg COMMAND MODEL ...` for MODEL in maskrcnn, fcn, unet."""
    parser = subparsers.add_parser(command, help=COMMAND_HELP[command],
                                   description=COMMAND_HELP[command])
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True)
    for model in MODELS:
        sub = models.add_parser(model, help=f"{command} {model}",
                                description=f"kseg {command} {model}")
        _add_debug(sub)
        module = _import(MODEL_MODULES[model])
        if module is None:
            _unavailable(sub, MODEL_MODULES[model])
            continue
        module.add_arguments(command, sub)
        sub.set_defaults(handler=_model_handler(module, command))


def _model_handler(module, command):
    return lambda args: module.run(command, args)


def _add_export(subparsers):
    parser = subparsers.add_parser("export", help="export a trained model (SavedModel, ONNX, ...)",
                                   description="kseg export MODEL ...")
    _add_debug(parser)
    module = _import("kseg.cli.export")
    if module is None:
        _unavailable(parser, "kseg.cli.export")
        return
    module.add_arguments(parser)
    if not any(action.dest == "model" for action in parser._actions):
        parser.add_argument("model", choices=MODELS, help="maskrcnn, fcn or unet")
    parser.set_defaults(handler=module.run)


def _add_weights(subparsers):
    from kseg.cli import weights

    parser = subparsers.add_parser("weights", help="list or download pretrained weights",
                                   description="kseg weights list|download")
    _add_debug(parser)
    weights.add_arguments(parser)
    parser.set_defaults(handler=weights.run)


def _add_info(subparsers):
    parser = subparsers.add_parser("info", help="versions, devices, data and weights locations",
                                   description="kseg info")
    _add_debug(parser)
    parser.set_defaults(handler=lambda args: importlib.import_module("kseg.cli.info").run(args))


def build_parser():
    """The full `kseg` argument parser."""
    from kseg import __version__

    parser = argparse.ArgumentParser(
        prog="kseg", description="FCN, U-Net and Mask R-CNN for Keras 3.",
        epilog="`kseg COMMAND --help` shows each command's options.")
    parser.add_argument("--version", action="version", version=f"kseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in ("train", "evaluate", "predict"):
        _add_model_commands(commands, command)
    _add_export(commands)
    _add_weights(commands)
    _add_info(commands)
    return parser


def main(argv=None):
    """Run `kseg` with `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        print("kseg: interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        if getattr(args, "debug", False):
            raise
        print(f"kseg: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return int(code or 0)


def _one_line(exc):
    """The exception's message on one line (KeyError's repr quotes are dropped)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in text:
        text = f"{text}: {exc.filename}"
    return " ".join(text.split()) or type(exc).__name__


__all__ = ["CLIError", "build_parser", "main"]
