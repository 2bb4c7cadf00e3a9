"""`export_saved_model`: a TensorFlow SavedModel that molds raw images inside the graph.

    export_saved_model(MaskRCNN(mode="inference", config=config), "export/shapes")
    export_saved_model(unet, "export/unet", config=unet_config)

    served = tf.saved_model.load("export/shapes")            # no kseg needed
    out = served.signatures["serving_default"](images=tf.constant(uint8_batch))
    out = served.signatures["image_bytes"](image_bytes=tf.constant([png_bytes]))

Signatures (inputs; see `maskrcnn_graph` / `semantic_graph` for the outputs):
    serving_default  images: uint8 [B, H, W, 3] (any H, W; one size per batch)
    image_bytes      image_bytes: string, scalar or [B] encoded JPEG / PNG / BMP / GIF
                     (one decoded size per batch)

The export folder also holds `assets.extra/kseg_export.json`: model kind, signatures,
output description and the config (`Config.to_dict()`).
"""

import json
import os
import shutil
import tempfile

from kseg.utils.io import atomic_write_text

IMAGES_SPEC = ("images", [None, None, None, 3], "uint8")


def _require_tensorflow_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"SavedModel export needs KERAS_BACKEND=tensorflow (the current "
                           f"backend is {keras.backend.backend()!r}); set it before "
                           f"importing keras, or export from a separate process.")


def _is_maskrcnn_keras(model):
    return any(getattr(t, "name", "").startswith("input_image_meta")
               for t in getattr(model, "inputs", []) or [])


def _inference_copy(maskrcnn):
    """The inference keras model of a training-mode `MaskRCNN`, weights copied by name."""
    from kseg.models.mask_rcnn.checkpoints import save_weights_by_name
    from kseg.models.mask_rcnn.graph import build_inference_model
    from kseg.saving.legacy_h5 import load_weights_by_name

    inference = build_inference_model(maskrcnn.config)
    with tempfile.TemporaryDirectory(prefix="kseg-export-") as folder:
        path = os.path.join(folder, "weights.h5")
        save_weights_by_name(maskrcnn.keras_model, path)
        load_weights_by_name(inference, path, verbose=0)
    return inference


def resolve_model(model, config=None):
    """(kind "maskrcnn" | "semantic", inference keras.Model, config) for `model`: a
    `MaskRCNN` (either mode), a Mask R-CNN inference keras.Model, or an FCN / U-Net
    keras.Model. A keras.Model needs `config` or a `kseg_config` attribute."""
    from kseg.config import Config
    from kseg.models.mask_rcnn.model import MaskRCNN

    if isinstance(model, MaskRCNN):
        config = config or model.config
        keras_model = model.keras_model if model.mode == "inference" else _inference_copy(model)
        return "maskrcnn", keras_model, config
    stored = getattr(model, "kseg_config", None)
    config = config or (stored if isinstance(stored, Config) else None)
    if config is None:
        raise ValueError(f"export of the keras.Model {model.name!r} needs its kseg config: "
                         f"pass config=... (e.g. the UNetConfig it was built from)")
    return ("maskrcnn" if _is_maskrcnn_keras(model) else "semantic"), model, config


def serving_fn(kind, keras_model, config, full_masks=True):
    """The `serve(images)` function of a resolved model (see `resolve_model`)."""
    if kind == "maskrcnn":
        from kseg.export.maskrcnn_graph import make_serving_fn

        return make_serving_fn(keras_model, config, full_masks=full_masks)
    from kseg.export.semantic_graph import make_serving_fn

    return make_serving_fn(keras_model, config)


