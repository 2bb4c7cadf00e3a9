"""ONNX and TFLite exports of the bare networks (molding stays with the caller).

    export_onnx(unet, "unet.onnx")             # input "image" float32 [B, H, W, 3] RGB 0..255
    export_tflite(unet, "unet.tflite", config)  # input float32 [1, S, S, 3], S = IMAGE_MAX_DIM

Unlike `export_saved_model`, these hold only the Keras graph: FCN / U-Net take raw
RGB 0..255 float32 (normalization is inside the model) and return the model output
[B, H, W, C] (probabilities, or logits for OUTPUT_ACTIVATION="logits"). Mold and
unmold as `kseg.semantic.predict.predict_semantic` does. A Mask R-CNN ONNX file
holds the inference graph: inputs `input_image` [B, S, S, 3] (molded: `mold_inputs`)
and `input_image_meta` [B, IMAGE_META_SIZE]; outputs named as the Keras model's
("detections", "mrcnn_class_out", "mrcnn_bbox_out", "mrcnn_mask_out", "rpn_rois",
"rpn_class_out", "rpn_bbox_out"; unmold with
`kseg.models.mask_rcnn.inference.unmold_detections`). Every file is loaded with
onnxruntime before it is kept; an op with no ONNX equivalent is refused.

Files are written beside `path` and renamed into place once they load.
"""

import os

from kseg.utils.io import atomic_path


def _input_signature(keras_model):
    """tf.TensorSpecs of the network inputs, batch dynamic: [spec] or [[spec, ...]]."""
    import tensorflow as tf

    specs = [tf.TensorSpec([None, *tensor.shape[1:]], tf.float32,
                           name=tensor.name.split(":")[0])
             for tensor in keras_model.inputs]
    return specs if len(specs) == 1 else [specs]


def _network(model):
    """The keras.Model to convert: `MaskRCNN` -> its inference graph."""
    from kseg.models.mask_rcnn.model import MaskRCNN

    if isinstance(model, MaskRCNN):
        from kseg.export.saved_model import resolve_model

        return resolve_model(model)[1]
    return model


def check_onnx(path):
    """Load `path` with onnxruntime (or `onnx.checker` without it); raise ValueError naming
    the unsupported ops when it does not load."""
    try:
        import onnxruntime
    except ImportError:
        import onnx

        onnx.checker.check_model(path, full_check=True)
        return path
    try:
        onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ValueError(f"the ONNX graph does not load in onnxruntime: {exc}") from exc
    return path


def name_outputs(path, names):
    """Rename the graph outputs of the ONNX file `path` (tf2onnx writes "Identity:0", ...)
    to `names`, in order (e.g. Mask R-CNN's "detections", "mrcnn_class_out", ...)."""
    import onnx

    model = onnx.load(path)
    outputs = list(model.graph.output)
    if len(outputs) != len(names):
        raise ValueError(f"{path}: {len(outputs)} outputs, {len(names)} names")
    renames = {out.name: name for out, name in zip(outputs, names)}
    for node in model.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for out in outputs:
        out.name = renames[out.name]
    onnx.save(model, path)


def export_onnx(model, path, opset=None):
    """Write the bare network of `model` as ONNX (via Keras' `model.export` / tf2onnx).

    Args:
        model: an FCN / U-Net keras.Model, or a `MaskRCNN` / its keras model (see the
            module docstring).
        path: the `.onnx` file (written atomically).
        opset: ONNX opset (default: tf2onnx's).
    Returns:
        `path`. Raises ImportError without tf2onnx, ValueError if the graph cannot be
        expressed in ONNX (nothing is written then).
    """
    from kseg.export.saved_model import _require_tensorflow_backend

    _require_tensorflow_backend()
    try:
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        raise ImportError("ONNX export needs tf2onnx: pip install tf2onnx onnxruntime") from exc
    keras_model = _network(model)
    signature = _input_signature(keras_model)
    with atomic_path(path) as tmp:
        keras_model.export(tmp, format="onnx", input_signature=signature, verbose=False,
                           opset_version=opset)
        name_outputs(tmp, keras_model.output_names)
        check_onnx(tmp)
    return os.fspath(path)


def _frozen_function(keras_model, shape):
    """A concrete function of `keras_model` on float32 `shape`, variables as constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fn = tf.function(lambda image: keras_model(image, training=False), autograph=False,
                     input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def export_tflite(model, path, config=None, input_shape=None):
    """Write an FCN / U-Net as a float32 TFLite flatbuffer with a STATIC input shape.

    Args:
        model: an FCN / U-Net keras.Model.
        path: the `.tflite` file (written atomically).
        config: its config (gives S = IMAGE_MAX_DIM when `input_shape` is None).
        input_shape: (batch, height, width, 3); default (1, S, S, 3).
    The interpreter input is raw RGB 0..255 float32 of exactly that shape; the output
    is the model output [batch, height, width, C]. (Dynamic shapes and the in-graph
    molding of the SavedModel do not convert: TFLite lacks float64 and unranked convs.)
    """
    import tensorflow as tf

    from kseg.export.saved_model import _require_tensorflow_backend

    _require_tensorflow_backend()
    if input_shape is None:
        config = config or getattr(model, "kseg_config", None)
        if config is None:
            raise ValueError("export_tflite needs config=... or input_shape=(1, H, W, 3)")
        side = int(config.IMAGE_MAX_DIM)
        input_shape = (1, side, side, 3)
    frozen = _frozen_function(model, list(input_shape))
    data = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)
