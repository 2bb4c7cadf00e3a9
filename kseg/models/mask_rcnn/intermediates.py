"""Looking inside a Mask R-CNN: intermediate tensors by name (Matterport's `run_graph`).

    outputs = run_graph(model.keras_model, config, [image], [
        ("proposals", model.keras_model.get_layer("ROI").output),
        ("detections", model.keras_model.get_layer("mrcnn_detection").output),
    ])
    outputs["proposals"].shape    # [1, POST_NMS_ROIS_INFERENCE, (y1, x1, y2, x2)]

Works on the inference model (inputs `input_image`, `input_image_meta`): images are
molded as `detect` molds them, and every requested tensor comes back as a NumPy array
with its batch axis. Tensors are Keras symbolic outputs of layers of that model.
"""

import collections

import keras
import numpy as np

from kseg.models.mask_rcnn.inference import mold_inputs


def run_graph(keras_model, config, images, outputs, image_metas=None):
    """Evaluate named tensors of `keras_model` on `images`.

    Args:
        keras_model: the inference model (`MaskRCNN("inference", ...).keras_model`).
        config: its `MaskRCNNConfig`.
        images: list of RGB images [H, W, 3] (any sizes the config's resize mode allows
            in one batch), or, with `image_metas`, molded images [N, S, S, 3].
        outputs: list of (name, tensor) pairs; tensors are outputs of `keras_model` layers.
        image_metas: [N, IMAGE_META_SIZE] when `images` are already molded.
    Returns:
        OrderedDict name -> np.ndarray (batch first).
    """
    names = [name for name, _ in outputs]
    if len(set(names)) != len(names):
        raise ValueError(f"run_graph: output names must be unique, got {names}")
    if image_metas is None:
        molded, image_metas, _ = mold_inputs(images, config)
    else:
        molded = np.asarray(images, np.float32)
    probe = keras.Model(keras_model.inputs, [tensor for _, tensor in outputs])
    values = probe.predict_on_batch([molded, np.asarray(image_metas)])
    if len(outputs) == 1:
        values = [values]
    return collections.OrderedDict(
        (name, np.asarray(keras.ops.convert_to_numpy(value)))
        for name, value in zip(names, values))

