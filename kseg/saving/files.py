"""Opening weight and model files safely: say what a wrong file is, never half-load one.

    check_weights_file("mask_rcnn_coco.h5")        # "hdf5"; WeightsFileError for an HTML page
    load_weights_atomic(model, "kseg_unet_0003.weights.h5")   # all or nothing
    model = load_keras_model("unet.keras")           # safe_mode=True: no Lambda code runs

A weights path that is not HDF5 (a text file, an HTML error page saved as `.h5`, an
empty or truncated download) raises `WeightsFileError` naming the path, its size and
what its first bytes look like, instead of h5py's "file signature not found".
"""

import os

import numpy as np

from kseg.weights import WeightsError

__all__ = ["WeightsFileError", "check_weights_file", "describe_file", "load_keras_model",
           "load_weights_atomic"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
EXPECTED = {"hdf5": "an HDF5 weights file (.h5 / .weights.h5)",
            "zip": "a Keras model file (.keras, a zip archive)"}


class WeightsFileError(WeightsError, ValueError):
    """A weights or model file is not what it should be (wrong kind, wrong shapes)."""


def _kind(head):
    """What the first bytes of a file look like: hdf5, zip, html, lfs, text or binary."""
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(ZIP_SIGNATURE):
        return "zip"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")) or b"<html" in text:
        return "html"
    if text.startswith(b"version https://git-lfs"):
        return "lfs"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary"


_DESCRIPTIONS = {
    "html": "an HTML page (a download that returned an error or login page?)",
    "lfs": "a Git LFS pointer (run `git lfs pull` to fetch the real file)",
    "text": "a text file",
    "binary": "binary data of an unknown format",
    "zip": "a zip archive (a Keras .keras model file?)",
    "hdf5": "an HDF5 file",
}


def describe_file(path):
    """`(kind, text)`: the kind of file at `path` and a one-line description of it."""
    size = os.path.getsize(path)
    if size == 0:
        return "empty", "an empty file (0 bytes; an interrupted download?)"
    with open(path, "rb") as f:
        head = f.read(512)
    kind = _kind(head)
    preview = head[:40].decode("utf-8", "replace").replace("\n", " ").strip()
    shown = f"starts with {preview!r}" if kind in ("html", "text", "lfs") else \
        f"first bytes {head[:8].hex(' ')}"
    return kind, f"{_DESCRIPTIONS[kind]}, {size:,} bytes, {shown}"


def check_weights_file(path, expected=("hdf5", "zip")):
    """The kind of a weights file ("hdf5" or "zip"); raises for anything else.

    Raises:
        FileNotFoundError: no such file.
        WeightsFileError: the file is not of an `expected` kind; names the path, the size,
            what the file looks like and what was expected.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    if os.path.isdir(path):
        raise WeightsFileError(f"{path} is a folder; expected {EXPECTED[expected[0]]}.")
    kind, text = describe_file(path)
    if kind not in expected:
        wanted = " or ".join(EXPECTED[k] for k in expected)
        raise WeightsFileError(f"{path} is {text}; expected {wanted}. Download it again or "
                               f"pass the right path.")
    return kind


def _count_keras_arrays(path):
    """Number of variable arrays in a Keras 3 `.weights.h5` file (None if not that layout)."""
    import h5py

    count = 0

    def visit(name, item):
        nonlocal count
        if isinstance(item, h5py.Dataset) and "/vars/" in f"/{name}" \
                and not name.startswith("optimizer/"):
            count += 1  # the optimizer's state is saved too, but is not a model weight

    with h5py.File(path, "r") as f:
        if "layers" not in f and "_layer_checkpoint_dependencies" not in f:
            return None
        f.visititems(visit)
    return count


def load_weights_atomic(model, path):
    """`model.load_weights(path)` that checks the file first and, when anything fails,
    leaves every weight of `model` as it was.

    Raises:
        WeightsFileError: not an HDF5 file, a different number of arrays than the model
            has weights, or a shape that differs (Keras' message kept).
    """
    path = os.fspath(path)
    check_weights_file(path, expected=("hdf5",))
    if path.endswith(".weights.h5"):
        count = _count_keras_arrays(path)
        if count is not None and count != len(model.weights):
            raise WeightsFileError(f"{path} holds {count} arrays but the model has "
                                   f"{len(model.weights)} weights; was it saved from a model "
                                   f"with another config (depth, filters, classes)?")
    import keras

    saved = [keras.ops.convert_to_numpy(v) for v in model.weights]
    try:
        model.load_weights(path)
    except Exception as e:
        for variable, value in zip(model.weights, saved):
            variable.assign(np.asarray(value))
        raise WeightsFileError(f"{path} does not fit the model; nothing was loaded. "
                               f"{str(e)[:600]}") from e


def load_keras_model(path, custom_objects=None, compile=False, safe_mode=True):
    """Load a `.keras` model file with `safe_mode=True` (a Lambda layer's code is refused).

    kseg's layers are registered, so kseg models load without `custom_objects`.
    Raises WeightsFileError naming the path for a file that is not a `.keras` zip or that
    holds code safe mode refuses.
    """
    import keras

    path = os.fspath(path)
    check_weights_file(path, expected=("zip",))
    _import_kseg_layers(path)
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile,
                                       safe_mode=safe_mode)
    except ValueError as e:
        if "safe_mode" in str(e) or "Lambda" in str(e) or "unsafe" in str(e).lower():
            raise WeightsFileError(
                f"{path} holds Python code (e.g. a Lambda layer) that kseg does not run "
                f"(safe_mode=True): only load it with safe_mode=False if you trust who "
                f"wrote it. {str(e)[:300]}") from e
        raise


def _import_kseg_layers(path):
    """Import the kseg modules whose layers the `.keras` file names (their registration runs
    on import; Keras does not import them), and only kseg's own."""
    import importlib
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return  # Keras reports what is wrong with the file
    modules, stack = set(), [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if isinstance(module, str) and module.startswith("kseg."):
                modules.add(module)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    for module in sorted(modules):
        importlib.import_module(module)
