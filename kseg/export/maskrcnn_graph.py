"""Mask R-CNN serving graph: raw uint8 images in, detections in original pixels out.

`unmold_detections` and `paste_masks` are `kseg.models.mask_rcnn.inference.
unmold_detections` / `kseg.data.pipelines.molding.unmold_mask` in TensorFlow, batched.

Outputs of `serve(images)` (D = DETECTION_MAX_INSTANCES; rows past
`num_detections` are zeros):
    detection_boxes   [B, D, 4] float32 (y1, x1, y2, x2) original pixels, integer
                      values, y2 / x2 exclusive (as `MaskRCNN.detect`'s "rois")
    detection_classes [B, D] int32 class ids (0 = padding)
    detection_scores  [B, D] float32
    num_detections    [B] int32
    detection_masks   full_masks=True: [B, D, H, W] uint8 0/1 at the original size
                      (`detect`'s "masks", transposed); full_masks=False: [B, D, mh, mw]
                      float32 probabilities of the detected class inside its box
                      (MASK_SHAPE, e.g. 28 x 28; resize to the box and threshold at 0.5).
"""

import tensorflow as tf

from kseg.export.graph_molding import image_meta, mold_images


def _pixel_boxes(boxes, molded_hw, window, original_hw):
    """Normalized molded boxes [B, D, 4] -> rounded, clipped original pixels float32
    (`inference.window_to_original`: Matterport's norm_boxes / denorm_boxes arithmetic)."""
    h, w = molded_hw[0], molded_hw[1]
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    window = (tf.cast(window, tf.float32) - shift) / tf.stack([h - 1, w - 1, h - 1, w - 1])
    wy1, wx1, wy2, wx2 = window[0], window[1], window[2], window[3]
    wh, ww = wy2 - wy1, wx2 - wx1
    inside = (boxes - tf.stack([wy1, wx1, wy1, wx1])) / tf.stack([wh, ww, wh, ww])
    oh, ow = original_hw[0], original_hw[1]
    out = tf.round(inside * tf.stack([oh - 1, ow - 1, oh - 1, ow - 1]) + shift)
    limit = tf.stack([original_hw[0], original_hw[1], original_hw[0], original_hw[1]])
    return tf.clip_by_value(out, 0.0, limit)


def _compact(valid, tensors):
    """Move rows with `valid` [B, D] first (stable) and zero the rest in each [B, D, ...]."""
    order = tf.argsort(tf.cast(tf.logical_not(valid), tf.int32), axis=1, stable=True)
    count = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
    keep = tf.range(tf.shape(valid)[1])[None, :] < count[:, None]
    out = []
    for tensor in tensors:
        gathered = tf.gather(tensor, order, axis=1, batch_dims=1)
        mask = tf.reshape(keep, tf.concat([tf.shape(keep), tf.ones([tf.rank(tensor) - 2],
                                                                    tf.int32)], 0))
        out.append(tf.where(mask, gathered, tf.zeros_like(gathered)))
    return out, count


def unmold_detections(detections, masks, molded_hw, window, original_hw):
    """Batched `unmold_detections` without the mask pasting.

    Args:
        detections [B, D, 6] normalized (y1, x1, y2, x2, class_id, score);
        masks [B, D, mh, mw, C]; molded_hw, original_hw [2] float32; window [4] int32.
    Returns:
        boxes [B, D, 4] float32 pixels, classes [B, D] int32, scores [B, D] float32,
        class masks [B, D, mh, mw] float32, counts [B] int32.
    """
    classes = tf.cast(detections[..., 4], tf.int32)
    boxes = _pixel_boxes(detections[..., :4], molded_hw, window, original_hw)
    valid = (classes > 0) & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    onehot = tf.one_hot(classes, tf.shape(masks)[-1], dtype=masks.dtype)
    class_masks = tf.reduce_sum(masks * onehot[:, :, None, None, :], axis=-1)
    (boxes, classes, scores, class_masks), counts = _compact(
        valid, [boxes, classes, detections[..., 5], class_masks])
    return boxes, classes, scores, class_masks, counts