def build_module(keras_model, serve, image_bytes_signature=True):
    """(tf.Module holding the model's variables, {signature name: concrete function}).

    `serving_default(images)` is traced once; `image_bytes(image_bytes)` decodes and
    calls it (no second trace of the model). Autograph is off (plain TF ops only).
    """
    import tensorflow as tf

    from kseg.export.graph_molding import decode_images

    module = tf.Module()
    module.model_variables = list(keras_model.variables)
    images_fn = tf.function(serve, autograph=False, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    signatures = {"serving_default": images_fn.get_concrete_function()}
    if image_bytes_signature:
        bytes_fn = tf.function(lambda image_bytes: images_fn(decode_images(image_bytes)),
                               autograph=False,
                               input_signature=[tf.TensorSpec(None, tf.string,
                                                              name="image_bytes")])
        signatures["image_bytes"] = bytes_fn.get_concrete_function()
    return module, signatures


OUTPUTS = {
    "maskrcnn": "detection_boxes [B,D,4] float32 (y1,x1,y2,x2) original pixels, y2/x2 "
                "exclusive; detection_classes [B,D] int32; detection_scores [B,D] float32; "
                "num_detections [B] int32; detection_masks [B,D,H,W] uint8 (full_masks) or "
                "[B,D,mh,mw] float32 box-relative probabilities",
    "semantic": "class_map [B,H,W] int32; probabilities [B,H,W,K] float32",
}


def _metadata(kind, config, full_masks, image_bytes_signature):
    """The JSON written to `assets.extra/kseg_export.json`."""
    import kseg

    signatures = ["serving_default"] + (["image_bytes"] if image_bytes_signature else [])
    return json.dumps({"kseg_version": kseg.__version__, "kind": kind,
                       "config_class": type(config).__name__, "signatures": signatures,
                       "full_masks": bool(full_masks) if kind == "maskrcnn" else None,
                       "outputs": OUTPUTS[kind], "config": config.to_dict()}, indent=2)


def _check_target(path, overwrite):
    if os.path.isfile(path):
        raise FileExistsError(f"export path {path} is a file; give a folder path")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"export path {path} exists and is not empty; pass "
                              f"overwrite=True (CLI: --overwrite) to replace it")


def _move_into_place(tmp, path):
    """Replace `path` (absent, empty or an old export) by the folder `tmp`."""
    old = None
    if os.path.isdir(path):
        old = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(path))
        os.rmdir(old)
        os.rename(path, old)
    os.rename(tmp, path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def write_atomically(path, write, overwrite=False):
    """Call `write(tmp_folder)` on a fresh folder beside `path`, then rename it to `path`.

    Refuses (FileExistsError) a non-empty `path` unless `overwrite`; on any error the
    temporary folder is removed and `path` is left as it was.
    """
    path = os.path.abspath(os.fspath(path))
    _check_target(path, overwrite)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(path)}-", dir=parent)
    try:
        write(tmp)
        _move_into_place(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def export_saved_model(model, path, config=None, image_bytes_signature=True, full_masks=True,
                       overwrite=False):
    """Write a SavedModel serving raw uint8 images (see the module docstring).

    Args:
        model: a `MaskRCNN` (inference or training mode; training weights are copied
            into an inference graph by layer name), or an FCN / U-Net keras.Model.
        path: the export folder (written beside, then renamed into place).
        config: the model's kseg config (default: `MaskRCNN.config` / `model.kseg_config`).
        image_bytes_signature: also add the `image_bytes` signature.
        full_masks: Mask R-CNN `detection_masks` as full-image uint8 masks [B, D, H, W]
            (True) or box-relative probabilities [B, D, mh, mw] (False).
        overwrite: replace a non-empty `path`.
    Returns:
        the absolute export path.
    """
    _require_tensorflow_backend()
    import tensorflow as tf

    kind, keras_model, config = resolve_model(model, config)
    serve = serving_fn(kind, keras_model, config, full_masks=full_masks)
    metadata = _metadata(kind, config, full_masks, image_bytes_signature)

    def write(folder):
        module, signatures = build_module(keras_model, serve, image_bytes_signature)
        tf.saved_model.save(module, folder, signatures=signatures)
        atomic_write_text(os.path.join(folder, "assets.extra", "kseg_export.json"), metadata)

    return write_atomically(path, write, overwrite=overwrite)