def paste_masks(class_masks, boxes, count, original_hw, threshold=0.5):
    """Box-relative masks [B, D, mh, mw] -> full-image masks [B, D, H, W] uint8 0/1.

    Each mask is resized to its box `boxes` [B, D, 4] (integer pixels, exclusive ends)
    as `unmold_mask` does (skimage bilinear: zeros beyond the border, clipped to the
    mask's [min, max], see `resize_bilinear`) and thresholded; only the first
    max(`count`) rows are computed, the rest are zeros. original_hw: [2] int32.
    """
    batch, slots = tf.shape(class_masks)[0], tf.shape(class_masks)[1]
    mh, mw = tf.shape(class_masks)[2], tf.shape(class_masks)[3]
    n = tf.reduce_max(tf.concat([count, [0]], 0))
    masks = tf.reshape(class_masks[:, :n], [-1, mh, mw])
    low = tf.reduce_min(masks, axis=[1, 2])[:, None, None]
    high = tf.reduce_max(masks, axis=[1, 2])[:, None, None]
    masks = tf.pad(masks[..., None], [[0, 0], [1, 1], [1, 1], [0, 0]])
    flat_boxes = tf.reshape(boxes[:, :n], [-1, 4])
    y1, x1, y2, x2 = tf.unstack(flat_boxes, axis=1)
    height, width = original_hw[0], original_hw[1]
    mhf, mwf = tf.cast(mh, tf.float32), tf.cast(mw, tf.float32)
    sy, sx = mhf / tf.maximum(y2 - y1, 1.0), mwf / tf.maximum(x2 - x1, 1.0)
    # Mask coordinate of image row y: (y - y1 + 0.5) * sy - 0.5, +1 for the padding.
    top, left = (0.5 - y1) * sy + 0.5, (0.5 - x1) * sx + 0.5
    bottom = top + tf.cast(height - 1, tf.float32) * sy
    right = left + tf.cast(width - 1, tf.float32) * sx
    crops = tf.image.crop_and_resize(
        masks, tf.stack([top / (mhf + 1), left / (mwf + 1), bottom / (mhf + 1),
                         right / (mwf + 1)], axis=1),
        tf.range(tf.shape(masks)[0]), tf.stack([height, width]))[..., 0]
    rows = tf.cast(tf.range(height), tf.float32)[None, :, None]
    cols = tf.cast(tf.range(width), tf.float32)[None, None, :]
    inside = ((rows >= y1[:, None, None]) & (rows < y2[:, None, None])
              & (cols >= x1[:, None, None]) & (cols < x2[:, None, None]))
    full = tf.cast(inside & (tf.clip_by_value(crops, low, high) >= threshold), tf.uint8)
    full = tf.reshape(full, [batch, n, height, width])
    full = tf.pad(full, [[0, 0], [0, slots - n], [0, 0], [0, 0]])
    return tf.ensure_shape(full, [None, class_masks.shape[1], None, None])


def make_serving_fn(keras_model, config, full_masks=True):
    """`serve(images [B, H, W, 3] uint8) -> dict` (see the module docstring)."""
    if config.IMAGE_RESIZE_MODE == "crop":
        raise ValueError("IMAGE_RESIZE_MODE='crop' is a training mode; export an inference "
                         "config with 'square' or 'pad64' (the weights load either way)")

    def serve(images):
        molded, window, scale = mold_images(images, config)
        molded_pixels = molded - tf.constant(config.MEAN_PIXEL, tf.float32)
        meta = image_meta(images, molded, window, scale, int(config.NUM_CLASSES))
        outputs = keras_model([molded_pixels, meta], training=False)
        detections = tf.cast(outputs[0], tf.float32)
        masks = tf.cast(outputs[3], tf.float32)
        molded_hw = tf.cast(tf.shape(molded)[1:3], tf.float32)
        original_hw = tf.shape(images)[1:3]
        boxes, classes, scores, class_masks, counts = unmold_detections(
            detections, masks, molded_hw, window, tf.cast(original_hw, tf.float32))
        if full_masks:
            class_masks = paste_masks(class_masks, boxes, counts, original_hw)
        return {"detection_boxes": boxes, "detection_classes": classes,
                "detection_scores": scores, "num_detections": counts,
                "detection_masks": class_masks}

    return serve
